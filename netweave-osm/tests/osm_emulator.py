"""An OSM NBI emulator: a real HTTP server on 127.0.0.1 that behaves like OSM's NBI + LCM.

Every request and every response is validated, strictly, against OSM's published NBI OpenAPI
(``contracts/osm/osm-openapi.yaml``) through core's strict emulator base
(``netweave.testing.emulators.StrictContract``): an unknown field or an undeclared query
parameter fails, in a request or in an answer. Where the 2020 document is narrower than NBI,
:data:`NBI_OVERRIDES` widens it by exactly the fields NBI has, each with its source. Request
bodies of the LCM operations are also checked against the JSON schemas NBI itself enforces
(``validation.py``, transcribed from research/backends.md §3.4). A violation is recorded and
answered with an error; the test fixture fails the test at teardown when any were recorded.

Behaviour copied from the real NBI (backends.md §3): tokens from ``/admin/v1/tokens`` that
expire; YAML answers unless ``Accept: application/json``; errors as ``{code, status, detail}``;
descriptors parsed from the uploaded archive (409 on a duplicate id, 409 when deleting one in
use); NS instances whose LCM operations run asynchronously through PROCESSING into COMPLETED,
PARTIALLY_COMPLETED, FAILED or FAILED_TEMP, serialised per NS; KDU ``upgrade``/``rollback``
primitives with Helm revision semantics; step scaling bounded by the descriptor.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import socket
import ssl
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import yaml
from netweave.testing.contracts import ContractValidator, ContractViolation
from netweave.testing.emulators import StrictContract

BASE = "/osm"
PACKAGE_MEDIA = {"application/zip", "application/gzip", "application/x-gzip"}

# -- NBI's own request schemas (osm_nbi/validation.py, research/backends.md §3.4) -------------

_OBJECT = {"type": "object"}
_UUID = {"type": "string", "format": "uuid"}
_KDU_PARAMS = {
    "type": "object",
    "properties": {
        "kdu_name": {"type": "string"},
        "additionalParams": _OBJECT,
        "kdu_model": {"type": "string"},
        "k8s-namespace": {"type": "string"},
        "kdu-deployment-name": {"type": "string"},
    },
    "required": ["kdu_name"],
    "minProperties": 2,
    "additionalProperties": False,
}
NS_INSTANTIATE = {
    "type": "object",
    "properties": {
        "lcmOperationType": {"type": "string"},
        "nsInstanceId": _UUID,
        "nsName": {"type": "string"},
        "nsDescription": {"type": ["string", "null"]},
        "nsdId": _UUID,
        "vimAccountId": _UUID,
        "wimAccountId": {"type": ["string", "boolean", "null"]},
        "k8s-namespace": {"type": "string"},
        "ssh_keys": {"type": "array", "items": {"type": "string"}},
        "timeout_ns_deploy": {"type": "integer"},
        "placement-engine": {"type": "string"},
        "placement-constraints": _OBJECT,
        "additionalParamsForNs": _OBJECT,
        "additionalParamsForVnf": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "member-vnf-index": {"type": "string"},
                    "additionalParams": _OBJECT,
                    "k8s-namespace": {"type": "string"},
                    "additionalParamsForVdu": {"type": "array"},
                    "additionalParamsForKdu": {"type": "array", "items": _KDU_PARAMS},
                },
                "required": ["member-vnf-index"],
                "minProperties": 2,
                "additionalProperties": False,
            },
        },
        "vnf": {"type": "array"},
        "vld": {"type": "array"},
        "nsConfigTemplateId": {"type": "string"},
        "config-units": _OBJECT,
    },
    "required": ["nsName", "nsdId", "vimAccountId"],
    "additionalProperties": False,
}
NS_TERMINATE = {
    "type": "object",
    "properties": {
        "autoremove": {"type": "boolean"},
        "timeout_ns_terminate": {"type": "integer"},
        "skip_terminate_primitives": {"type": "boolean"},
    },
    "additionalProperties": False,
}
NS_ACTION = {
    "type": "object",
    "properties": {
        "primitive": {"type": "string"},
        "primitive_params": _OBJECT,
        "member_vnf_index": {"type": "string"},
        "vdu_id": {"type": "string"},
        "vdu_count_index": {"type": "integer"},
        "kdu_name": {"type": "string"},
        "timeout_ns_action": {"type": "integer"},
    },
    "required": ["primitive", "primitive_params"],
    "additionalProperties": False,
}
NS_SCALE = {
    "type": "object",
    "properties": {
        "scaleType": {"enum": ["SCALE_VNF"]},
        "timeout_ns_scale": {"type": "integer"},
        "scaleTime": {"type": "string"},
        "scaleVnfData": {
            "type": "object",
            "properties": {
                "scaleVnfType": {"enum": ["SCALE_OUT", "SCALE_IN"]},
                "scaleByStepData": {
                    "type": "object",
                    "properties": {
                        "scaling-group-descriptor": {"type": "string"},
                        "scaling-policy": {"type": "string"},
                        "member-vnf-index": {"type": "string"},
                    },
                    "required": ["scaling-group-descriptor", "member-vnf-index"],
                    "additionalProperties": False,
                },
            },
            "required": ["scaleVnfType", "scaleByStepData"],
            "additionalProperties": False,
        },
    },
    "required": ["scaleType", "scaleVnfData"],
    "additionalProperties": False,
}
CREATE_TOKEN = {
    "type": "object",
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string"},
        "project_id": {"type": "string"},
    },
    "required": ["username", "password"],
    "additionalProperties": False,
}
NBI_SCHEMAS = {
    "createToken": CREATE_TOKEN,
    "createNSinstanceContent": NS_INSTANTIATE,
    "terminateNSinstance": NS_TERMINATE,
    "actionOnNSinstance": NS_ACTION,
    "scaleNSinstance": NS_SCALE,
}


# -- where the published NBI document is narrower than NBI --------------------------------------

#: The package records NBI answers are the stored descriptor itself (ETSI GS NFV-SOL 006 VNFD /
#: NSD top-level nodes as OSM's information model keeps them) plus NBI's ``_admin`` block
#: (research/backends.md §3.2-3.3); the document lists only ``_id``, ``id``, ``name`` and
#: ``description``. Exactly these fields are added, nothing else: an invented one still fails.
_VNFD_FIELDS: dict[str, Any] = {
    "_admin": _OBJECT,
    "provider": {"type": "string"},
    "product-name": {"type": "string"},
    "version": {"type": "string"},
    "mgmt-cp": {"type": "string"},
    "vdu": {"type": "array"},
    "ext-cpd": {"type": "array"},
    "df": {"type": "array"},
    "kdu": {"type": "array"},
    "k8s-cluster": _OBJECT,
}
_NSD_FIELDS: dict[str, Any] = {
    "_admin": _OBJECT,
    "designer": {"type": "string"},
    "version": {"type": "string"},
    "vnfd-id": {"type": "array", "items": {"type": "string"}},
    "df": {"type": "array"},
}

_TEXT = {"type": "string"}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
#: An NS instance record (NBI's ``nsrs`` collection, research/backends.md §3.3-3.4): the
#: fields NBI's ``ns_instances_content`` answers carry beyond the document's few.
_NSR_FIELDS: dict[str, Any] = {
    "_admin": _OBJECT,
    "nsState": _TEXT,
    "operational-status": _TEXT,
    "config-status": _TEXT,
    "detailed-status": _TEXT,
    "currentOperation": _TEXT,
    "currentOperationID": _NULLABLE_TEXT,
    "errorDescription": _NULLABLE_TEXT,
    "errorDetail": _NULLABLE_TEXT,
    "create-time": {"type": "number"},
    "instantiate_params": _OBJECT,
    "constituent-vnfr-ref": {"type": "array", "items": _TEXT},
    "name-ref": _TEXT,
    "short-name": _TEXT,
    "nsd": _OBJECT,
    "nsd-id": _TEXT,
    "nsd-name-ref": _TEXT,
    "nsd-ref": _TEXT,
}
#: An LCM operation record (NBI's ``nslcmops``): its place in the NS's queue, LCM's stage
#: text and the error LCM wrote (backends.md §3.4).
_NSLCMOP_FIELDS: dict[str, Any] = {
    "queuePosition": {"type": "integer", "nullable": True},
    "stage": _TEXT,
    "errorMessage": _NULLABLE_TEXT,
    # The operation's request body as NBI received it (instantiate, action, scale or
    # terminate), already checked against NBI_SCHEMAS on the way in; the document lists only
    # the instantiate fields.
    "operationParams": _OBJECT,
}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "string"}}


def nbi_overrides(document: dict[str, Any]) -> dict[str, Any]:
    """:data:`NBI_OVERRIDES` for ``document`` (the published schemas, widened)."""
    schemas = document["components"]["schemas"]

    def widened(name: str, fields: dict[str, Any]) -> dict[str, Any]:
        schema = copy.deepcopy(schemas[name])
        schema["properties"] = {**schema.get("properties", {}), **fields}
        return schema

    def filtered(path: str, *filters: dict[str, Any]) -> dict[str, Any]:
        operation = copy.deepcopy(document["paths"][path]["get"])
        operation["parameters"] = [*operation.get("parameters", []), *filters]
        return operation

    # NBI filters a list by any record field named in the query (``?name=x``: base_topic.py's
    # list filter); the document declares none. Only the filters the adapter sends are added.
    return {
        "#/components/schemas/VnfPkgInfo": widened("VnfPkgInfo", _VNFD_FIELDS),
        "#/components/schemas/NsdInfo": widened("NsdInfo", _NSD_FIELDS),
        # A VIM account's state is NBI's ``_admin.operationalState`` (backends.md §3.3).
        "#/components/schemas/VimInfo": widened("VimInfo", {"_admin": _OBJECT}),
        "#/components/schemas/K8sClusterInfo": widened("K8sClusterInfo", {"_admin": _OBJECT}),
        "#/components/schemas/NsInstance": widened("NsInstance", _NSR_FIELDS),
        "#/components/schemas/NsLcmOpOcc": widened("NsLcmOpOcc", _NSLCMOP_FIELDS),
        "#/paths/~1vnfpkgm~1v1~1vnf_packages_content/get": filtered(
            "/vnfpkgm/v1/vnf_packages_content", _query("id", "the VNFD's id")
        ),
        "#/paths/~1admin~1v1~1k8sclusters/get": filtered(
            "/admin/v1/k8sclusters", _query("vim_account", "the cluster's VIM account")
        ),
        "#/paths/~1nslcm~1v1~1ns_instances_content/get": filtered(
            "/nslcm/v1/ns_instances_content", _query("name", "the NS instance's name")
        ),
        "#/paths/~1nslcm~1v1~1ns_lcm_op_occs/get": filtered(
            "/nslcm/v1/ns_lcm_op_occs", _query("nsInstanceId", "the operation's NS instance")
        ),
        "#/paths/~1admin~1v1~1vim_accounts/get": filtered(
            "/admin/v1/vim_accounts", _query("name", "the VIM account's name")
        ),
    }


def load_contract(path: Path) -> ContractValidator:
    """OSM's NBI document, strict, widened by :func:`nbi_overrides`."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return ContractValidator(
        document,
        uri=path.resolve().as_uri(),
        strict=True,
        overrides=nbi_overrides(document),
        base_path=BASE,
    )


