"""O2ims discovery: ``/o2ims-infrastructureInventory/v1/deploymentManagers[/{id}]`` (O-RAN
WG6 O2IMS §3.2.4.8-9), so an SMO finds this DMS the standard way.

One ``DeploymentManagerInfo`` per configured adapter instance. Its ``serviceUri`` is the apiRoot
of the ETSI face (``{serviceUri}/vnflcm/v2``) restricted to that instance:
``{root}/deploymentManagers/{name}``; the gateway's root is also an apiRoot (of every instance,
the package a ``vnfdId`` names deciding), which ``extensions.gatewayApiRoot`` says for the
default instance. The profile and the adapter's capabilities are in ``extensions``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter, PathParameter
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from netweave.api.etsi import sol013
from netweave.api.etsi.vnflcm import API_VERSIONS, api_root, manager_root
from netweave.errors import InvalidInput, NotFound
from netweave.services import Services

PREFIX = "/o2ims-infrastructureInventory/v1"
#: The O2ims inventory API version this discovery subset follows (O2IMS R004 v10.00).
O2IMS_API_VERSION = "1.0.0"
#: The O2dms profile each manager offers (O-RAN WG6: the ETSI NFV profile, SOL003 vnflcm).
PROFILE = "ETSI_NFV"
OCLOUD_ID = "netweave"
#: Only ``filter``: the list always carries every attribute (as ``all_fields``); the
#: attribute selectors are not served (an SMO needs ``serviceUri`` and ``extensions`` anyway).
_QUERY = ("filter",)
_ATTRIBUTES = frozenset(
    {
        "deploymentManagerId",
        "name",
        "description",
        "oCloudId",
        "serviceUri",
        "supportedLocations",
        "capabilities",
        "extensions",
    }
)

_ATTR = "(deploymentManagerId|name|description|oCloudId|serviceUri|supportedLocations)"
_VALUE = "[A-Za-z0-9._:-]+"
_TERM = rf"\(((eq|neq|gt|lt|gte|lte),{_ATTR},{_VALUE}|(in|nin|cont|ncont),{_ATTR}(,{_VALUE})+)\)"
#: The filters served (and declared): SOL013 terms over the simple attributes with plain
#: values; anything else (nested paths, quoted values) is a 400.
FILTER_PATTERN = rf"^{_TERM}(;{_TERM})*$"

ManagerIdParam = Annotated[
    str, PathParameter(name="deploymentManagerId", min_length=1, max_length=253)
]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class DeploymentManagerInfo(_Model):
    """O2IMS §3.2.6.2.5 (``extensions``: netweave's profile and adapter description)."""

    deployment_manager_id: str
    name: str
    description: str
    o_cloud_id: str
    service_uri: str
    supported_locations: list[str]
    capabilities: dict[str, Any]
    #: (``capacity`` is left out: no adapter reports one.)
    extensions: dict[str, Any]


class O2imsVersion(_Model):
    version: str


class O2imsApiVersions(_Model):
    uri_prefix: str
    api_versions: list[O2imsVersion]


def _info(services: Services, name: str, root: str) -> dict[str, Any]:
    adapter = services.registry.adapters[name]
    info = adapter.instance_info()
    service_uri = manager_root(root, name)
    default = name == services.registry.default_name
    extensions: dict[str, Any] = {
        "profileName": PROFILE,
        "profileData": {
            "vnflcmUriPrefix": f"{service_uri}/vnflcm",
            "apiVersions": {f"v{major}": version for major, version in API_VERSIONS.items()},
        },
        "adapterType": info.type,
        "default": default,
    }
    if default:
        extensions["gatewayApiRoot"] = root
    body = DeploymentManagerInfo(
        deployment_manager_id=name,
        name=name,
        description=f"{info.type} deployment manager ({info.distribution} {info.version})",
        o_cloud_id=OCLOUD_ID,
        service_uri=service_uri,
        supported_locations=[OCLOUD_ID],
        capabilities={
            "operations": sorted(c.value for c in info.capabilities),
            "packageTypes": sorted(info.package_types),
        },
        extensions=extensions,
    )
    return body.model_dump(by_alias=True, exclude_none=True, mode="json")


def _query(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    query: dict[str, str | None] = {}
    for key, value in request.query_params.multi_items():
        if key not in _QUERY:
            raise InvalidInput(f"unknown query parameter {key!r}", details={"field": key})
        if key in query:
            raise InvalidInput(
                f"query parameter {key!r} is given more than once", details={"field": key}
            )
        query[key] = value
    return query


class O2imsController(Controller):
    path = PREFIX
    tags = ["o2ims discovery"]

    @get(
        "/api_versions",
        operation_id="O2imsApiVersions",
        summary="API versions of the O2ims inventory (discovery subset)",
    )
    async def api_versions(self, request: Request[Any, Any, Any]) -> O2imsApiVersions:
        return O2imsApiVersions(
            uri_prefix=f"{api_root(request)}{PREFIX}",
            api_versions=[O2imsVersion(version=O2IMS_API_VERSION)],
        )

    @get(
        "/deploymentManagers",
        operation_id="O2imsListDeploymentManagers",
        summary="The deployment managers (one per adapter instance), each with its apiRoot",
    )
    async def list_managers(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        filter_: Annotated[
            str | None,
            Parameter(
                query="filter",
                required=False,
                pattern=FILTER_PATTERN,
                description="SOL013 attribute-based filter, e.g. (eq,deploymentManagerId,mem)",
            ),
        ] = None,
    ) -> list[DeploymentManagerInfo]:
        query = _query(request)
        terms = sol013.parse_filter(query.get("filter"), _ATTRIBUTES)
        root = api_root(request)
        items = [_info(services, name, root) for name in services.registry]
        return [DeploymentManagerInfo.model_validate(i) for i in items if sol013.matches(i, terms)]

    @get(
        "/deploymentManagers/{deploymentManagerId:str}",
        operation_id="O2imsGetDeploymentManager",
        summary="One deployment manager",
    )
    async def get_manager(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        manager_id: ManagerIdParam,
    ) -> DeploymentManagerInfo:
        if manager_id not in services.registry:
            raise NotFound(
                f"deployment manager {manager_id!r} not found",
                details={"deploymentManagerId": manager_id},
            )
        return DeploymentManagerInfo.model_validate(_info(services, manager_id, api_root(request)))


__all__ = ["DeploymentManagerInfo", "O2imsController"]
