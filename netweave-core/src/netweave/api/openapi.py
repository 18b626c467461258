"""The OpenAPI document: Litestar's, fixed to say what the API really does.

Litestar documents error responses as ``application/json`` with its default error schema. Here
every 4xx/5xx response of every operation becomes ``application/problem+json`` with the
``ProblemDetails`` schema, 401/403 are added to the bearer-protected routes and 500 to all, 429
with its ``Retry-After`` header to the bearer-protected changes (``api.rateLimit``, see
:mod:`netweave.api.ratelimit`: mutating methods only, reads are never limited), and
the package upload's two request bodies (multipart and JSON) are described (the handler parses
the stream itself, so Litestar cannot see them).

The fixed document replaces the one Litestar's OpenAPI plugin caches, so ``/schema/openapi.json``
serves exactly what :func:`openapi_document` returns; the test suite compares both with the
committed ``netweave-core/openapi.json``. Regenerate that file with::

    python -m netweave.api.openapi > netweave-core/openapi.json
"""

from __future__ import annotations

import copy
import json
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin

from netweave.api.etsi.vnflcm import ETSI_ERRORS, document_operation, version_header
from netweave.api.etsi.vnfpkgm import VNFPKGM_ERRORS
from netweave.api.etsi.vnfpkgm import document_operation as document_vnfpkgm_operation
from netweave.models import (
    PROBLEM_MEDIA_TYPE,
    PackageRegistration,
    ProblemDetails,
    RequestModel,
)

PROBLEM_SCHEMA = "ProblemDetails"
#: Routes behind the bearer-token middleware: the native face, the ETSI one, O2ims discovery.
SECURED_PREFIX = ("/o2dms", "/vnflcm", "/o2ims", "/vnfpkgm")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
#: Methods the rate limiter counts (``netweave.api.ratelimit`` lets reads through).
RATE_LIMITED_METHODS = frozenset({"put", "post", "delete", "patch"})
RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Whole seconds until the client's next change is accepted.",
    "schema": {"type": "integer", "minimum": 1},
}
#: Backend errors a route may pass on: 501 missing capability, 502 backend error, 503 backend
#: or owning adapter unavailable, 504 backend timeout.
_BACKEND = (501, 502, 503, 504)
#: The error statuses each operation can answer besides 401/403/500 (all routes under /o2dms),
#: 400/413/415 (routes with a body) and 404 (routes with an id), which are added generally.
ERRORS_BY_OPERATION: dict[str, tuple[int, ...]] = {
    "ListNfDeploymentDescriptors": (400,),
    "GetNfDeploymentDescriptor": (400,),
    "CreateNfDeploymentDescriptor": (409, 422, *_BACKEND),
    "UpdateNfDeploymentDescriptorState": (),
    "DeleteNfDeploymentDescriptor": (400, 409, *_BACKEND),
    "ListNfDeployments": (400,),
    "CreateNfDeployment": (404, 409, 422, *_BACKEND),
    "GetNfDeployment": (400, 502, 503, 504),
    "ReplaceNfDeployment": (409, *_BACKEND),
    "UpdateNfDeployment": (409, *_BACKEND),
    "DeleteNfDeployment": (400, 409, 501, 503),
    "ScaleNfDeployment": (409, 422, *_BACKEND),
    "RollbackNfDeployment": (409, 422, *_BACKEND),
    "GetNfDeploymentStatus": (400, 502, 503, 504),
    "GetNfDeploymentHistory": (400, *_BACKEND),
    "GetNfDeploymentLogs": (400, 409, *_BACKEND),
    "GetNfDeploymentDiff": (400, *_BACKEND),
    "ReconcileNfDeployment": (400, 409, *_BACKEND),
    "ListOperations": (400,),
    "GetOperation": (400,),
    "RetryOperation": (400, 409, 422),
    "RollbackOperation": (400, 409, 422),
    "FailOperation": (400, 409, 422),
    "CancelOperation": (400, 409, 422),
    "ListSubscriptions": (400,),
    "CreateSubscription": (422,),
    "GetSubscription": (400,),
    "DeleteSubscription": (400,),
    "GetReadiness": (503,),
    **ETSI_ERRORS,
    **VNFPKGM_ERRORS,
}


