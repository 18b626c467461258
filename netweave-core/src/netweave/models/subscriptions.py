"""Subscriptions to gateway events (delivery is done by the notification outbox)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from netweave.models.base import RequestModel, WireModel


class EventType(enum.StrEnum):
    PACKAGE_UPLOADED = "PackageUploaded"
    PACKAGE_CHANGED = "PackageChanged"
    PACKAGE_DELETED = "PackageDeleted"
    DEPLOYMENT_CREATED = "DeploymentCreated"
    DEPLOYMENT_CHANGED = "DeploymentChanged"
    DEPLOYMENT_DELETED = "DeploymentDeleted"
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
    token_endpoint: str = Field(min_length=1, max_length=2048)


class SubscriptionAuthentication(RequestModel):
    """How the gateway authenticates towards the callback (ETSI SOL003
    ``SubscriptionAuthentication``; ``TLS_CERT`` is not supported). Never returned by GET."""

    auth_type: list[Literal["BASIC", "OAUTH2_CLIENT_CREDENTIALS"]] = Field(
        min_length=1, max_length=2
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
    callback_uri: str = Field(min_length=1, max_length=2048)
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
