"""Subscriptions to gateway events (delivery is done by the notification outbox)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from netweave.models.base import RequestModel, WireModel

_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_H = "[0-9A-Fa-f]{1,4}"
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
#: RFC 4291 text forms (the URL parser refuses a bracketed host that is not an address).
_IPV6 = "|".join(
    (
        f"({_H}:){{7}}{_H}",
        f"({_H}:){{1,7}}:",
        f"({_H}:){{1,6}}:{_H}",
        f"({_H}:){{1,5}}(:{_H}){{1,2}}",
        f"({_H}:){{1,4}}(:{_H}){{1,3}}",
        f"({_H}:){{1,3}}(:{_H}){{1,4}}",
        f"({_H}:){{1,2}}(:{_H}){{1,5}}",
        f"{_H}:(:{_H}){{1,6}}",
        f":((:{_H}){{1,7}}|:)",
        f"({_H}:){{6}}{_V4}",
        f"::([fF]{{4}}:)?{_V4}",
    )
)
#: An absolute http(s) URL with a host (a DNS name or an IP literal), an optional port in range,
#: no credentials and no fragment: what the callback checks accept before they resolve the host.
HTTP_URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9_.-]+|\[({_IPV6})\])(:{_PORT})?([/?][^\s#]*)?$"
)


class EventType(enum.StrEnum):
    PACKAGE_UPLOADED = "PackageUploaded"
    PACKAGE_CHANGED = "PackageChanged"
    PACKAGE_DELETED = "PackageDeleted"
    DEPLOYMENT_CREATED = "DeploymentCreated"
    DEPLOYMENT_CHANGED = "DeploymentChanged"
    DEPLOYMENT_DELETED = "DeploymentDeleted"
    #: The reconciler found the deployment's health changed between operations.
    DEPLOYMENT_HEALTH_CHANGED = "DeploymentHealthChanged"
    #: The reconciler found a change made outside the gateway.
    DEPLOYMENT_DRIFT_DETECTED = "DeploymentDriftDetected"
    OPERATION_STATE_CHANGED = "OperationStateChanged"


class SubscriptionFilter(RequestModel):
    event_types: list[EventType] = Field(default_factory=list)
    deployment_ids: list[str] = Field(default_factory=list)
    package_ids: list[str] = Field(default_factory=list)
    adapters: list[str] = Field(default_factory=list)


class BasicAuthParams(RequestModel):
    user_name: str = Field(min_length=1, max_length=256)
    password: SecretStr = Field(min_length=1, max_length=1024)


class OAuth2ClientCredentialsParams(RequestModel):
    client_id: str = Field(min_length=1, max_length=256)
    client_password: SecretStr = Field(min_length=1, max_length=1024)
    token_endpoint: str = Field(min_length=1, max_length=2048, pattern=HTTP_URL_PATTERN)


class SubscriptionAuthentication(RequestModel):
    """How the gateway authenticates towards the callback (ETSI SOL003
    ``SubscriptionAuthentication``; ``TLS_CERT``: mutually authenticated TLS with the gateway's
    client certificate, for https callbacks of a gateway given one). Never returned by GET."""

    # The document says what ``_params_given`` enforces: each authType needs its parameters.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"authType": {"contains": {"const": kind}}}},
                    "then": {"required": [params], "properties": {params: {"type": "object"}}},
                }
                for kind, params in (
                    ("BASIC", "paramsBasic"),
                    ("OAUTH2_CLIENT_CREDENTIALS", "paramsOauth2ClientCredentials"),
                )
            ]
        }
    )

    auth_type: list[Literal["BASIC", "OAUTH2_CLIENT_CREDENTIALS", "TLS_CERT"]] = Field(
        min_length=1, max_length=3
    )
    params_basic: BasicAuthParams | None = None
    params_oauth2_client_credentials: OAuth2ClientCredentialsParams | None = None

    @model_validator(mode="after")
    def _params_given(self) -> SubscriptionAuthentication:
        if "BASIC" in self.auth_type and self.params_basic is None:
            raise ValueError("authType BASIC needs paramsBasic")
        if (
            "OAUTH2_CLIENT_CREDENTIALS" in self.auth_type
            and self.params_oauth2_client_credentials is None
        ):
            raise ValueError(
                "authType OAUTH2_CLIENT_CREDENTIALS needs paramsOauth2ClientCredentials"
            )
        return self


class SubscriptionRequest(RequestModel):
    callback_uri: str = Field(min_length=1, max_length=2048, pattern=HTTP_URL_PATTERN)
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    #: How the gateway authenticates towards the callback; stored, never returned.
    authentication: SubscriptionAuthentication | None = None


class Subscription(WireModel):
    subscription_id: str
    callback_uri: str
    filter: SubscriptionFilter
    created_at: datetime


class SubscriptionList(WireModel):
    items: list[Subscription]
    total: int
    limit: int
    offset: int