class NbiError(Exception):
    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Outcome:
    """How the next matching operation ends (see :meth:`OsmNbiEmulator.plan`)."""

    state: str
    detail: str
    lcm_operation_type: str
    primitive: str | None = None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _now() -> float:
    return time.time()


class OsmNbiEmulator:
    def __init__(
        self,
        contract: Path,
        *,
        username: str = "netweave",
        password: str = "osm-secret",
        project: str = "admin",
        token_ttl: float = 3600.0,
        op_duration: float = 0.05,
    ) -> None:
        self.contract = load_contract(contract)
        #: Both directions checked; the fixture fails the test at teardown (violations are
        #: ``strict.violations``, also reachable as ``violations``).
        self.strict = StrictContract(self.contract)
        self.schemas = {
            name: jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
            for name, schema in NBI_SCHEMAS.items()
        }
        self.username = username
        self.password = password
        self.project_name = project
        self.project_id = str(uuid.uuid4())
        self.user_id = str(uuid.uuid4())
        self.token_ttl = token_ttl
        self.op_duration = op_duration
        self.lock = threading.RLock()
        self.violations: list[str] = self.strict.violations
        #: (method, path, Accept header, status) of every request, for assertions.
        self.log: list[tuple[str, str, str, int]] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self.vim_id = str(uuid.uuid4())
        self.vims = {
            self.vim_id: {
                "_id": self.vim_id,
                "name": "k8s-vim",
                "vim_type": "openstack",
                "vim_url": "https://vim.invalid:5000/v3",
                "_admin": {"operationalState": "ENABLED"},
            }
        }
        cluster_id = str(uuid.uuid4())
        # ``nets`` is left out: the contract types it as an array, NBI stores the request's
        # object ({net-name: vim-net}); nothing here reads it.
        self.k8s_clusters: dict[str, dict[str, Any]] = {
            cluster_id: {
                "_id": cluster_id,
                "name": "edge-k8s",
                "vim_account": self.vim_id,
                "k8s_version": "1.29",
                "namespace": "kube-system",
                "credentials": {"apiVersion": "v1", "kind": "Config"},
                "_admin": {
                    "operationalState": "ENABLED",
                    "helm-chart-v3": {"id": str(uuid.uuid4()), "created": True},
                },
            }
        }
        self.vnfds: dict[str, dict[str, Any]] = {}
        self.nsds: dict[str, dict[str, Any]] = {}
        self.nsrs: dict[str, dict[str, Any]] = {}
        self.ops: dict[str, dict[str, Any]] = {}
        #: Private per-op bookkeeping (due time, planned outcome), not part of the record.
        self._op_due: dict[str, float] = {}
        self._op_outcome: dict[str, Outcome | None] = {}
        #: Helm revisions (values) per NS and ``member/kdu``.
        self.helm: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._plans: list[Outcome] = []
        self._forced: list[tuple[str, HTTPStatus, str]] = []
        self.unavailable = False
        #: While set, only the NS instance list answers 503 (single reads still work).
        self.lists_unavailable = False
        #: ``failing``: the message every change's LCM operation fails with; ``crashing``:
        #: every change request loses its connection before NBI answers (KitFaults).
        self._failing: str | None = None
        self._crashing = False
        #: Seconds every answer is held back (a slow or hung NBI).
        self.stall = 0.0
        #: Helm charts LCM cannot install (a KNF whose chart fails): instantiating or upgrading
        #: a KDU to one fails like Helm's error in LCM.
        self.failing_charts: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._tls: ssl.SSLContext | None = None
        self._thread: threading.Thread | None = None

    # -- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host!s}:{port}"

    def start(self, tls: ssl.SSLContext | None = None) -> None:
        """Serve on a free loopback port; with ``tls``, over HTTPS."""
        self._tls = tls
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                emulator._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- knobs for tests -------------------------------------------------------------------

    def plan(
        self,
        lcm_operation_type: str,
        state: str,
        detail: str = "planned failure",
        *,
        primitive: str | None = None,
    ) -> None:
        """The next operation of this type (and primitive) ends in ``state``."""
        with self.lock:
            self._plans.append(Outcome(state, detail, lcm_operation_type, primitive))

    def force_error(self, operation_id: str, status: HTTPStatus, detail: str) -> None:
        """The next request of this contract operation is answered with an NBI error."""
        with self.lock:
            self._forced.append((operation_id, status, detail))

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token["expires"] = _now() - 1

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.unavailable = True
        try:
            yield
        finally:
            self.unavailable = False

    @contextlib.contextmanager
    def failing(self, message: str) -> Iterator[None]:
        """Every NS change LCM starts in the block (instantiate, KDU action, scale, terminate)
        ends FAILED, LCM's error detail carrying ``message`` (the kit's KitFaults)."""
        with self.lock:
            self._failing = message
        try:
            yield
        finally:
            with self.lock:
                self._failing = None

    @contextlib.contextmanager
    def crashing(self) -> Iterator[None]:
        """NBI dies while serving every change request (any method but GET; tokens aside): the
        connection closes before an answer and nothing is recorded (the kit's KitFaults)."""
        self._crashing = True
        try:
            yield
        finally:
            self._crashing = False

    def break_ns(self, ns_id: str, detail: str) -> None:
        """OSM's LCM finds the NS instance broken after it was deployed (a KDU crashed, its
        healing failed): the record says so; no operation of the gateway's is involved."""
        with self.lock:
            nsr = self.nsrs[ns_id]
            nsr["nsState"] = "BROKEN"
            nsr["operational-status"] = "failed"
            nsr["detailed-status"] = detail
            nsr["errorDetail"] = detail
            for kdu in nsr["_admin"]["deployed"]["K8s"]:
                kdu["status"] = "Upgrade failed"

    def remove_ns(self, ns_id: str) -> None:
        """Someone deletes the NS instance in OSM directly (``osm ns-delete --force``)."""
        with self.lock:
            self._remove_nsr(ns_id)

    def count(self, method: str, suffix: str) -> int:
        with self.lock:
            return sum(1 for m, p, _, _ in self.log if m == method and p.endswith(suffix))

    # -- request handling ------------------------------------------------------------------

    @staticmethod
    def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            for _ in range(1_000_000):
                size = int(handler.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(100):  # trailers end with an empty line
                        if handler.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                            break
                    break
                parts.append(handler.rfile.read(size))
                handler.rfile.readline(8)
            return b"".join(parts)
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        raw = self._read_body(handler)
        parts = urlsplit(handler.path)
        path, query = parts.path, dict(parse_qsl(parts.query))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        accept = headers.get("accept", "")
        if self.stall:
            time.sleep(self.stall)
        if self._crashing and method != "GET" and not path.startswith(f"{BASE}/admin/"):
            with self.lock:
                self.log.append((method, path, accept, 0))
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            reply = self._dispatch(method, path, query, raw, headers)
        except NbiError as exc:
            reply = Reply(
                exc.status, {"code": exc.status.name, "status": exc.status, "detail": exc.detail}
            )
        except ContractViolation as exc:
            self.strict.record(f"request {method} {path}: {exc}")
            status = HTTPStatus.UNPROCESSABLE_ENTITY
            reply = Reply(status, {"code": status.name, "status": status, "detail": str(exc)})
        except Exception as exc:  # an emulator bug must show as a test failure, not a hang
            self.strict.record(f"emulator error on {method} {path}: {exc!r}")
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            reply = Reply(status, {"code": status.name, "status": status, "detail": repr(exc)})
        self._validate_reply(method, path, reply)
        with self.lock:
            self.log.append((method, path, accept, reply.status))
        self._send(handler, reply, accept)

    def _validate_reply(self, method: str, path: str, reply: Reply) -> None:
        self.strict.response(
            method, path, reply.status, reply.body, {"content-type": "application/json"}
        )

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply, accept: str) -> None:
        if reply.body is None:
            payload, content_type = b"", None
        elif reply.status >= 300 or "application/json" in accept:
            # NBI sends errors as JSON whatever was asked; data only when asked for JSON.
            payload, content_type = json.dumps(reply.body).encode(), "application/json"
        else:
            payload = yaml.safe_dump(reply.body, default_flow_style=False).encode()
            content_type = "application/yaml"
        handler.send_response(reply.status)
        if content_type:
            handler.send_header("Content-Type", content_type)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if payload:
            handler.wfile.write(payload)

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], raw: bytes, headers: dict[str, str]
    ) -> Reply:
        if self.unavailable:
            raise NbiError(HTTPStatus.SERVICE_UNAVAILABLE, "NBI is restarting")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        binary = content_type in PACKAGE_MEDIA
        body: Any = None
        if raw and not binary:
            if content_type != "application/json":
                raise ContractViolation(
                    f"the client sent {content_type or 'no'} Content-Type with a JSON body",
                    operation=f"{method} {path}",
                    location="header 'Content-Type'",
                )
            body = json.loads(raw)
        match = self.contract.validate_request(method, path, query, body, headers)
        op_id = match.operation_id
        request_body = (
            (self.contract.document["paths"][match.template][method.lower()]).get("requestBody")
            or {}
        )
        if binary:
            declared = set((request_body.get("content") or {}).keys())
            # The contract lists application/zip; NBI also takes gzip (backends.md §3.2).
            if not declared & {"application/zip"} or content_type not in PACKAGE_MEDIA:
                raise ContractViolation(
                    f"{content_type} upload not accepted here",
                    operation=match.label,
                    location="header 'Content-Type'",
                )
        if op_id in self.schemas and body is not None:
            error = jsonschema.exceptions.best_match(self.schemas[op_id].iter_errors(body))
            if error is not None:
                # NBI answers its own schema failures with 422; it is still a client bug.
                self.strict.record(f"NBI schema {op_id}: {error.message}")
                where = ".".join(map(str, error.absolute_path))
                raise NbiError(
                    HTTPStatus.UNPROCESSABLE_ENTITY, f"Format error at '{where}' '{error.message}'"
                )
        with self.lock:
            for index, (forced_op, status, detail) in enumerate(self._forced):
                if forced_op == op_id:
                    del self._forced[index]
                    raise NbiError(status, detail)
            if op_id != "createToken":
                self._authenticate(headers)
            self._advance()
            handler = getattr(self, f"op_{op_id}", None)
            if handler is None:
                raise NbiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{op_id} is not emulated")
            return handler(match.path_params, query, body if not binary else raw, headers)  # type: ignore[no-any-return]

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise NbiError(HTTPStatus.UNAUTHORIZED, "Needed a token or Authorization http header")
        token = self.tokens.get(auth[len("Bearer ") :])
        if token is None:
            raise NbiError(HTTPStatus.UNAUTHORIZED, "Invalid token")
        if token["expires"] < _now():
            raise NbiError(HTTPStatus.UNAUTHORIZED, "Expired Token or Authorization http header")

    # -- tokens and VIMs ---------------------------------------------------------------------

    def op_createToken(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        if not isinstance(body, dict):
            # An aborted request (the client hung up while sending, e.g. on teardown under load)
            # arrives without a body; NBI answers that with 400 too.
            raise NbiError(HTTPStatus.BAD_REQUEST, "a token request needs a JSON body")
        project = body.get("project_id", self.project_name)
        if body.get("username") != self.username or body.get("password") != self.password:
            raise NbiError(HTTPStatus.UNAUTHORIZED, "Invalid username/password")
        if project not in (self.project_name, self.project_id):
            raise NbiError(HTTPStatus.UNAUTHORIZED, f"project {project!r} not allowed")
        token_id = uuid.uuid4().hex
        issued = _now()
        token = {
            "_id": token_id,
            "id": token_id,
            "issued_at": issued,
            "expires": issued + self.token_ttl,
            "project_id": self.project_id,
            "project_name": self.project_name,
            "username": self.username,
            "user_id": self.user_id,
            "admin": True,
            "remote_host": "127.0.0.1",
            "remote_port": 0,
            "roles": [{"name": "system_admin", "id": str(uuid.uuid4())}],
        }
        self.tokens[token_id] = token
        return Reply(200, token, {"Location": f"{BASE}/admin/v1/tokens/{token_id}"})

    def op_deleteToken(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        if self.tokens.pop(params["tokenId"], None) is None:
            raise NbiError(HTTPStatus.NOT_FOUND, "token not found")
        return Reply(200, "deleted")

    def op_getVimAccounts(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, _filter(list(self.vims.values()), query))

    def op_getVimAccount(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        vim = self.vims.get(params["vimAccountId"])
        if vim is None:
            raise NbiError(HTTPStatus.NOT_FOUND, "vim account not found")
        return Reply(200, vim)

    def op_getK8sClusters(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, _filter(list(self.k8s_clusters.values()), query))

    # -- packages --------------------------------------------------------------------------

    def _onboard(self, kind: str, raw: bytes, headers: dict[str, str]) -> Reply:
        md5 = headers.get("content-file-md5")
        if md5 and hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5:
            raise NbiError(HTTPStatus.CONFLICT, "Content-File-MD5 does not match the content")
        descriptor = _descriptor_from_archive(raw, headers.get("content-type", ""), kind)
        store = self.vnfds if kind == "vnfd" else self.nsds
        if any(d["id"] == descriptor["id"] for d in store.values()):
            raise NbiError(
                HTTPStatus.CONFLICT,
                f"{kind} with id '{descriptor['id']}' already exists for this project",
            )
        if kind == "nsd":
            known = {v["id"] for v in self.vnfds.values()}
            for vnfd_id in descriptor.get("vnfd-id") or []:
                if vnfd_id not in known:
                    raise NbiError(
                        HTTPStatus.CONFLICT,
                        f"Descriptor error at 'vnfd-id'='{vnfd_id}' references a non existing vnfd",
                    )
        osm_id = str(uuid.uuid4())
        now = _now()
        descriptor["_id"] = osm_id
        descriptor["_admin"] = {
            "onboardingState": "ONBOARDED",
            "operationalState": "ENABLED",
            "usageState": "NOT_IN_USE",
            "created": now,
            "modified": now,
            "projects_read": [self.project_id],
            "projects_write": [self.project_id],
            "storage": {"pkg-md5": hashlib.md5(raw, usedforsecurity=False).hexdigest()},
        }
        store[osm_id] = descriptor
        collection = (
            "vnfpkgm/v1/vnf_packages_content" if kind == "vnfd" else "nsd/v1/ns_descriptors_content"
        )
        return Reply(201, {"id": osm_id}, {"Location": f"{BASE}/{collection}/{osm_id}"})

    def op_uploadVnfPkgsContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return self._onboard("vnfd", body, headers)

    def op_uploadNsPkgsContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return self._onboard("nsd", body, headers)

    def op_getVnfPkgsContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, _filter(list(self.vnfds.values()), query))

    def op_getNsPkgsContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, _filter(list(self.nsds.values()), query))

    def op_getVnfPkgsIdContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, self._get(self.vnfds, params["packageContentId"], "vnfd"))

    def op_getNsPkgsIdContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, self._get(self.nsds, params["nsdInfoId"], "nsd"))

    def op_deleteVnfPkgsIdContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        vnfd = self._get(self.vnfds, params["packageContentId"], "vnfd")
        if any(vnfd["id"] in (n.get("vnfd-id") or []) for n in self.nsds.values()):
            raise NbiError(
                HTTPStatus.CONFLICT, "There is at least one NSD referencing this descriptor"
            )
        del self.vnfds[vnfd["_id"]]
        return Reply(204)

    def op_deleteNSPkgsIdContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        nsd = self._get(self.nsds, params["nsdInfoId"], "nsd")
        if any(r.get("nsd-id") == nsd["_id"] for r in self.nsrs.values()):
            raise NbiError(
                HTTPStatus.CONFLICT, "There is at least one NS instance using this descriptor"
            )
        del self.nsds[nsd["_id"]]
        return Reply(204)

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], key: str, what: str) -> dict[str, Any]:
        found = store.get(key)
        if found is None:
            raise NbiError(HTTPStatus.NOT_FOUND, f"{what} '{key}' not found")
        return found

    # -- NS instances ----------------------------------------------------------------------

    def _layout(self, nsd: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        members = []
        for df in nsd.get("df") or []:
            for profile in df.get("vnf-profile") or []:
                vnfd = next(v for v in self.vnfds.values() if v["id"] == profile["vnfd-id"])
                members.append((str(profile["id"]), vnfd))
        return members

    def op_createNSinstanceContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        nsd = self.nsds.get(body["nsdId"])
        if nsd is None:
            raise NbiError(HTTPStatus.NOT_FOUND, f"nsd '{body['nsdId']}' not found")
        if body["vimAccountId"] not in self.vims:
            raise NbiError(
                HTTPStatus.BAD_REQUEST,
                f"Invalid vimAccountId '{body['vimAccountId']}' not present for the project",
            )
        members = self._layout(nsd)
        kdu_names = {(m, k["name"]) for m, v in members for k in v.get("kdu") or []}
        for vnf in body.get("additionalParamsForVnf") or []:
            for kdu in vnf.get("additionalParamsForKdu") or []:
                if (vnf["member-vnf-index"], kdu["kdu_name"]) not in kdu_names:
                    raise NbiError(
                        HTTPStatus.UNPROCESSABLE_ENTITY,
                        f"Invalid kdu_name '{kdu['kdu_name']}' for member-vnf-index "
                        f"'{vnf['member-vnf-index']}'",
                    )
        ns_id = str(uuid.uuid4())
        nsr = {
            "_id": ns_id,
            "id": ns_id,
            "name": body["nsName"],
            "name-ref": body["nsName"],
            "short-name": body["nsName"],
            "description": body.get("nsDescription") or "",
            "nsd-id": nsd["_id"],
            "nsd-ref": nsd["id"],
            "nsd-name-ref": nsd.get("name", nsd["id"]),
            "nsd": copy.deepcopy({k: v for k, v in nsd.items() if k != "_admin"}),
            "instantiate_params": copy.deepcopy(body),
            "nsState": "NOT_INSTANTIATED",
            "operational-status": "init",
            "config-status": "init",
            "detailed-status": "scheduled",
            "currentOperation": "IDLE",
            "currentOperationID": None,
            "create-time": _now(),
            "constituent-vnfr-ref": [],
            "_admin": {
                "nsState": "NOT_INSTANTIATED",
                "deployed": {"K8s": [], "VCA": []},
                "scaling-group": [],
                "created": _now(),
                "modified": _now(),
                "projects_read": [self.project_id],
                "projects_write": [self.project_id],
            },
        }
        self.nsrs[ns_id] = nsr
        op = self._new_op(ns_id, "instantiate", {**body, "nsInstanceId": ns_id})
        return Reply(
            201,
            {"id": ns_id, "nslcmop_id": op["_id"]},
            {"Location": f"{BASE}/nslcm/v1/ns_instances_content/{ns_id}"},
        )

    def op_getNSinstancesContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        if self.lists_unavailable:
            raise NbiError(HTTPStatus.SERVICE_UNAVAILABLE, "NBI is restarting")
        return Reply(200, _filter(list(self.nsrs.values()), query))

    def op_getNSinstanceContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, self._get(self.nsrs, params["nsInstanceContentId"], "nsr"))

    def op_deleteNSinstanceContent(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        nsr = self._get(self.nsrs, params["nsInstanceContentId"], "nsr")
        if self._busy(nsr["_id"]):
            raise NbiError(HTTPStatus.CONFLICT, "there is a pending operation on this NS")
        if nsr["_admin"]["nsState"] == "INSTANTIATED" and query.get("FORCE") != "True":
            op = self._new_op(
                nsr["_id"], "terminate", {"autoremove": True, "nsInstanceId": nsr["_id"]}
            )
            return Reply(202, {"_id": op["_id"]})
        self._remove_nsr(nsr["_id"])
        return Reply(204)

    def _busy(self, ns_id: str) -> bool:
        return any(
            o["nsInstanceId"] == ns_id and o["operationState"] == "PROCESSING"
            for o in self.ops.values()
        )

    def _instantiated(self, ns_id: str) -> dict[str, Any]:
        nsr = self._get(self.nsrs, ns_id, "nsr")
        if nsr["_admin"]["nsState"] != "INSTANTIATED":
            raise NbiError(HTTPStatus.CONFLICT, "ns_instance must be INSTANTIATED for this action")
        return nsr

    def op_terminateNSinstance(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        nsr = self._instantiated(params["nsInstanceId"])
        op = self._new_op(nsr["_id"], "terminate", {**(body or {}), "nsInstanceId": nsr["_id"]})
        return self._accepted(op)

    def op_actionOnNSinstance(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        nsr = self._instantiated(params["nsInstanceId"])
        if body.get("kdu_name"):
            key = f"{body.get('member_vnf_index')}/{body['kdu_name']}"
            if key not in self.helm.get(nsr["_id"], {}):
                raise NbiError(
                    HTTPStatus.BAD_REQUEST, f"Invalid kdu_name / member_vnf_index {key!r}"
                )
            if body["primitive"] not in ("upgrade", "rollback", "status"):
                raise NbiError(
                    HTTPStatus.BAD_REQUEST, f"KDU primitive {body['primitive']!r} unknown"
                )
        op = self._new_op(nsr["_id"], "action", {**body, "nsInstanceId": nsr["_id"]})
        return self._accepted(op)

    def op_scaleNSinstance(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        nsr = self._instantiated(params["nsInstanceId"])
        step = body["scaleVnfData"]["scaleByStepData"]
        members = dict(self._layout(self.nsds[nsr["nsd-id"]]))
        vnfd = members.get(step["member-vnf-index"])
        aspects = [
            a["id"] for df in (vnfd or {}).get("df") or [] for a in df.get("scaling-aspect") or []
        ]
        if step["scaling-group-descriptor"] not in aspects:
            raise NbiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"Invalid scaling-group-descriptor '{step['scaling-group-descriptor']}'",
            )
        op = self._new_op(nsr["_id"], "scale", {**body, "nsInstanceId": nsr["_id"]})
        return self._accepted(op)

    @staticmethod
    def _accepted(op: dict[str, Any]) -> Reply:
        return Reply(
            202, {"id": op["_id"]}, {"Location": f"{BASE}/nslcm/v1/ns_lcm_op_occs/{op['_id']}"}
        )

    def op_getNSLCMOpOccs(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, _filter(list(self.ops.values()), query))

    def op_getNSLCMOpOcc(self, params: Any, query: Any, body: Any, headers: Any) -> Reply:
        return Reply(200, self._get(self.ops, params["nsLcmOpOccId"], "nslcmop"))

    # -- the LCM: operations progress in time ------------------------------------------------

    def _new_op(self, ns_id: str, op_type: str, params: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        op_id = str(uuid.uuid4())
        queue = [
            self._op_due[o]
            for o, r in self.ops.items()
            if r["nsInstanceId"] == ns_id and r["operationState"] == "PROCESSING"
        ]
        outcome = None
        for index, plan in enumerate(self._plans):
            if plan.lcm_operation_type == op_type and plan.primitive in (
                None,
                params.get("primitive"),
            ):
                outcome = self._plans.pop(index)
                break
        if outcome is None and self._failing is not None:
            # How LCM words a KDU failure: the step, then the Helm/K8s error it got.
            step = {"instantiate": "Deploying KDUs", "terminate": "Terminating KDUs"}.get(
                op_type, f"Executing {params.get('primitive') or op_type}"
            )
            outcome = Outcome("FAILED", f"{step}: {self._failing}", op_type)
        op = {
            "_id": op_id,
            "id": op_id,
            "operationState": "PROCESSING",
            "queuePosition": len(queue),
            "stage": "",
            "detailed-status": "In progress",
            "statusEnteredTime": now,
            "nsInstanceId": ns_id,
            "lcmOperationType": op_type,
            "startTime": now,
            "isAutomaticInvocation": False,
            "operationParams": {**params, "lcmOperationType": op_type},
            "isCancelPending": False,
            "links": {
                "self": f"{BASE}/nslcm/v1/ns_lcm_op_occs/{op_id}",
                "nsInstance": f"{BASE}/nslcm/v1/ns_instances/{ns_id}",
            },
        }
        self.ops[op_id] = op
        self._op_due[op_id] = max([time.monotonic(), *queue]) + self.op_duration
        self._op_outcome[op_id] = outcome
        nsr = self.nsrs[ns_id]
        nsr["currentOperationID"] = op_id
        if op_type == "instantiate":
            nsr["nsState"] = "BUILDING"
            nsr["_admin"]["nsState"] = "INSTANTIATED"
            nsr["currentOperation"] = "INSTANTIATING"
        elif op_type == "terminate":
            nsr["nsState"] = "TERMINATING"
            nsr["currentOperation"] = "TERMINATING"
            nsr["operational-status"] = "terminating"
        elif op_type == "scale":
            nsr["currentOperation"] = "SCALING"
            nsr["operational-status"] = "scaling"
        else:
            nsr["currentOperation"] = "RUNNING ACTION"
        return op

    def _advance(self) -> None:
        now = time.monotonic()
        for op_id in sorted(self._op_due, key=self._op_due.__getitem__):
            op = self.ops.get(op_id)
            if op is None or op["operationState"] != "PROCESSING" or self._op_due[op_id] > now:
                continue
            self._finish(op, self._op_outcome.get(op_id))

    def _finish(self, op: dict[str, Any], outcome: Outcome | None) -> None:
        ns_id = op["nsInstanceId"]
        nsr = self.nsrs[ns_id]
        params = op["operationParams"]
        state, detail = (
            ("COMPLETED", "Done") if outcome is None else (outcome.state, outcome.detail)
        )
        kind = op["lcmOperationType"]
        if state in ("COMPLETED", "PARTIALLY_COMPLETED"):
            error = self._apply(kind, nsr, params)
            if error is not None:
                state, detail = "FAILED", error
        op["operationState"] = state
        op["detailed-status"] = detail
        op["statusEnteredTime"] = _now()
        if state not in ("COMPLETED", "PARTIALLY_COMPLETED"):
            op["errorMessage"] = detail
        nsr["currentOperation"] = "IDLE"
        nsr["currentOperationID"] = None
        nsr["_admin"]["modified"] = _now()
        ok = state in ("COMPLETED", "PARTIALLY_COMPLETED")
        if kind == "instantiate":
            nsr["nsState"] = ("READY" if state == "COMPLETED" else "DEGRADED") if ok else "BROKEN"
            nsr["operational-status"] = "running" if ok else "failed"
            nsr["config-status"] = "configured" if ok else "failed"
            nsr["detailed-status"] = detail
            if not ok:
                nsr["errorDescription"] = "Operation: INSTANTIATING.{}".format(op["_id"])
                nsr["errorDetail"] = detail
        elif kind == "terminate":
            if ok:
                if params.get("autoremove"):
                    self._remove_nsr(ns_id)
                    return
            else:
                nsr["nsState"] = "BROKEN"
                nsr["operational-status"] = "failed"
                nsr["detailed-status"] = detail
        else:
            nsr["operational-status"] = "running"
            nsr["detailed-status"] = detail

    def _apply(self, kind: str, nsr: dict[str, Any], params: dict[str, Any]) -> str | None:
        """Carry out a succeeding operation; a string is the reason it fails instead."""
        ns_id = nsr["_id"]
        if kind == "instantiate":
            given = {
                f"{vnf['member-vnf-index']}/{kdu['kdu_name']}": kdu
                for vnf in params.get("additionalParamsForVnf") or []
                for kdu in vnf.get("additionalParamsForKdu") or []
            }
            releases: dict[str, list[dict[str, Any]]] = {}
            deployed = []
            clusters = [
                c
                for c in self.k8s_clusters.values()
                if c["vim_account"] == params["vimAccountId"]
                and c["_admin"]["operationalState"] == "ENABLED"
            ]
            for member, vnfd in self._layout(self.nsds[nsr["nsd-id"]]):
                for kdu in vnfd.get("kdu") or []:
                    if not clusters:
                        # What LCM says when the VIM has no K8s cluster for the KDU.
                        return (
                            "No k8scluster with type 'helm-chart-v3' found for vim_account "
                            f"'{params['vimAccountId']}'"
                        )
                    key = f"{member}/{kdu['name']}"
                    extra = given.get(key, {})
                    chart = str(extra.get("kdu_model") or kdu.get("helm-chart"))
                    if chart in self.failing_charts:
                        return (
                            f"Deploying KDUs: Error deploying KDU {kdu['name']}: Error: "
                            f"INSTALLATION FAILED: chart {chart}: Deployment.apps is invalid: "
                            'spec.replicas: Invalid value: "three"'
                        )
                    releases[key] = [copy.deepcopy(extra.get("additionalParams") or {})]
                    deployed.append(
                        {
                            "kdu-instance": f"{kdu['name']}-{uuid.uuid4().hex[:7]}",
                            "k8scluster-uuid": clusters[0]["_id"],
                            "k8scluster-type": "helm-chart-v3",
                            "member-vnf-index": member,
                            "kdu-name": kdu["name"],
                            "kdu-model": extra.get("kdu_model") or kdu.get("helm-chart"),
                            "namespace": extra.get("k8s-namespace")
                            or params.get("k8s-namespace")
                            or self.project_id,
                            "status": "Install complete",
                            "detailed-status": "STATUS: deployed\nREVISION: 1",
                            "operation": "install",
                            "status-time": _now(),
                        }
                    )
            self.helm[ns_id] = releases
            nsr["_admin"]["deployed"]["K8s"] = deployed
            return None
        if kind == "terminate":
            nsr["nsState"] = "NOT_INSTANTIATED"
            nsr["_admin"]["nsState"] = "NOT_INSTANTIATED"
            nsr["operational-status"] = "terminated"
            nsr["_admin"]["deployed"]["K8s"] = []
            self.helm.pop(ns_id, None)
            return None
        if kind == "action" and params.get("kdu_name"):
            key = f"{params.get('member_vnf_index')}/{params['kdu_name']}"
            revisions = self.helm[ns_id][key]
            record = next(
                k
                for k in nsr["_admin"]["deployed"]["K8s"]
                if f"{k['member-vnf-index']}/{k['kdu-name']}" == key
            )
            values = copy.deepcopy(params.get("primitive_params") or {})
            if params["primitive"] == "upgrade":
                model = values.pop("kdu_model", None)
                if model in self.failing_charts:
                    return f"Error upgrading KDU {params['kdu_name']}: UPGRADE FAILED: {model}"
                if model:
                    record["kdu-model"] = model
                revisions.append(values)
                record["status"] = "Upgrade complete"
            elif params["primitive"] == "rollback":
                if len(revisions) < 2:
                    return "Error rolling back: no previous release revision"
                revisions.append(copy.deepcopy(revisions[-2]))
                record["status"] = "Rollback complete"
            record["detailed-status"] = f"STATUS: deployed\nREVISION: {len(revisions)}"
            return None
        if kind == "scale":
            data = params["scaleVnfData"]
            step = data["scaleByStepData"]
            aspect = step["scaling-group-descriptor"]
            members = dict(self._layout(self.nsds[nsr["nsd-id"]]))
            maximum = next(
                int(a.get("max-scale-level") or 1)
                for df in members[step["member-vnf-index"]].get("df") or []
                for a in df.get("scaling-aspect") or []
                if a["id"] == aspect
            )
            groups = nsr["_admin"]["scaling-group"]
            group = next((g for g in groups if g["name"] == aspect), None)
            if group is None:
                group = {"name": aspect, "nb-scale-op": 0}
                groups.append(group)
            delta = 1 if data["scaleVnfType"] == "SCALE_OUT" else -1
            level = group["nb-scale-op"] + delta
            if level > maximum:
                return f"reached max instances for scaling group '{aspect}'"
            if level < 0:
                return f"reached min instances for scaling group '{aspect}'"
            group["nb-scale-op"] = level
            return None
        return None

    def _remove_nsr(self, ns_id: str) -> None:
        self.nsrs.pop(ns_id, None)
        self.helm.pop(ns_id, None)
        for op_id in [o for o, r in self.ops.items() if r["nsInstanceId"] == ns_id]:
            del self.ops[op_id]
            self._op_due.pop(op_id, None)
            self._op_outcome.pop(op_id, None)


def _filter(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """NBI's simple ``field=value`` filters on top-level fields (what the adapter uses)."""
    result = items
    for key, value in query.items():
        if key.isupper():  # ADMIN, FORCE, PUBLIC … are flags, not filters
            continue
        result = [i for i in result if str(i.get(key)) in value.split(",")]
    return copy.deepcopy(result)


def _descriptor_from_archive(raw: bytes, content_type: str, kind: str) -> dict[str, Any]:
    try:
        documents: list[Any] = []
        if content_type.startswith("application/zip"):
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                for name in archive.namelist():
                    if name.endswith((".yaml", ".yml")):
                        documents.append(yaml.safe_load(archive.read(name)))
        else:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith((".yaml", ".yml")):
                        handle = tar.extractfile(member)
                        assert handle is not None
                        documents.append(yaml.safe_load(handle.read()))
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, yaml.YAMLError) as exc:
        raise NbiError(HTTPStatus.BAD_REQUEST, f"invalid package: {exc}") from exc
    for document in documents:
        if isinstance(document, dict) and kind in document:
            section = document[kind]
            if kind == "nsd" and isinstance(section, dict) and isinstance(section.get("nsd"), list):
                return copy.deepcopy(section["nsd"][0])
            if isinstance(section, dict):
                return copy.deepcopy(section)
    raise NbiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"package holds no {kind} descriptor")
