"""The ``config:`` block of an ``argocd`` adapter instance (documented field by field in README.md).

Keys are camelCase in YAML (``serverUrl``, ``defaultProject`` …); snake_case works too.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from netweave.adapters import AdapterConfig, ConfigSection
from netweave.adapters.http import HttpSettings
from pydantic import Field, SecretStr, field_validator, model_validator

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_VALUE_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class SyncPolicy(ConfigSection):
    """``spec.syncPolicy`` of every Application the adapter creates."""

    #: Let Argo CD sync by itself (``automated``); otherwise the adapter syncs after each change.
    automated: bool = False
    #: Delete resources that left the source (automated syncs and the adapter's own syncs).
    prune: bool = False
    #: Revert changes made in the cluster outside Git (automated only).
    self_heal: bool = False
    #: ``spec.syncPolicy.syncOptions``; the default creates the destination namespace.
    sync_options: list[str] = Field(default_factory=lambda: ["CreateNamespace=true"])


class Destination(ConfigSection):
    """The cluster Applications deploy to: an API server URL or a cluster name known to Argo CD."""

    server: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Destination:
        if (self.server is None) == (self.name is None):
            raise ValueError("destination needs exactly one of server or name")
        return self


class ArgoCDConfig(AdapterConfig):
    #: argocd-server's base URL, e.g. ``https://argocd.example.com`` (the API is under /api/v1).
    server_url: str
    #: An Argo CD API token (account token or a session JWT). Alternative: username/password.
    auth_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    #: The namespace Argo CD runs in (where Applications live unless applicationNamespace).
    namespace: str = Field(default="argocd", pattern=_NAME, max_length=63)
    #: Namespace for the Application resources ("apps in any namespace"); default: namespace.
    application_namespace: str | None = Field(default=None, pattern=_NAME, max_length=63)
    #: The Argo CD project of every Application; passed on every call (see README: 403 vs 404).
    default_project: str = Field(default="default", min_length=1, max_length=253)
    sync_policy: SyncPolicy = Field(default_factory=SyncPolicy)
    destination: Destination = Field(
        default_factory=lambda: Destination(server="https://kubernetes.default.svc")
    )
    #: How a delete removes the app's resources (Argo CD's cascading delete).
    propagation_policy: Literal["foreground", "background"] = "foreground"
    #: Dotted Helm value the ``scale`` operation sets (``replicaCount``, ``web.replicas`` …).
    scale_value_path: str = "replicaCount"
    #: Check a package's source through Argo CD's repository API when it is registered.
    verify_sources: bool = True
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("serverUrl must be an http(s) URL, e.g. https://argocd.example.com")
        return value.rstrip("/")

    @field_validator("scale_value_path")
    @classmethod
    def _value_path(cls, value: str) -> str:
        if not _VALUE_PATH.match(value):
            raise ValueError("scaleValuePath must be a dotted path of value names")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> ArgoCDConfig:
        if self.auth_token is not None and self.username is not None:
            raise ValueError("give either authToken or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.auth_token is None and self.username is None:
            raise ValueError("Argo CD needs credentials: authToken, or username and password")
        return self

    @property
    def app_namespace(self) -> str:
        return self.application_namespace or self.namespace
