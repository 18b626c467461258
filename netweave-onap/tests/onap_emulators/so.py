"""An emulator of ONAP SO's API handler: serviceInstantiation (macro) and orchestrationRequests.

Every request is validated against ``contracts/onap/so-swagger.json`` (SO London APIs 3.1.2)
with the shared :class:`netweave.testing.contracts.ContractValidator` in strict mode (unknown
fields and undeclared query parameters fail). A violation is recorded, answered with SO's
``requestError`` 400, and fails the test (the fixtures assert ``violations`` is empty).

The published document gets some things wrong; each override below says what and why, and
``test_so.py`` checks the swagger's own "cnf" example still validates with them:

1. ``createServiceInstance`` types its body as an *array* of ``CreateServiceInstanceParamaters``;
   SO reads one object (``contracts/README.md``).
2. ``userParams`` items are ``oneOf`` two schemas that both accept any object, so no item could
   ever match exactly one; replaced by a ``oneOf`` that tells them apart by their key.
3. vnf and vf-module ``modelInfo`` omit ``modelCustomizationId`` / ``modelInstanceName``, which the
   document's own "cnf" example sends and SO's ``ModelInfo`` bean reads.
4. ``instanceParams`` items are declared with ``properties: {}`` (strict mode would allow only
   ``{}``); SO's beans read ``List<Map<String, String>>`` (vnfs, vf-modules) and
   ``List<Map<String, Object>>`` (service).
5. ``deleteServiceInstance`` declares its body as a JSON *string* (JAX-RS ``String requestJSON``);
   SO parses it as a ``ServiceInstancesRequest`` — schema written from the bean's fields.
6. ``GET orchestrationRequests/{version}`` does not declare its ``filter`` query parameter,
   which SO requires (``<key>:<OPERATOR>:<value>``).

6 (cont.). SO reads *every* ``filter`` value (``MsoRequest.getOrchestrationFilters``: each
   ``<key>:<OP>:<value>`` adds one condition, ANDed), so the parameter is declared as an
   array of such strings.

Responses have no schema in the document (only ``default`` without content). Every JSON
answer of this emulator is pinned to JSON Schemas written from the Java beans SO serialises
(``so_answers.schema.json`` beside this module: ``GetOrchestrationResponse``,
``GetOrchestrationListResponse``, ``ServiceInstancesResponse``, ``RequestError`` and the beans
they hold, closed to unknown fields; repository, path, tag and commit in each one's
``x-provenance``). An answer that does not match is a recorded violation, so the test fails.
``/nodehealthcheck`` answers SO's fixed HTML page, as ``NodeHealthcheckHandler`` does.

The list (``getOrchestrationRequest``) filters by ``serviceInstanceId`` and ``modelType``
(SO's ``requestScope``) with ``EQUALS``, what the adapter sends; other keys answer 400 here
(SO itself filters by any request column).

Progress is time-driven: a request is PENDING, then IN_PROGRESS with a growing
``percentProgress`` for ``duration`` seconds, then COMPLETE — or FAILED when a failure was
injected.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jsonschema
from netweave.testing.contracts import ContractValidator, ContractViolation
from netweave.testing.emulators import StrictContract

from onap_emulators.server import Request, Response

_CREATE = "/paths/~1onap~1so~1infra~1serviceInstantiation~1{version}~1serviceInstances/post"
_DELETE = (
    "/paths/~1onap~1so~1infra~1serviceInstantiation~1{version}~1serviceInstances"
    "~1{serviceInstanceId}/delete"
)
_LIST = "/paths/~1onap~1so~1infra~1orchestrationRequests~1{version}/get"
_SCHEMAS = "#/components/schemas"
_SERVICE = f"{_SCHEMAS}/CreateServiceInstParamsUserParamsService/allOf/0/properties/service"
_VNF = f"{_SERVICE}/properties/resources/properties/vnfs/items"
_MODEL_INFO_EXTRA = {
    "modelCustomizationId": {"type": "string"},
    "modelInstanceName": {"type": "string"},
}
_STRING_MAP = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": {"type": "string"}},
}
_MODEL_INFO = {
    "type": "object",
    "properties": {
        k: {"type": "string"}
        for k in (
            "modelType",
            "modelInvariantId",
            "modelInvariantUuid",
            "modelVersionId",
            "modelUuid",
            "modelName",
            "modelVersion",
            "modelCustomizationId",
            "modelCustomizationName",
            "modelInstanceName",
        )
    },
}


def _model_info_props(base: dict[str, Any]) -> dict[str, Any]:
    return {**base, **_MODEL_INFO_EXTRA}


def so_overrides(document: dict[str, Any]) -> dict[str, Any]:
    """The documented overrides (see the module docstring), as pointer → schema."""
    schemas = document["components"]["schemas"]
    service = schemas["CreateServiceInstParamsUserParamsService"]["allOf"][0]["properties"][
        "service"
    ]
    vnf = service["properties"]["resources"]["properties"]["vnfs"]["items"]
    vnf_model = vnf["properties"]["modelInfo"]["properties"]
    module_model = vnf["properties"]["vfModules"]["items"]["properties"]["modelInfo"]["properties"]
    return {
        # 1
        f"#{_CREATE}/requestBody/content/application~1json/schema": {
            "$ref": f"{_SCHEMAS}/CreateServiceInstanceParamaters"
        },
        # 2
        f"{_SCHEMAS}/CreateServiceInstanceParamaters/properties/requestDetails/properties/"
        "requestParameters/properties/userParams/items": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["Homing_Solution"],
                    "properties": {"Homing_Solution": {"type": "string"}},
                    "additionalProperties": False,
                },
                {
                    "allOf": [
                        {"$ref": f"{_SCHEMAS}/CreateServiceInstParamsUserParamsService"},
                        {
                            "required": ["service"],
                            "properties": {"service": {}},
                            "additionalProperties": False,
                        },
                    ]
                },
            ]
        },
        # 3
        f"{_VNF}/properties/modelInfo/properties": _model_info_props(vnf_model),
        f"{_VNF}/properties/vfModules/items/properties/modelInfo/properties": _model_info_props(
            module_model
        ),
        # 4
        f"{_SERVICE}/properties/instanceParams": {"type": "array", "items": {"type": "object"}},
        f"{_VNF}/properties/instanceParams": _STRING_MAP,
        f"{_VNF}/properties/vfModules/items/properties/instanceParams": _STRING_MAP,
        # 5
        f"#{_DELETE}/requestBody/content/application~1json/schema": {
            "type": "object",
            "required": ["requestDetails"],
            "properties": {
                "requestDetails": {
                    "type": "object",
                    "required": ["modelInfo", "requestInfo"],
                    "properties": {
                        "modelInfo": _MODEL_INFO,
                        "requestInfo": {
                            "type": "object",
                            "properties": {
                                "source": {"type": "string"},
                                "requestorId": {"type": "string"},
                                "suppressRollback": {"type": "boolean"},
                            },
                        },
                        "cloudConfiguration": {
                            "type": "object",
                            "properties": {
                                "cloudOwner": {"type": "string"},
                                "lcpCloudRegionId": {"type": "string"},
                                "tenantId": {"type": "string"},
                            },
                        },
                        "requestParameters": {
                            "type": "object",
                            "properties": {
                                "aLaCarte": {"type": "boolean"},
                                "testApi": {"type": "string"},
                            },
                        },
                    },
                }
            },
        },
        # 6
        f"#{_LIST}/parameters": [
            *document["paths"]["/onap/so/infra/orchestrationRequests/{version}"]["get"][
                "parameters"
            ],
            {
                "name": "filter",
                "in": "query",
                "required": True,
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^[A-Za-z]+:[A-Z_]+:.+$"},
                },
            },
        ],
    }


#: JSON Schemas of SO's answers, written from its Java beans (provenance inside).
ANSWER_SCHEMAS = Path(__file__).with_name("so_answers.schema.json")
#: The answer schema of each operation's success; any JSON error answer is a RequestError.
_ANSWERS = {
    "getOrchestrationRequestForReqId": "GetOrchestrationResponse",
    "getOrchestrationRequest": "GetOrchestrationListResponse",
    "createServiceInstance": "ServiceInstancesResponse",
    "deleteServiceInstance": "ServiceInstancesResponse",
}
#: ``NodeHealthcheckHandler.CHECK_HTML``: what ``GET /nodehealthcheck`` answers (text/html).
NODE_HEALTH_HTML = (
    '<!DOCTYPE html><html><head><meta charset="ISO-8859-1"><title>Health Check</title></head>'
    "<body>Application ready</body></html>"
)


def answer_validators() -> dict[str, jsonschema.protocols.Validator]:
    """One validator per bean of :data:`ANSWER_SCHEMAS` (draft 2020-12, formats checked)."""
    document = json.loads(ANSWER_SCHEMAS.read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return {
        name: jsonschema.Draft202012Validator(
            {**document, "$ref": f"#/$defs/{name}"}, format_checker=checker
        )
        for name in document["$defs"]
    }


def _leaf_errors(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """The innermost errors (an ``anyOf`` failure holds its branches' errors)."""
    if not error.context:
        yield error
    for inner in error.context or ():
        yield from _leaf_errors(inner)


def load_validator(path: Path) -> ContractValidator:
    document = json.loads(path.read_text())
    return ContractValidator(
        document, uri=path.resolve().as_uri(), strict=True, overrides=so_overrides(document)
    )


def _error(status: int, message_id: str, text: str, *variables: str) -> Response:
    return Response.json(
        status,
        {
            "requestError": {
                "serviceException": {
                    "messageId": message_id,
                    "text": text,
                    "variables": list(variables),
                }
            }
        },
    )


@dataclass
class _SoRequest:
    request_id: str
    request_type: str  # createInstance | deleteInstance
    instance_id: str
    instance_name: str | None
    details: dict[str, Any]
    started: float
    started_wall: float
    fail: str | None = None
    finished_wall: float | None = None


@dataclass
class SoEmulator:
    contract_path: Path
    username: str = "InfraPortalClient"
    password: str = "password1$"
    #: Seconds a request runs before it is COMPLETE (or FAILED).
    duration: float = 0.3
    #: Seconds the API handler takes to accept a request (a slow SO).
    accept_delay: float = 0.0
    #: The next create / delete request fails in the BPMN with this status message.
    fail_next_create: str | None = None
    fail_next_delete: str | None = None
    outage_status: int | None = None
    #: Only the request list answers with this status (single requests still answer).
    list_outage_status: int | None = None
    #: While set, every create request fails in the BPMN flow with this in its status message
    #: (see :meth:`failing`); ``crashing``: every change request loses its connection.
    failing_message: str | None = None
    crashing_requests: bool = False
    #: Service models (modelVersionId) whose CNF instantiation fails in the BPMN flow.
    failing_models: set[str] = field(default_factory=set)
    url: str = ""
    requests: dict[str, _SoRequest] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)  # id -> name (in A&AI)
    violations: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    #: The ``filter`` conditions of every request list asked for (answered or not).
    lists: list[list[str]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.contract = load_validator(self.contract_path)
        # core's strict emulator base: requests checked and recorded through it (the
        # document's answers are ``default`` without a schema: nothing to pin them to).
        self.strict = StrictContract(self.contract)
        self.violations = self.strict.violations
        self.answers = answer_validators()

    # -- plumbing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def failing(self, message: str) -> Iterator[None]:
        """Every service instantiation accepted in the block fails in its BPMN flow, SO's
        ``requestStatus.statusMessage`` carrying ``message`` (the kit's KitFaults)."""
        self.failing_message = message
        try:
            yield
        finally:
            self.failing_message = None

    @contextlib.contextmanager
    def crashing(self) -> Iterator[None]:
        """The API handler dies while serving every change request (POST, DELETE): the
        connection closes before an answer, nothing is recorded (the kit's KitFaults)."""
        self.crashing_requests = True
        try:
            yield
        finally:
            self.crashing_requests = False

    def delete_behind(self, instance_id: str, fail: str | None = None) -> None:
        """Another SO client (a portal user, a script) deletes the service instance: a
        deleteInstance request for it runs, not the gateway's (and fails with ``fail``)."""
        with self._lock:
            created = next(
                r
                for r in self.requests.values()
                if r.instance_id == instance_id and r.request_type == "createInstance"
            )
            request_id = str(uuid.uuid4())
            self.requests[request_id] = _SoRequest(
                request_id=request_id,
                request_type="deleteInstance",
                instance_id=instance_id,
                instance_name=self.instances.get(instance_id),
                details=created.details,
                started=time.monotonic(),
                started_wall=time.time(),
                fail=fail,
            )

    def __call__(self, request: Request) -> Response:
        self.calls.append((request.method, request.path, dict(request.headers)))
        if self.outage_status is not None:
            return Response.text(self.outage_status, "Service Unavailable")
        if self.crashing_requests and request.method != "GET":
            return Response.drop()
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return Response(401, b"", headers={"WWW-Authenticate": 'Basic realm="SO"'})
        try:
            body = request.json()
        except ValueError:
            return _error(400, "SVC0002", "Mapping of request to JSON object failed.")
        try:
            match = self.strict.request(
                request.method,
                request.path,
                query=request.query,
                body=body,
                headers=request.headers,
            )
        except ContractViolation as exc:
            return _error(400, "SVC0002", "Request does not match the API contract: %1", str(exc))
        with self._lock:
            response = self._route(match.operation_id, match.path_params, request, body)
        self._pin_answer(match.operation_id, request, response)
        return response

    def _pin_answer(self, operation: str, request: Request, response: Response) -> None:
        """Record a violation when a JSON answer is not what SO's beans serialise."""
        if response.content_type != "application/json":
            return  # the health page (HTML), 401 without a body, an ingress's text
        name = "RequestError" if response.status >= 400 else _ANSWERS.get(operation)
        if name is None:
            self.strict.record(f"answer {request.method} {request.path}: no schema pinned")
            return
        leaves = [
            leaf
            for error in self.answers[name].iter_errors(json.loads(response.body))
            for leaf in _leaf_errors(error)
        ]
        if leaves:
            first = min(leaves, key=lambda e: -len(e.absolute_path))  # the deepest says most
            where = "$" + "".join(f"[{p!r}]" for p in first.absolute_path)
            self.strict.record(
                f"answer {request.method} {request.path} {response.status} ({name}) at "
                f"{where}: {first.message[:300]}"
            )

    def _request_id(self, request: Request) -> str | Response:
        given = request.headers.get("x-onap-requestid")
        if given is None:
            return str(uuid.uuid4())
        try:
            uuid.UUID(given)
        except ValueError:
            return _error(500, "SVC1000", "Request Id %1 is not a valid UUID", given)
        if given in self.requests:
            return _error(
                500, "SVC1000", "Request Id %1 already exists in the request database", given
            )
        return given

    def _route(
        self, operation: str, params: dict[str, str], request: Request, body: Any
    ) -> Response:
        if operation == "getOrchestrationRequestForReqId":
            found = self.requests.get(params["requestId"])
            if found is None:
                return _error(
                    404,
                    "SVC0002",
                    "Null response from RequestDB when searching by RequestId %1",
                    params["requestId"],
                )
            return Response.json(200, {"request": self._render(found)})
        if operation == "getOrchestrationRequest":
            self.lists.append([v for k, v in request.query if k == "filter"])
            if self.list_outage_status is not None:
                return Response.text(self.list_outage_status, "Service Unavailable")
            listed = list(self.requests.values())
            for condition in (v for k, v in request.query if k == "filter"):
                key, op, value = condition.split(":", 2)
                if op != "EQUALS" or key not in ("serviceInstanceId", "modelType"):
                    return _error(400, "SVC0002", "Unsupported filter %1", f"{key}:{op}")
                # Every request here is service-scope (requestScope "service").
                listed = [
                    r
                    for r in listed
                    if (r.instance_id if key == "serviceInstanceId" else "service") == value
                ]
            listed.sort(key=lambda r: r.started)  # SO orders by start time
            return Response.json(
                200, {"requestList": [{"request": self._render(r)} for r in listed]}
            )
        if operation == "createServiceInstance":
            return self._create(request, body)
        if operation == "deleteServiceInstance":
            return self._delete(request, params["serviceInstanceId"], body)
        if request.path == "/nodehealthcheck":
            # JAX-RS serves @Produces("text/html") only to a client that accepts it.
            accept = request.headers.get("accept", "*/*")
            if not any(t in accept for t in ("text/html", "text/*", "*/*")):
                return Response.text(406, "Not Acceptable")
            return Response(200, NODE_HEALTH_HTML.encode(), "text/html")
        self.violations.append(f"{operation}: not emulated (the adapter should not call it)")
        return _error(501, "SVC0002", "not emulated")

    # -- operations ----------------------------------------------------------------------

    def _in_flight(self, name: str) -> _SoRequest | None:
        for item in self.requests.values():
            if item.instance_name == name and self._state(item)[0] in ("PENDING", "IN_PROGRESS"):
                return item
        return None

    def _accept(self, request: Request) -> None:
        if self.accept_delay:
            self._lock.release()
            try:
                time.sleep(self.accept_delay)
            finally:
                self._lock.acquire()

    def _create(self, request: Request, body: dict[str, Any]) -> Response:
        request_id = self._request_id(request)
        if isinstance(request_id, Response):
            return request_id
        details = body["requestDetails"]
        name = details["requestInfo"]["instanceName"]
        if details.get("requestParameters", {}).get("aLaCarte") is not False:
            return _error(400, "SVC0002", "This emulator runs macro (aLaCarte=false) flows only")
        busy = self._in_flight(name)
        if busy is not None:
            # The API handler's duplicate check (in-flight requests for the same name).
            return _error(
                409,
                "SVC0002",
                "Error: Locked instance - This service (%1) already has a request being worked "
                "with a status of %2 (RequestId - %3). The existing request must finish or be "
                "cleaned up before proceeding.",
                name,
                self._state(busy)[0],
                busy.request_id,
            )
        self._accept(request)
        model = details.get("modelInfo", {}).get("modelVersionId")
        reason = self.failing_message
        if reason is None and model in self.failing_models:
            reason = "Error creating kubernetes resources: Deployment.apps is invalid"
        fail = self.fail_next_create or (
            # How a CNF instantiation failing in the BPMN (a building block) is reported.
            f"Exception in CreateVfModuleBB: {reason}" if reason is not None else None
        )
        self.fail_next_create = None
        if name in self.instances.values():
            # A&AI's uniqueness check runs in the BPMN flow: the request is accepted, then fails.
            fail = f"Service Instance name ({name}) already exists in A&AI"
        instance_id = str(uuid.uuid4())
        item = _SoRequest(
            request_id=request_id,
            request_type="createInstance",
            instance_id=instance_id,
            instance_name=name,
            details=details,
            started=time.monotonic(),
            started_wall=time.time(),
            fail=fail,
        )
        self.requests[request_id] = item
        return Response.json(202, self._references(item))

    def _delete(self, request: Request, instance_id: str, body: dict[str, Any]) -> Response:
        request_id = self._request_id(request)
        if isinstance(request_id, Response):
            return request_id
        self._accept(request)
        fail = self.fail_next_delete
        self.fail_next_delete = None
        if instance_id not in self.instances:
            fail = f"Service instance {instance_id} was not found in A&AI"
        item = _SoRequest(
            request_id=request_id,
            request_type="deleteInstance",
            instance_id=instance_id,
            instance_name=self.instances.get(instance_id),
            details=body["requestDetails"],
            started=time.monotonic(),
            started_wall=time.time(),
            fail=fail,
        )
        self.requests[request_id] = item
        return Response.json(202, self._references(item))

    def _references(self, item: _SoRequest) -> dict[str, Any]:
        return {
            "requestReferences": {
                "requestId": item.request_id,
                "instanceId": item.instance_id,
                "requestSelfLink": f"{self.url}/onap/so/infra/orchestrationRequests/v7/"
                f"{item.request_id}",
            }
        }

    # -- progress ------------------------------------------------------------------------

    def _state(self, item: _SoRequest | None) -> tuple[str, int, str]:
        if item is None:
            return ("COMPLETE", 100, "")
        elapsed = time.monotonic() - item.started
        if elapsed < self.duration * 0.1:
            return ("PENDING", 0, "Request received")
        if elapsed < self.duration:
            block = (
                "CreateVfModuleBB" if item.request_type == "createInstance" else "DeleteVfModuleBB"
            )
            percent = min(99, int(elapsed / self.duration * 100))
            return ("IN_PROGRESS", percent, f"Execution of {block} in progress")
        if item.finished_wall is None:
            item.finished_wall = time.time()
            if item.fail is None:
                # The effect on A&AI happens when the flow completes.
                if item.request_type == "createInstance":
                    self.instances[item.instance_id] = item.instance_name or ""
                else:
                    self.instances.pop(item.instance_id, None)
        if item.fail is not None:
            return ("FAILED", 100, f"STATUS: {item.fail}")
        action = "created" if item.request_type == "createInstance" else "deleted"
        return ("COMPLETE", 100, f"Service Instance was {action} successfully.")

    def _render(self, item: _SoRequest) -> dict[str, Any]:
        state, percent, message = self._state(item)
        rendered: dict[str, Any] = {
            "requestId": item.request_id,
            "startTime": formatdate(item.started_wall, usegmt=True),
            "requestScope": "service",
            "requestType": item.request_type,
            "requestDetails": item.details,
            "instanceReferences": {
                "serviceInstanceId": item.instance_id,
                **({"serviceInstanceName": item.instance_name} if item.instance_name else {}),
            },
            "requestStatus": {
                "requestState": state,
                "statusMessage": message,
                "percentProgress": percent,
                "timestamp": formatdate(time.time(), usegmt=True),
            },
        }
        if item.finished_wall is not None:
            rendered["finishTime"] = formatdate(item.finished_wall, usegmt=True)
        return rendered
