"""``{apiRoot}/vnflcm/v{N}/subscriptions``: SOL003 LCM notification subscriptions (clause 5.4.18
and 5.4.19), over ``netweave.services.vnflcm_notify``.

POST tests the callback (GET → 204) after the SSRF rules, and stores nothing when either
refuses (422). A subscription belongs to the version and apiRoot it was made on: it is listed,
read and deleted there (elsewhere it is not found), and its notifications take that version's
shape and links. The callback authentication is stored with its secrets encrypted and never
returned. Scopes as for the rest of the face: ``o2dms:read`` for GET, ``o2dms:write`` for POST
and DELETE.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from netweave.api.common import JSON_BODY
from netweave.api.etsi.vnflcm import (
    FilterQuery,
    MarkerQuery,
    _page,
    face_root,
    header_check,
    json_response,
    manager_of,
    service,
)
from netweave.errors import InvalidInput
from netweave.services import Services
from netweave.services.vnflcm_notify import NOTIFICATION_TYPES, render_subscription

SubscriptionIdParam = Annotated[
    str, PathParameter(name="subscriptionId", min_length=1, max_length=64)
]
#: LccnSubscription's attributes (what ``filter`` may name).
SUBSCRIPTION_ATTRIBUTES = frozenset({"id", "filter", "callbackUri", "verbosity", "_links"})
#: SOL013: subscriptions are listed without attribute selectors.
_SELECTORS = ("all_fields", "fields", "exclude_fields", "exclude_default")

_Name = Annotated[str, Field(min_length=1, max_length=255)]
_Id = Annotated[str, Field(min_length=1, max_length=300)]
_List = Field(default=None, max_length=100)


class _Etsi(BaseModel):
    # Attributes the standard adds later are ignored, not stored.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class VnfVersions(_Etsi):
    vnf_software_version: _Name
    vnfd_versions: list[_Name] | None = _List


class VnfProduct(_Etsi):
    vnf_product_name: _Name
    versions: list[VnfVersions] | None = _List


class VnfProvider(_Etsi):
    #: May be empty: a package that names no provider has ``vnfProvider: ""``.
    vnf_provider: Annotated[str, Field(max_length=255)]
    vnf_products: list[VnfProduct] | None = _List


class VnfInstanceSubscriptionFilter(_Etsi):
    vnfd_ids: list[_Id] | None = _List
    vnf_products_from_providers: list[VnfProvider] | None = _List
    vnf_instance_ids: list[_Id] | None = _List
    vnf_instance_names: list[Annotated[str, Field(max_length=255)]] | None = _List


class LifecycleChangeNotificationsFilter(_Etsi):
    vnf_instance_subscription_filter: VnfInstanceSubscriptionFilter | None = None
    notification_types: (
        list[
            Literal[
                "VnfLcmOperationOccurrenceNotification",
                "VnfIdentifierCreationNotification",
                "VnfIdentifierDeletionNotification",
            ]
        ]
        | None
    ) = Field(default=None, max_length=len(NOTIFICATION_TYPES))
    #: Checked per version (v1 has no CHANGE_VNFPKG): ``vnflcm_notify.check_filter``.
    operation_types: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None, max_length=20
    )
    operation_states: (
        list[
            Literal[
                "STARTING",
                "PROCESSING",
                "COMPLETED",
                "FAILED_TEMP",
                "FAILED",
                "ROLLING_BACK",
                "ROLLED_BACK",
            ]
        ]
        | None
    ) = Field(default=None, max_length=7)


class ParamsBasic(_Etsi):
    user_name: str | None = Field(default=None, max_length=256)
    password: str | None = Field(default=None, max_length=1024)


class ParamsOauth2ClientCredentials(_Etsi):
    client_id: str | None = Field(default=None, max_length=256)
    client_password: str | None = Field(default=None, max_length=1024)
    token_endpoint: str | None = Field(default=None, max_length=2048)


class LccnSubscriptionAuthentication(_Etsi):
    """SOL003's; BASIC and OAUTH2_CLIENT_CREDENTIALS can be used, TLS_CERT when the gateway
    has a client certificate and the callback is https (a request whose authTypes the gateway
    can use none of is a 422)."""

    auth_type: list[Literal["BASIC", "OAUTH2_CLIENT_CREDENTIALS", "TLS_CERT"]] = Field(
        min_length=1, max_length=3
    )
    params_basic: ParamsBasic | None = None
    params_oauth2_client_credentials: ParamsOauth2ClientCredentials | None = None


class LccnSubscriptionRequest(_Etsi):
    callback_uri: str = Field(min_length=1, max_length=2048)
    filter: LifecycleChangeNotificationsFilter | None = None
    authentication: LccnSubscriptionAuthentication | None = None
    #: v2 only (v1 has no verbosity: its notifications are always complete).
    verbosity: Literal["FULL", "SHORT"] | None = None


def subscriptions_controller(major: int) -> type[Controller]:
    """The ``/vnflcm/v{major}/subscriptions`` resources."""
    prefix = f"/vnflcm/v{major}"

    def base_of(request: Request[Any, Any, Any]) -> str:
        return face_root(request) + prefix

    class SubscriptionsController(Controller):
        path = prefix
        tags = [f"vnflcm v{major}"]
        before_request = header_check(major)  # type: ignore[assignment]

        @post(
            "/subscriptions",
            operation_id=f"VnfLcmV{major}CreateSubscription",
            summary="Subscribe to LCM notifications (the callback is tested: GET → 204)",
            status_code=HTTP_201_CREATED,
            opt=JSON_BODY,
        )
        async def create_subscription(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            data: LccnSubscriptionRequest,
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
            record = await service(services).subscriptions.create(
                major=major,
                api_base=base_of(request),
                manager=manager_of(request),
                callback_uri=data.callback_uri,
                wanted=wanted,
                verbosity=(data.verbosity or "FULL") if major >= 2 else "FULL",
                authentication=auth,
            )
            body = render_subscription(record)
            return json_response(
                body, HTTP_201_CREATED, {"Location": body["_links"]["self"]["href"]}
            )

        @get(
            "/subscriptions",
            operation_id=f"VnfLcmV{major}ListSubscriptions",
            summary="Query the subscriptions (SOL013 filter, paging)",
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
            subscriptions = service(services).subscriptions
            manager = manager_of(request)

            async def rendered(records: list[Any]) -> list[dict[str, Any] | None]:
                # Only those made on this version and apiRoot are listed here.
                return [
                    render_subscription(r)
                    if r.api_major == major and r.manager == manager
                    else None
                    for r in records
                ]

            return await _page(
                request,
                lambda after, limit: subscriptions.page(after, limit),
                lambda r: (r.created_at, r.subscription_id),
                rendered,
                SUBSCRIPTION_ATTRIBUTES,
                (),
                SUBSCRIPTION_ATTRIBUTES,
            )

        @get(
            "/subscriptions/{subscriptionId:str}",
            operation_id=f"VnfLcmV{major}GetSubscription",
            summary="Read a subscription",
        )
        async def get_subscription(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            subscription_id: SubscriptionIdParam,
        ) -> Response[bytes]:
            record = await service(services).subscriptions.get(
                subscription_id, major=major, manager=manager_of(request)
            )
            return json_response(render_subscription(record))

        @delete(
            "/subscriptions/{subscriptionId:str}",
            operation_id=f"VnfLcmV{major}DeleteSubscription",
            summary="Terminate a subscription (pending notifications to it are dropped)",
            status_code=HTTP_204_NO_CONTENT,
        )
        async def delete_subscription(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            subscription_id: SubscriptionIdParam,
        ) -> None:
            await service(services).subscriptions.delete(
                subscription_id, major=major, manager=manager_of(request)
            )

    SubscriptionsController.__name__ = f"VnfLcmV{major}SubscriptionsController"
    return SubscriptionsController


__all__ = ["LccnSubscriptionRequest", "subscriptions_controller"]
