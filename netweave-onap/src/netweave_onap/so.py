"""``backend: so`` — CNFs as service instances through SO's macro flow.

* deployment create = ``POST /onap/so/infra/serviceInstantiation/v7/serviceInstances`` with the
  macro (``aLaCarte: false``) CNF body (service → vnfs → vfModules; each vf-module of a Helm-based
  VNF is one Helm release, its ``instanceParams`` carry the namespace, release name and values);
* delete = ``DELETE …/serviceInstances/{serviceInstanceId}``;
* every request is tracked with ``GET /onap/so/infra/orchestrationRequests/v7/{requestId}``
  until its ``requestState`` is terminal; a deployment's status is its latest request's state,
  listed with ``GET …/orchestrationRequests/v7?filter=modelType:EQUALS:service&filter=
  serviceInstanceId:EQUALS:<id>`` (a poll round: every service-scope request, one list).

Packages are references to SDC service models (SO instantiates what SDC distributed; there is
nothing to upload to SO). The model ids the macro body needs travel in the package reference
itself, so ``get_package`` answers without a catalogue; SO has no catalogue API to list them
(the gateway's store is the registry of SO-mode packages).

Idempotency: SO takes the request id from the ``X-ONAP-RequestID`` header (it must be a UUID).
netweave derives it from the operation's idempotency key (UUIDv5), so a retried step first
looks its request up and never creates a second service instance.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any, ClassVar
from urllib.parse import quote

from netweave.adapters import (
    AdapterHealth,
    Capability,
    DeploymentInfo,
    DeploymentSpec,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.adapters.idempotency import idempotency_uuid
from netweave.errors import BackendError, InvalidInput, NetweaveError, NotFound
from netweave.models import DeploymentStatus
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from netweave_onap.adapter import SDC_PACKAGE, SO_CAPABILITIES, OnapBackend
from netweave_onap.errors import so_error
from netweave_onap.status import SO_SUCCESS, SO_TERMINAL, map_so
from netweave_onap.values import flatten, unflatten

_log = logging.getLogger("netweave_onap.so")
_REF_PREFIX = "sdc-service:"
#: How many SO requests one operation step may issue (a new one only after a failed one).
_MAX_REQUESTS_PER_STEP = 5
#: instanceParams keys the CNF flow reads itself; everything else is a Helm override value.
_K8S_PARAMS = ("k8s-rb-profile-namespace", "k8s-rb-instance-release-name")
_SO_INFRA = "/onap/so/infra"
#: The ``filter`` condition every request list carries: service-scope requests only.
_SERVICE_SCOPE = "modelType:EQUALS:service"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class SdcModelInfo(_Model):
    model_invariant_id: str = Field(min_length=1)
    model_version_id: str = Field(min_length=1)
    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    model_customization_id: str | None = None
    model_instance_name: str | None = None


class SdcVfModule(_Model):
    model_info: SdcModelInfo


class SdcVnf(_Model):
    model_info: SdcModelInfo
    vf_modules: list[SdcVfModule] = Field(min_length=1, max_length=50)


class SdcServiceModel(_Model):
    """``source`` of an SO-mode package registration: the SDC model ids the macro body needs."""

    service: SdcModelInfo
    vnfs: list[SdcVnf] = Field(min_length=1, max_length=50)


def _encode_ref(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return _REF_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_ref(backend_ref: str) -> dict[str, Any]:
    if not backend_ref.startswith(_REF_PREFIX):
        raise NotFound(f"no SDC service model reference {backend_ref[:80]!r}")
    token = backend_ref[len(_REF_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        SdcServiceModel.model_validate(payload["model"])
    except (binascii.Error, ValueError, KeyError, TypeError, ValidationError):
        raise NotFound(f"no SDC service model reference {backend_ref[:80]!r}") from None
    if not isinstance(payload, dict):
        raise NotFound(f"no SDC service model reference {backend_ref[:80]!r}")
    return payload


class SoBackend(OnapBackend):
    BACKEND: ClassVar[str] = "so"
    CAPABILITIES: ClassVar[frozenset[Capability]] = SO_CAPABILITIES
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({SDC_PACKAGE})
    UNSUPPORTED: ClassVar[dict[Capability, str]] = {
        Capability.PACKAGE_LISTING: "ONAP SO has no service-model catalogue API; SO-mode "
        "packages are references the gateway stores (list them through the gateway)",
        Capability.DEPLOYMENT_UPDATE: "backend 'so' cannot update a CNF: SO's upgradeCnf "
        "route is not in its published API contract; use backend 'k8splugin' for updates "
        "and rollbacks",
    }

    def _default_headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "X-ONAP-PartnerName": self.config.source,
            "X-RequestorID": self.config.requestor_id,
        }

    async def _start(self) -> None:
        url = self.config.so_url
        assert url is not None  # checked by OnapConfig
        self._client = self._make_client(url, "ONAP SO", so_error)

    async def _health(self) -> AdapterHealth:
        # SO's node health check is an HTML page (@Produces("text/html")): ask for that.
        await self.client.request(
            "GET", "/nodehealthcheck", headers={"Accept": "text/html"}, expected=(200,)
        )
        return AdapterHealth(healthy=True, details={"backend": "so"})

    # -- packages: SDC service model references ------------------------------------------

    @staticmethod
    def _package_info(backend_ref: str, payload: dict[str, Any]) -> PackageInfo:
        return PackageInfo(
            backend_ref=backend_ref,
            name=str(payload["name"]),
            version=str(payload["version"]),
            package_type=SDC_PACKAGE,
            package_uri=payload.get("uri"),
            description=payload.get("description"),
            extensions={"sdcModel": payload["model"]},
        )

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        if upload.archive is not None:
            raise InvalidInput(
                "backend 'so' instantiates service models distributed by SDC; onboard the CSAR "
                "in SDC and register the model here by reference (packageUri plus the model ids "
                "in 'source'), not as an archive",
                details={"field": "package"},
            )
        try:
            model = SdcServiceModel.model_validate(upload.source)
        except ValidationError as exc:
            raise InvalidInput(
                "source must name the SDC service model: {service: {modelInvariantId, "
                "modelVersionId, modelName, modelVersion}, vnfs: [{modelInfo, vfModules: "
                f"[{{modelInfo}}]}}]}} ({exc.error_count()} error(s): "
                f"{exc.errors()[0]['msg']} at {'.'.join(map(str, exc.errors()[0]['loc']))})",
                details={"field": "source"},
            ) from None
        payload = {
            "name": upload.name,
            "version": upload.version,
            "uri": upload.package_uri,
            "description": upload.description,
            "model": model.model_dump(by_alias=True, exclude_none=True),
        }
        ref = _encode_ref(payload)
        return self._package_info(ref, payload)

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        return self._package_info(backend_ref, _decode_ref(backend_ref))

    async def _delete_package(self, backend_ref: str) -> None:
        # Nothing lives in SO for a reference: forgetting it is the gateway's part.
        _decode_ref(backend_ref)

    # -- requests --------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((_SO_INFRA, *parts))

    async def _orchestration_request(self, request_id: str) -> dict[str, Any] | None:
        try:
            response = await self.client.request(
                "GET",
                self._path("orchestrationRequests", self.config.so_api_version, request_id),
                expected=(200,),
            )
        except NotFound:
            return None
        request = (response.json() or {}).get("request")
        return request if isinstance(request, dict) else None

    async def _requests_of(self, instance_id: str) -> list[dict[str, Any]]:
        return await self._list_requests(f"serviceInstanceId:EQUALS:{instance_id}")

    async def _list_requests(self, *conditions: str) -> list[dict[str, Any]]:
        """Service-scope requests (``modelType`` → SO's ``requestScope``) that also meet
        ``conditions``, oldest first (SO orders by start time). SO ANDs every ``filter``
        value (``MsoRequest.getOrchestrationFilters``, one ``<key>:<OP>:<value>`` each). The
        scope is always set so one deployment's reads and a poll round's see the same
        requests: netweave's own are service-scope, and a VNF-scope request is not the
        service instance's state."""
        response = await self.client.request(
            "GET",
            self._path("orchestrationRequests", self.config.so_api_version),
            params=[("filter", f) for f in (_SERVICE_SCOPE, *conditions)],
            expected=(200,),
        )
        items = (response.json() or {}).get("requestList") or []
        requests = (i.get("request") for i in items if isinstance(i, dict))
        return [r for r in requests if isinstance(r, dict)]

    @staticmethod
    def _state(request: dict[str, Any]) -> str:
        return str((request.get("requestStatus") or {}).get("requestState") or "")

    async def _submit(
        self, ctx: OperationContext, method: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Send ``body`` once per idempotency key; return the tracked request (terminal when
        ``wait``). A step whose earlier request FAILED may issue a new one (bounded)."""
        for attempt in range(_MAX_REQUESTS_PER_STEP):
            request_id = str(idempotency_uuid(ctx.idempotency_key, part=str(attempt)))
            existing = await self._orchestration_request(request_id)
            if existing is not None and self._state(existing) in SO_SUCCESS | {
                "PENDING",
                "IN_PROGRESS",
                "WAIT_COMPLETION_NOTIF",
                "PENDING_MANUAL_TASK",
            }:
                return await self._track(request_id, existing)
            if existing is not None:
                continue  # that attempt failed in SO: this retry issues a new request
            response = await self.client.request(
                method,
                path,
                json=body,
                headers={"X-ONAP-RequestID": request_id},
                expected=(200, 201, 202),
            )
            refs = (response.json() or {}).get("requestReferences") or {}
            accepted_id = str(refs.get("requestId") or request_id)
            _log.info(
                "SO: %s %s accepted as request %s (service instance %s)",
                method,
                path,
                accepted_id,
                refs.get("instanceId"),
            )
            tracked = await self._track(accepted_id, None)
            tracked.setdefault("instanceReferences", {}).setdefault(
                "serviceInstanceId", refs.get("instanceId")
            )
            return tracked
        raise BackendError(
            f"SO failed this step {_MAX_REQUESTS_PER_STEP} times; not submitting it again",
            details={"idempotencyKey": ctx.idempotency_key},
        )

    async def _track(self, request_id: str, known: dict[str, Any] | None) -> dict[str, Any]:
        async def fetch() -> dict[str, Any]:
            found = await self._orchestration_request(request_id)
            if found is None:
                raise BackendError(f"SO lost track of request {request_id}")
            return found

        if not self.config.wait:
            return known or await fetch()
        return await self._poll(fetch, lambda r: self._state(r) in SO_TERMINAL)

    # -- deployments -----------------------------------------------------------------------

    def _macro_body(self, spec: DeploymentSpec, model: SdcServiceModel) -> dict[str, Any]:
        cfg = self.config
        svc = model.service
        params = {
            "k8s-rb-profile-namespace": spec.namespace,
            "k8s-rb-instance-release-name": spec.name,
            **flatten(spec.values),
        }
        vnfs = []
        for index, vnf in enumerate(model.vnfs):
            modules = [
                {
                    "modelInfo": {
                        "modelName": m.model_info.model_name,
                        "modelVersionId": m.model_info.model_version_id,
                        "modelInvariantUuid": m.model_info.model_invariant_id,
                        "modelVersion": m.model_info.model_version,
                        **(
                            {"modelCustomizationId": m.model_info.model_customization_id}
                            if m.model_info.model_customization_id
                            else {}
                        ),
                    },
                    "instanceName": f"{spec.name}-{index}-{position}",
                    "instanceParams": [params],
                }
                for position, m in enumerate(vnf.vf_modules)
            ]
            info = vnf.model_info
            vnfs.append(
                {
                    "modelInfo": {
                        "modelName": info.model_name,
                        "modelVersionId": info.model_version_id,
                        "modelInvariantUuid": info.model_invariant_id,
                        "modelVersion": info.model_version,
                        **(
                            {"modelCustomizationId": info.model_customization_id}
                            if info.model_customization_id
                            else {}
                        ),
                        **(
                            {"modelInstanceName": info.model_instance_name}
                            if info.model_instance_name
                            else {}
                        ),
                    },
                    "cloudConfiguration": self._cloud_configuration(),
                    "platform": {"platformName": cfg.platform_name},
                    "lineOfBusiness": {"lineOfBusinessName": cfg.line_of_business_name},
                    "productFamilyId": cfg.product_family_id,
                    "instanceName": f"{spec.name}-{index}",
                    "instanceParams": [{}],
                    "vfModules": modules,
                }
            )
        return {
            "requestDetails": {
                "modelInfo": {
                    "modelType": "service",
                    "modelInvariantId": svc.model_invariant_id,
                    "modelVersionId": svc.model_version_id,
                    "modelName": svc.model_name,
                    "modelVersion": svc.model_version,
                },
                "subscriberInfo": {"globalSubscriberId": cfg.global_subscriber_id},
                "requestInfo": {
                    "instanceName": spec.name,
                    "source": cfg.source,
                    "requestorId": cfg.requestor_id,
                    "productFamilyId": cfg.product_family_id,
                    "suppressRollback": False,
                },
                "project": {"projectName": cfg.project_name},
                "owningEntity": {
                    "owningEntityId": cfg.owning_entity_id,
                    "owningEntityName": cfg.owning_entity_name,
                },
                "requestParameters": {
                    "subscriptionServiceType": cfg.subscription_service_type,
                    "aLaCarte": False,
                    "usePreload": False,
                    "userParams": [
                        {"Homing_Solution": "none"},
                        {
                            "service": {
                                "instanceName": spec.name,
                                "instanceParams": [],
                                "modelInfo": {
                                    "modelName": svc.model_name,
                                    "modelVersionId": svc.model_version_id,
                                    "modelInvariantUuid": svc.model_invariant_id,
                                    "modelVersion": svc.model_version,
                                },
                                "resources": {"vnfs": vnfs},
                            }
                        },
                    ],
                },
            }
        }

    def _cloud_configuration(self) -> dict[str, str]:
        cfg = self.config
        return {
            "cloudOwner": cfg.cloud_owner,
            "lcpCloudRegionId": cfg.cloud_region,
            "tenantId": cfg.tenant_id or "",
        }

    @staticmethod
    def _values_of(request: dict[str, Any]) -> dict[str, Any] | None:
        """The Helm values a create request carried (vf-module instanceParams), as strings."""
        try:
            user_params = request["requestDetails"]["requestParameters"]["userParams"]
            service = next(p["service"] for p in user_params if "service" in p)
            module = service["resources"]["vnfs"][0]["vfModules"][0]
            params = dict(module["instanceParams"][0])
        except (KeyError, IndexError, TypeError, StopIteration):
            return None
        return unflatten({k: str(v) for k, v in params.items() if k not in _K8S_PARAMS})

    def _info(self, instance_id: str, requests: list[dict[str, Any]]) -> DeploymentInfo:
        latest = requests[-1]
        status_block = latest.get("requestStatus") or {}
        state = self._state(latest)
        request_type = str(latest.get("requestType") or "")
        status = map_so(state, request_type)
        creates = [r for r in requests if not str(r.get("requestType", "")).startswith("delete")]
        done = [r for r in creates if self._state(r) in SO_SUCCESS]
        revision = max(len(done), 1 if status is DeploymentStatus.DEPLOYED else 0)
        refs = latest.get("instanceReferences") or {}
        message = status_block.get("statusMessage") or f"SO {request_type} {state}"
        return DeploymentInfo(
            backend_ref=instance_id,
            status=status,
            revision=revision,
            message=str(message),
            backend_status=state or None,
            package_version=((latest.get("requestDetails") or {}).get("modelInfo") or {}).get(
                "modelVersion"
            ),
            values=self._values_of(creates[-1]) if creates else None,
            extensions={
                "serviceInstanceId": instance_id,
                "requestId": latest.get("requestId"),
                "requestType": request_type or None,
                "requestState": state or None,
                "percentProgress": status_block.get("percentProgress"),
                "flowStatus": status_block.get("flowStatus"),
                "vnfInstanceId": refs.get("vnfInstanceId"),
            },
        )

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        requests = await self._requests_of(backend_ref)
        if not requests:
            raise NotFound(f"SO has no requests for service instance {backend_ref!r}")
        return self._info(backend_ref, requests)

    #: The reconciler's poll round is one list of SO's service-scope requests.
    BATCH_READS: ClassVar[bool] = True

    async def _get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        # SO's filter has no "one of" operator: one list of every service-scope request
        # (grouped by service instance, in SO's order) replaces a list per instance; each
        # instance's requests then go through the same ``_info`` (one status table).
        wanted = set(backend_refs)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for request in await self._list_requests():
            refs = request.get("instanceReferences")
            instance = refs.get("serviceInstanceId") if isinstance(refs, dict) else None
            if instance in wanted:
                grouped.setdefault(str(instance), []).append(request)
        out: dict[str, DeploymentInfo | NetweaveError] = {}
        for ref in backend_refs:
            requests = grouped.get(ref)
            out[ref] = (
                self._info(ref, requests)
                if requests
                else NotFound(f"SO has no requests for service instance {ref!r}")
            )
        return out

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        try:
            model = SdcServiceModel.model_validate(spec.package.extensions.get("sdcModel"))
        except ValidationError:
            model = SdcServiceModel.model_validate(_decode_ref(spec.package.backend_ref)["model"])
        path = self._path("serviceInstantiation", self.config.so_api_version, "serviceInstances")
        request = await self._submit(ctx, "POST", path, self._macro_body(spec, model))
        instance_id = (request.get("instanceReferences") or {}).get("serviceInstanceId")
        if not instance_id:
            raise BackendError(
                f"SO request {request.get('requestId')} names no service instance",
                details={"requestId": request.get("requestId")},
            )
        state = self._state(request)
        if state in SO_TERMINAL and state not in SO_SUCCESS:
            # The operation failed; SO rolls its flow back unless suppressRollback (we send
            # false), and a retry of this step submits a new request.
            status = request.get("requestStatus") or {}
            raise BackendError(
                f"SO could not create service instance {spec.name}: {state} "
                f"({status.get('statusMessage') or 'no message'})",
                details={
                    "requestId": request.get("requestId"),
                    "requestState": state,
                    "backendRef": instance_id,
                },
            )
        return await self._get_deployment(str(instance_id))

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        requests = await self._requests_of(backend_ref)
        if not requests:
            raise NotFound(f"SO has no requests for service instance {backend_ref!r}")
        latest = requests[-1]
        if str(latest.get("requestType", "")).startswith("delete"):
            state = self._state(latest)
            if state in SO_SUCCESS:
                return  # already deleted
            if state not in SO_TERMINAL:
                # A delete is already running (an earlier attempt): follow it, do not send a
                # second one (SO would refuse it with 409).
                self._raise_unless_deleted(
                    backend_ref, await self._track(str(latest.get("requestId")), latest)
                )
                return
        creates = [r for r in requests if not str(r.get("requestType", "")).startswith("delete")]
        model_info = dict(
            ((creates[0] if creates else latest).get("requestDetails") or {}).get("modelInfo")
            or {"modelType": "service"}
        )
        body = {
            "requestDetails": {
                "modelInfo": model_info,
                "requestInfo": {
                    "source": self.config.source,
                    "requestorId": self.config.requestor_id,
                    "suppressRollback": False,
                },
                "cloudConfiguration": self._cloud_configuration(),
                "requestParameters": {"aLaCarte": False},
            }
        }
        path = self._path(
            "serviceInstantiation",
            self.config.so_api_version,
            "serviceInstances",
            quote(backend_ref, safe=""),
        )
        self._raise_unless_deleted(backend_ref, await self._submit(ctx, "DELETE", path, body))

    def _raise_unless_deleted(self, backend_ref: str, request: dict[str, Any]) -> None:
        state = self._state(request)
        if self.config.wait and state not in SO_SUCCESS:
            status = request.get("requestStatus") or {}
            raise BackendError(
                f"SO could not delete service instance {backend_ref}: {state} "
                f"({status.get('statusMessage') or 'no message'})",
                details={"requestId": request.get("requestId"), "requestState": state},
            )


__all__ = ["SdcServiceModel", "SoBackend"]
