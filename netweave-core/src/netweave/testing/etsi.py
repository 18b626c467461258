"""The ETSI SOL003 ``vnflcm`` contract for tests of the standard face, with the published
OpenAPI's known defects corrected (each named here, each contradicting the SOL003 text).

- ``VnfLcmOpOcc`` carries ``oneOf: [required changedInfo, required
  modificationsTriggeredByVnfPkgChange]``, which makes one of them mandatory in *every*
  occurrence. SOL003 V3.7.1 Table 5.5.2.13-1 gives both cardinality 0..1 (``changedInfo``
  present only for a completed MODIFY_INFO, the other only for a completed CHANGE_VNFPKG), and
  SOL013's default exclusions drop ``changedInfo`` from every list item. The override is the
  same schema without that ``oneOf``.
- ``VnfLcmOpOccs.Get.200`` (GET ``/vnf_lcm_op_occs``) is declared as one ``VnfLcmOpOcc``;
  SOL003 clause 5.4.12.3.2 returns an array of them (as ``/vnf_instances`` does).
- ``IndividualVnfInstance.Patch.202`` declares a ``VnfInstance`` body while its own description
  says "The response body shall be empty" (SOL003 clause 5.4.3.3.4: 202 with the op-occ's
  Location): the override declares no body.
- ``Subscriptions.Get.200`` (GET ``/subscriptions``) is declared as one ``LccnSubscription``
  while its description says "shall contain in an array the representations of all active
  subscriptions": an array of them.
- ``VnfInstanceSubscriptionFilter`` (in ``SOL003_def.yaml``) requires, in its ``anyOf``, a
  ``vnfdId`` that it does not define (the attribute is ``vnfdIds``, SOL003 Table 4.4.1.5-1), so
  a filter by VNFD ids could never validate: the subscription request and representations use
  it with ``vnfdIds``.

``vnflcm`` v1 (SOL003 V2.6.1, API version 1.3.0) has no public OpenAPI of its own version:
:func:`sol003_v1_contract` takes the paths and request bodies of the SOL003 V2.4.1 OpenAPI
(``contracts/etsi/nfv-sol003-v2.4.1``) and every response body from the NFV-TST 010 v2.6.1 JSON
Schemas (``contracts/etsi/nfv-tst010-v2.6.1``), which win where the two differ:

- the V2.4.1 ``VnfInstance`` requires ``vnfPkgId``, which V2.6.1 removed: the TST 010 schema
  is used for every VnfInstance body;
- V2.4.1 declares a ``VnfInstance`` body on the 202 of ``scale``, ``scale_to_level``,
  ``change_flavour``, ``terminate``, ``heal``, ``operate`` and ``change_ext_conn`` while their
  descriptions say "The response body shall be empty": no body is declared;
- V2.4.1 declares GET ``/vnf_lcm_op_occs`` as one ``VnfLcmOpOcc``: the TST 010 array schema;
- TST 010's ``LccnSubscriptions.schema.json`` (GET ``/subscriptions``) is one subscription: an
  array of it;
- V2.4.1 has no ``/api_versions`` (SOL013 V2.6.1 added it): declared with TST 010's
  ``ApiVersionInformation``;
- every 4xx/5xx body is TST 010's ``ProblemDetails`` (open to additional attributes, as
  SOL013 allows).

V2.4.1 declares neither the SOL013 query parameters (``filter``, selectors, the marker: its
own description says the filtering mechanism is not in that OpenAPI) nor the ``Version``
header, so requests are validated without their query string (strict bodies).
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import httpx
import yaml

from netweave.testing.contracts import ContractValidator, _load_file, relocate_definitions

VNFLCM_V2 = Path("contracts/etsi/nfv-sol002-sol003/SOL003/VNFLifecycleManagement")
_DEFS = "definitions/SOL003VNFLifecycleManagement_def.yaml"
_MEDIA = "content/application~1json/schema"


def _relocate(node: Any) -> Any:
    return relocate_definitions(node, _DEFS)


def sol003_vnflcm_contract(shared: Path, *, strict: bool = False) -> ContractValidator:
    """The SOL003 V3.7.1 vnflcm v2 contract under ``shared`` (the shared directory), corrected
    as the module docstring says."""
    folder = shared / VNFLCM_V2
    definitions = yaml.safe_load((folder / _DEFS).read_text(encoding="utf-8"))
    op_occ = copy.deepcopy(definitions["definitions"]["VnfLcmOpOcc"])
    op_occ.pop("oneOf", None)
    op_occ = _relocate(op_occ)
    responses = "#/components/responses"
    request, subscription = _subscription_schemas(folder, definitions["definitions"])
    overrides = {
        f"#/components/requestBodies/LccnSubscriptionRequest/{_MEDIA}": request,
        f"{responses}/Subscriptions.Post.201/{_MEDIA}": subscription,
        f"{responses}/IndividualSubscription.Get.200/{_MEDIA}": subscription,
        f"{responses}/IndividualVnfLcmOpOcc.Get.200/{_MEDIA}": op_occ,
        f"{responses}/FailVnfLcmOpOcc.Post.200/{_MEDIA}": op_occ,
        f"{responses}/VnfLcmOpOccs.Get.200/{_MEDIA}": {"type": "array", "items": op_occ},
        f"{responses}/IndividualVnfInstance.Patch.202/content": {},
        f"{responses}/Subscriptions.Get.200/{_MEDIA}": {"type": "array", "items": subscription},
    }
    return ContractValidator.from_file(
        folder / "VNFLifecycleManagement.yaml", strict=strict, overrides=overrides
    )


def _subscription_schemas(folder: Path, definitions: dict[str, Any]) -> tuple[Any, Any]:
    """``LccnSubscriptionRequest`` and ``LccnSubscription`` (main document's frame) whose
    ``VnfInstanceSubscriptionFilter`` requires ``vnfdIds`` where the published one names the
    undefined ``vnfdId`` (see the module docstring)."""
    general = "../General_Definitions/SOL003_def.yaml"
    common = yaml.safe_load((folder.parent / general[3:]).read_text(encoding="utf-8"))
    instance_filter = copy.deepcopy(common["definitions"]["VnfInstanceSubscriptionFilter"])
    for choice in instance_filter["anyOf"][0]["oneOf"]:
        if choice.get("required") == ["vnfdId"]:
            choice["required"] = ["vnfdIds"]

    def rebase(node: Any) -> Any:  # SOL003_def.yaml's own refs, seen from the main document
        if isinstance(node, dict):
            return {
                k: (f"{general}{v}" if k == "$ref" and str(v).startswith("#") else rebase(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rebase(v) for v in node]
        return node

    lcm_filter = _relocate(copy.deepcopy(definitions["LifecycleChangeNotificationsFilter"]))
    lcm_filter["properties"]["vnfInstanceSubscriptionFilter"] = rebase(instance_filter)
    request = _relocate(copy.deepcopy(definitions["LccnSubscriptionRequest"]))
    request["properties"]["filter"] = lcm_filter
    subscription = _relocate(copy.deepcopy(definitions["LccnSubscription"]))
    subscription["properties"]["filter"] = lcm_filter
    return request, subscription


VNFLCM_V1_PATHS = Path("contracts/etsi/nfv-sol003-v2.4.1/SOL003-VNFLifecycleManagement-API.yaml")
TST010_V1_SCHEMAS = Path(
    "contracts/etsi/nfv-tst010-v2.6.1/SOL003/VNFLifecycleManagement-API/schemas"
)
#: The success body of each v1 operation, by TST 010 schema file (others have none).
_V1_BODIES = {
    ("post", "/vnf_instances", "201"): "vnfInstance.schema.json",
    ("get", "/vnf_instances", "200"): "vnfInstances.schema.json",
    ("get", "/vnf_instances/{vnfInstanceId}", "200"): "vnfInstance.schema.json",
    ("get", "/vnf_lcm_op_occs", "200"): "VnfLcmOpOccs.schema.json",
    ("get", "/vnf_lcm_op_occs/{vnfLcmOpOccId}", "200"): "vnfLcmOpOcc.schema.json",
    ("post", "/vnf_lcm_op_occs/{vnfLcmOpOccId}/fail", "200"): "vnfLcmOpOcc.schema.json",
    ("post", "/subscriptions", "201"): "LccnSubscription.schema.json",
    ("get", "/subscriptions", "200"): "LccnSubscriptions.schema.json",
    ("get", "/subscriptions/{subscriptionId}", "200"): "LccnSubscription.schema.json",
    ("get", "/api_versions", "200"): "ApiVersionInformation.schema.json",
}


def sol003_v1_contract(shared: Path, *, strict: bool = True) -> ContractValidator:
    """The vnflcm v1 contract: SOL003 V2.4.1 paths and request bodies, NFV-TST 010 v2.6.1
    response bodies (see the module docstring). ``strict`` (the default) closes every object
    schema that does not say otherwise, so an attribute the standard does not define fails.
    Mounted at ``/vnflcm/v1``; call it with paths relative to that."""
    source = shared / VNFLCM_V1_PATHS
    schemas = (shared / TST010_V1_SCHEMAS).resolve()
    document = copy.deepcopy(_load_file(str(source.resolve())))
    paths = document["paths"]
    problem = _tst010_schema(schemas / "ProblemDetails.schema.json")
    paths["/api_versions"] = {
        "get": {
            "operationId": "ApiVersionsGet",
            "parameters": [],
            "responses": {"200": {"description": "API versions"}},
        }
    }
    for template, item in paths.items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                body = _V1_BODIES.get((method, template, status))
                if body == "LccnSubscriptions.schema.json":
                    # TST 010's list schema describes one item (see the module docstring).
                    response["schema"] = {
                        "type": "array",
                        "items": _tst010_schema(schemas / body),
                    }
                elif body is not None:
                    response["schema"] = _tst010_schema(schemas / body)
                elif status[:1] in {"4", "5"}:
                    response["schema"] = problem
                else:
                    response.pop("schema", None)
    return ContractValidator(
        document, uri=source.resolve().as_uri(), strict=strict, base_path="/vnflcm/v1"
    )


def _open_problem_details(node: Any) -> None:
    """SOL013 ProblemDetails: "any number of additional attributes … may be present" (netweave
    adds ``error`` and ``details``), so every ProblemDetails stays open even in strict mode."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and {"status", "detail"} <= set(props) <= _PROBLEM_FIELDS:
            node["additionalProperties"] = True
        for value in node.values():
            _open_problem_details(value)
    elif isinstance(node, list):
        for value in node:
            _open_problem_details(value)


_PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "instance"})


