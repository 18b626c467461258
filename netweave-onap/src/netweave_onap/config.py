"""The ``config:`` block of an ``onap`` adapter instance.

One schema for both backends; ``backend`` picks which one the instance drives and the
validator checks that the fields that backend needs are present. Field names follow the Go
project's design (``soUrl``, ``k8sPluginUrl``, ``cloudOwner``, ``cloudRegion``, ``tenantId`` …);
``${VAR}`` interpolation of secrets is done by the core before this model sees the values.
"""

from __future__ import annotations

from typing import Literal

from netweave.adapters import AdapterConfig
from netweave.adapters.http import HttpSettings
from pydantic import Field, SecretStr, model_validator


class OnapConfig(AdapterConfig):
    backend: Literal["k8splugin", "so"] = "k8splugin"

    #: MultiCloud k8s plugin base URL, without ``/v1`` (``http://multicloud-k8s.onap:9015``, or
    #: ``http://<node>:30280/api/multicloud-k8s/v1`` through MSB).
    k8s_plugin_url: str | None = Field(default=None, alias="k8sPluginUrl")
    #: SO API handler base URL (``http://so.onap:8080``).
    so_url: str | None = None

    #: Basic auth. The k8s plugin has none of its own (an ingress may add it); SO requires it.
    username: str | None = None
    password: SecretStr | None = None

    #: Where CNFs go: the k8s cluster registered in ONAP as a cloud region.
    cloud_owner: str = "CloudOwner"
    cloud_region: str = Field(min_length=1)
    tenant_id: str | None = None

    # -- SO macro request context (A&AI customer, project, owning entity …) --------------
    global_subscriber_id: str = "netweave"
    subscription_service_type: str = "netweave"
    project_name: str = "netweave"
    owning_entity_id: str = "netweave"
    owning_entity_name: str = "netweave"
    platform_name: str = "netweave"
    line_of_business_name: str = "netweave"
    product_family_id: str = "netweave"
    #: ``requestInfo.requestorId`` and the ``X-RequestorID`` header.
    requestor_id: str = "netweave"
    #: ``requestInfo.source`` and the ``X-ONAP-PartnerName`` header.
    source: str = "netweave"
    #: SO API version used in paths (v7 is the only one with every CNF route).
    so_api_version: Literal["v7"] = "v7"

    # -- k8s plugin ----------------------------------------------------------------------
    #: Extra ``override-values`` sent with every instance create/upgrade: plugin knobs such as
    #: ``k8s-rb-instance-post-install-timeout`` (the plugin reads them, then passes them to
    #: Helm like ``--set``).
    override_values: dict[str, str] = Field(default_factory=dict)

    # -- progress tracking ---------------------------------------------------------------
    #: Seconds between two polls of a running request/instance.
    poll_interval: float = Field(default=2.0, gt=0, le=300)
    #: Wait for the backend to finish (instance DONE, requestState terminal) before a create,
    #: update, rollback or delete returns; ``false`` returns as soon as the backend accepted.
    wait: bool = True

    http: HttpSettings = Field(default_factory=HttpSettings)

    @model_validator(mode="after")
    def _backend_fields(self) -> OnapConfig:
        if self.backend == "k8splugin" and not self.k8s_plugin_url:
            raise ValueError("backend 'k8splugin' needs k8sPluginUrl")
        if self.backend == "so":
            missing = [
                alias
                for alias, value in (
                    ("soUrl", self.so_url),
                    ("username", self.username),
                    ("password", self.password),
                    ("tenantId", self.tenant_id),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"backend 'so' needs {', '.join(missing)}")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


__all__ = ["OnapConfig"]