def _schema_of(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    schema.pop("$defs", None)
    return schema


def _request_models() -> list[type[RequestModel]]:
    found: list[type[RequestModel]] = []
    pending: list[type[RequestModel]] = [RequestModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def _use_request_model_schemas(schemas: dict[str, Any]) -> None:
    """Every request body the document names gets pydantic's own schema of its model, and the
    models that one uses theirs. The server validates bodies with exactly these models, so the
    document states the server's constraints; Litestar's translation drops some (``pattern``,
    ``additionalProperties: false``, a model's own ``anyOf``)."""
    for model in _request_models():
        name = model.__name__
        if name not in schemas:
            continue
        schema: dict[str, Any] = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without Litestar's ``null`` choice (from ``str | None``): a query
    parameter or header is absent or has a value, it is never JSON null."""
    choices = schema.get("oneOf")
    if not choices or {"type": "null"} not in choices:
        return schema
    rest = [c for c in choices if c != {"type": "null"}]
    fixed = {k: v for k, v in schema.items() if k != "oneOf"}
    if len(rest) == 1:
        return {**rest[0], **fixed}
    return {**fixed, "oneOf": rest}


def fix_document(document: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA] = _schema_of(ProblemDetails)
    schemas.setdefault("PackageRegistration", _schema_of(PackageRegistration))
    _use_request_model_schemas(schemas)
    problem_content = {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}
    }
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if path.startswith("/vnflcm"):
                document_operation(path, method, operation)
            if path.startswith("/vnfpkgm"):
                document_vnfpkgm_operation(path, method, operation)
            if path.startswith(("/vnflcm/v", "/vnfpkgm/v")) and not path.endswith("/api_versions"):
                # SOL013: every request of the ETSI face carries Version (checked by the face).
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Version" for p in parameters):
                    parameters.append(version_header(path))
            statuses = {int(s) for s in responses if s.isdigit()} | {500}
            statuses |= set(ERRORS_BY_OPERATION.get(operation.get("operationId", ""), ()))
            if path.startswith(SECURED_PREFIX):
                statuses |= {401, 403}
            if any(p.get("in") == "query" for p in operation.get("parameters", ())):
                statuses |= {400}  # a bad query parameter (also one given twice: api.common)
            if method in ("post", "put", "patch") and path.startswith(SECURED_PREFIX):
                statuses |= {400, 413, 415}
            if "{" in path and path.startswith(SECURED_PREFIX):
                statuses |= {404}
            if method in RATE_LIMITED_METHODS and path.startswith(SECURED_PREFIX):
                statuses |= {429}
            for status in sorted(statuses):
                if status < 400:
                    continue
                existing = responses.get(str(status), {})
                responses[str(status)] = {
                    "description": existing.get("description") or HTTPStatus(status).phrase,
                    "content": copy.deepcopy(problem_content),
                }
                if status == 429:
                    responses["429"]["description"] = (
                        "Too many changes from this client (api.rateLimit); retry after the "
                        "Retry-After header's seconds."
                    )
                    responses["429"]["headers"] = {"Retry-After": copy.deepcopy(RETRY_AFTER_HEADER)}
            operation["responses"] = dict(sorted(responses.items()))
            for parameter in operation.get("parameters", ()):
                parameter["schema"] = _without_null(parameter.get("schema", {}))
            if operation.get("operationId") == "CreateNfDeploymentDescriptor":
                operation["requestBody"] = _package_request_body()
    return doc


def _package_request_body() -> dict[str, Any]:
    # The form's text fields with the constraints the handler validates them with (a form
    # field is text or absent, never null), and the archive.
    from netweave.api.controllers.packages import UploadForm

    form = UploadForm.model_json_schema(by_alias=True)
    text: dict[str, Any] = {}
    for name, field in form["properties"].items():
        choices = field.get("anyOf", [field])
        text[name] = next(c for c in choices if c.get("type") != "null")
    archive = {
        "type": "string",
        "format": "binary",
        # The alias is not a property of its own: schemathesis (and most generators) ignore a
        # "oneOf" of required parts, and a form with both parts is refused.
        "description": "The archive (the part may be named 'package' instead, not both).",
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [*form["required"], "chart"],
                    "properties": {**text, "chart": archive},
                    "additionalProperties": False,
                },
            },
            "application/json": {
                "schema": {"$ref": "#/components/schemas/PackageRegistration"},
            },
        },
    }


class _FixingOpenAPIPlugin(OpenAPIPlugin):
    """Litestar's plugin, caching the fixed document where it caches its own, built on the
    first request for it rather than at start-up (building it is a large share of start-up)."""

    __slots__ = ()

    def provide_openapi_schema(self) -> dict[str, Any]:
        # ``_openapi_schema`` is Litestar's private cache; the OpenAPI test compares what
        # ``/schema/openapi.json`` serves with the committed document, so a change shows.
        if not self._openapi_schema:
            self._openapi_schema = fix_document(self.provide_openapi().to_schema())
        return self._openapi_schema


def finalize_openapi(app: Litestar) -> None:
    """Make Litestar serve the fixed document (built lazily, once)."""
    plugin = app.plugins.get(OpenAPIPlugin)
    if not isinstance(plugin, _FixingOpenAPIPlugin):
        # Same slots, one method more: the instance Litestar made keeps its state.
        plugin.__class__ = _FixingOpenAPIPlugin


def openapi_document(app: Litestar) -> dict[str, Any]:
    finalize_openapi(app)
    return app.plugins.get(OpenAPIPlugin).provide_openapi_schema()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    from netweave.api.app import create_app
    from netweave.config import Settings
    from netweave.config.plugins import make_plugin_manager
    from netweave.config.registry import AdapterRegistry

    # The document does not depend on which adapters are configured: build it without any.
    app = create_app(Settings(), registry=AdapterRegistry({}), plugin_manager=make_plugin_manager())
    text = render(openapi_document(app))
    if len(sys.argv) > 1:  # ``python -m netweave.api.openapi PATH``: write the file
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