def _tst010_schema(path: Path) -> Any:
    """A TST 010 schema file, inlined (self-contained: the files use no ``$ref``)."""
    schema = copy.deepcopy(_load_file(str(path)))
    schema.pop("$schema", None)
    _open_problem_details(schema)
    return schema


def validate_v1_request(contract: ContractValidator, method: str, path: str, body: Any) -> None:
    """A v1 request against :func:`sol003_v1_contract`: path and body (the query string is
    SOL013's, which V2.4.1 does not declare)."""
    contract.validate_request(method, path.split("?", 1)[0], body=body)


#: Occurrence states an SMO stops polling at.
FINAL_STATES = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
#: The Version header each major version's SMO sends.
SMO_VERSIONS = {2: "2.3.0", 1: "1.3.0"}


class StandardSmo:
    """A standard SMO's side of ``{apiRoot}/vnflcm/v{major}``, written from the SOL003 contract
    only: plain JSON over HTTP, no netweave models. Every request it sends and every response
    it gets is validated against ``contract`` (:func:`sol003_vnflcm_contract` for v2,
    :func:`sol003_v1_contract` for v1); a 4xx/5xx must be ``application/problem+json``.

    ``gw`` is anything with ``request(method, url, json=, headers=)`` returning an
    ``httpx.Response`` (the in-process :class:`~netweave.testing.gateway.GatewayClient`)."""

    def __init__(
        self, gw: Any, contract: ContractValidator, *, major: int = 2, root: str = ""
    ) -> None:
        self.gw = gw
        self.contract = contract
        self.major = major
        self.prefix = f"{root}/vnflcm/v{major}"
        self.headers = {"Version": SMO_VERSIONS[major], "Accept": "application/json"}

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        """``path`` relative to the apiRoot's ``vnflcm/v{major}`` (query string allowed)."""
        sent = {**self.headers, **headers}
        if body is not None:
            sent["Content-Type"] = "application/json"
        if self.major == 1:
            if body is not None:
                validate_v1_request(self.contract, method, path, body)
        else:
            self.contract.validate_request(method, path, body=body, headers=sent)
        response: httpx.Response = await self.gw.request(
            method, self.prefix + path, json=body, headers=sent
        )
        answer = response.json() if response.content else None
        if response.status_code >= 400:
            media = response.headers.get("content-type", "")
            assert media.startswith("application/problem+json"), (response.status_code, media)
        self.contract.validate_response(
            method, path.split("?", 1)[0], response.status_code, answer,
            headers=dict(response.headers),
        )  # fmt: skip
        return response

    async def task(self, path: str, body: dict[str, Any]) -> str:
        """A task POST: 202, no body, the op-occ's Location; returns the op-occ's path."""
        response = await self.call("POST", path, body)
        assert response.status_code == 202, response.text
        assert not response.content, response.content
        location = response.headers["Location"]
        marker = f"/vnflcm/v{self.major}"
        assert f"{marker}/vnf_lcm_op_occs/" in location, location
        return location.split(marker, 1)[1]

    async def poll(
        self, op_occ: str, states: frozenset[str] = FINAL_STATES, *, seconds: float = 30.0
    ) -> dict[str, Any]:
        """GET the occurrence until its state is one of ``states`` (bounded by ``seconds``)."""
        body: dict[str, Any] = {}
        for _ in range(int(seconds / 0.05)):
            response = await self.call("GET", op_occ)
            assert response.status_code == 200, response.text
            body = response.json()
            if body["operationState"] in states:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"{op_occ} stayed {body.get('operationState')}")

    async def instance(self, instance_id: str, query: str = "") -> dict[str, Any]:
        response = await self.call("GET", f"/vnf_instances/{instance_id}{query}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


__all__ = [
    "FINAL_STATES",
    "SMO_VERSIONS",
    "TST010_V1_SCHEMAS",
    "VNFLCM_V1_PATHS",
    "VNFLCM_V2",
    "StandardSmo",
    "sol003_v1_contract",
    "sol003_vnflcm_contract",
    "validate_v1_request",
]
