"""``{apiRoot}/vnfpkgm/v2/subscriptions``: SOL005 VNF package management subscriptions (clause
9.4.7 and 9.4.8), over ``netweave.services.vnfpkgm_notify`` and the ETSI subscription
machinery the LCM face has (``netweave.services.vnflcm_notify.EtsiSubscriptions``).

POST checks the callback against the SSRF rules and tests it (GET → 204) and stores nothing
when either refuses (422); a malformed request is a 400. The callback authentication (BASIC or
OAuth2 client credentials) is stored with its secrets encrypted and never returned. Found at the
gateway's root only (as the rest of ``/vnfpkgm``). Scopes: ``o2dms:read`` for GET,
``o2dms:write`` for POST and DELETE.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from pydantic import Field

from netweave.api.common import JSON_BODY
from netweave.api.etsi import sol013
from netweave.api.etsi.subscriptions import (
    LccnSubscriptionAuthentication,
    VnfProvider,
    _Etsi,
)
from netweave.api.etsi.vnflcm import FilterQuery, MarkerQuery, _page, api_root, json_response
from netweave.errors import InvalidInput, NetweaveError
from netweave.services import Services
from netweave.services.vnflcm_notify import EtsiSubscriptions
from netweave.services.vnfpkgm_notify import (
    API_VERSION,
    NOTIFICATION_TYPES,
    render_pkgm_subscription,
)

PREFIX = "/vnfpkgm/v2"
SubscriptionIdParam = Annotated[
    str, PathParameter(name="subscriptionId", min_length=1, max_length=64)
]
#: PkgmSubscription's attributes (what ``filter`` may name).
SUBSCRIPTION_ATTRIBUTES = frozenset({"id", "filter", "callbackUri", "_links"})
_SELECTORS = ("all_fields", "fields", "exclude_fields", "exclude_default")
_Id = Annotated[str, Field(min_length=1, max_length=300)]
_List = Field(default=None, max_length=100)


class PkgmNotificationsFilter(_Etsi):
    """SOL005 Table 9.5.3.2-1 (what the schema cannot say: ``check_pkgm_filter``)."""

    notification_types: (
        list[Literal["VnfPackageOnboardingNotification", "VnfPackageChangeNotification"]] | None
    ) = Field(default=None, max_length=len(NOTIFICATION_TYPES))
    vnf_products_from_providers: list[VnfProvider] | None = _List
    vnfd_id: list[_Id] | None = _List
    vnf_pkg_id: list[_Id] | None = _List
    operational_state: list[Literal["ENABLED", "DISABLED"]] | None = Field(
        default=None, max_length=2
    )
    usage_state: list[Literal["IN_USE", "NOT_IN_USE"]] | None = Field(default=None, max_length=2)


class PkgmSubscriptionRequest(_Etsi):
    callback_uri: str = Field(min_length=1, max_length=2048)
    filter: PkgmNotificationsFilter | None = None
    #: SOL013 SubscriptionAuthentication: BASIC and OAUTH2_CLIENT_CREDENTIALS are used.
    authentication: LccnSubscriptionAuthentication | None = None


def _subscriptions(services: Services) -> EtsiSubscriptions:
    if services.vnfpkgm is None or services.vnfpkgm.subscriptions is None:
        raise NetweaveError("this gateway keeps no VNF package subscriptions")
    return services.vnfpkgm.subscriptions


def _versioned(response: Response[bytes]) -> Response[bytes]:
    response.headers["Version"] = API_VERSION
    return response


class VnfPkgmSubscriptionsController(Controller):
    path = PREFIX
    tags = ["vnfpkgm v2"]

    @staticmethod
    async def _check(request: Request[Any, Any, Any]) -> None:
        if request.method == "OPTIONS":
            return
        sol013.check_version(request.headers.get("version"), 2, API_VERSION)
        if not sol013.accepts_json(request.headers.get("accept")):
            raise sol013.NotAcceptable(
                f"this resource answers application/json, not {request.headers.get('accept')}",
                details={"header": "Accept"},
            )

    before_request = _check

    @post(
        "/subscriptions",
        operation_id="VnfPkgmV2CreateSubscription",
        summary="Subscribe to VNF package notifications (the callback is tested: GET → 204)",
        status_code=HTTP_201_CREATED,
        opt=JSON_BODY,
    )
    async def create_subscription(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        data: JSONBody[PkgmSubscriptionRequest],
    ) -> Response[bytes]:
        wanted = (
            data.filter.model_dump(mode="json", by_alias=True, exclude_none=True)
            if data.filter is not None
            else {}
        )
        auth = (
            data.authentication.model_dump(mode="json", by_alias=True, exclude_none=True)
            if data.authentication is not None
            else None
        )
        record = await _subscriptions(services).create(
            major=2,
            api_base=api_root(request) + PREFIX,
            manager=None,
            callback_uri=data.callback_uri,
            wanted=wanted,
            verbosity="FULL",
            authentication=auth,
        )
        body = render_pkgm_subscription(record)
        return _versioned(
            json_response(body, HTTP_201_CREATED, {"Location": body["_links"]["self"]["href"]})
        )

    @get(
        "/subscriptions",
        operation_id="VnfPkgmV2ListSubscriptions",
        summary="Query the VNF package subscriptions (SOL013 filter, paging)",
    )
    async def list_subscriptions(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        filter_: FilterQuery = None,
        marker: MarkerQuery = None,
    ) -> Response[bytes]:
        for name in _SELECTORS:
            if name in request.query_params:
                raise InvalidInput(
                    f"{name}: subscriptions are listed without attribute selectors",
                    details={"field": name},
                )
        subscriptions = _subscriptions(services)

        async def rendered(records: list[Any]) -> list[dict[str, Any] | None]:
            return [render_pkgm_subscription(r) for r in records]

        return _versioned(
            await _page(
                request,
                subscriptions.page,
                lambda r: (r.created_at, r.subscription_id),
                rendered,
                SUBSCRIPTION_ATTRIBUTES,
                (),
                SUBSCRIPTION_ATTRIBUTES,
            )
        )

    @get(
        "/subscriptions/{subscriptionId:str}",
        operation_id="VnfPkgmV2GetSubscription",
        summary="Read a VNF package subscription",
    )
    async def get_subscription(
        self, services: NamedDependency[Services], subscription_id: SubscriptionIdParam
    ) -> Response[bytes]:
        record = await _subscriptions(services).get(subscription_id, major=2, manager=None)
        return _versioned(json_response(render_pkgm_subscription(record)))

    @delete(
        "/subscriptions/{subscriptionId:str}",
        operation_id="VnfPkgmV2DeleteSubscription",
        summary="Terminate a VNF package subscription (pending notifications are dropped)",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_subscription(
        self, services: NamedDependency[Services], subscription_id: SubscriptionIdParam
    ) -> None:
        await _subscriptions(services).delete(subscription_id, major=2, manager=None)


__all__ = ["PkgmSubscriptionRequest", "VnfPkgmSubscriptionsController"]
