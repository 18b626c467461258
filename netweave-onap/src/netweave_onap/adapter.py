"""``OnapAdapter``: the ``onap`` entry point, one class per backend mode behind it.

``DMSAdapter`` declares capabilities as class attributes (read by the loader, the kit and the
API through ``type(adapter)``), but what an ONAP instance can do depends on its ``backend``
setting: the k8s plugin can roll back (re-upgrade to an earlier definition and profile), SO's
NBI cannot even update a CNF through a contract-checked route. So constructing
``OnapAdapter(name, config)`` returns an instance of the mode's subclass
(:class:`~netweave_onap.k8splugin.K8sPluginAdapter` or :class:`~netweave_onap.so.SoAdapter`),
whose class attributes are that mode's honest capabilities. ``OnapAdapter`` itself — what the
loader validates at load time — declares the intersection (what every ``onap`` instance can do)
and the union of package types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import httpx
from netweave.adapters import AdapterConfig, Capability, DMSAdapter
from netweave.adapters.http import BackendClient, ErrorMapper
from netweave.adapters.polling import poll_until

from netweave_onap.config import OnapConfig

_T = TypeVar("_T")

#: Capabilities of each mode; ``OnapAdapter`` declares their intersection.
K8SPLUGIN_CAPABILITIES = frozenset(
    {
        Capability.PACKAGE_MANAGEMENT,
        Capability.DEPLOYMENT_LIFECYCLE,
        Capability.ROLLBACK,
        Capability.HISTORY,
    }
)
SO_CAPABILITIES = frozenset({Capability.PACKAGE_MANAGEMENT, Capability.DEPLOYMENT_LIFECYCLE})
HELM_PACKAGE = "helm"
SDC_PACKAGE = "sdc-service"


class OnapAdapter(DMSAdapter[OnapConfig]):
    TYPE: ClassVar[str] = "onap"
    DISTRIBUTION: ClassVar[str] = "netweave-onap"
    CAPABILITIES: ClassVar[frozenset[Capability]] = K8SPLUGIN_CAPABILITIES & SO_CAPABILITIES
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({HELM_PACKAGE, SDC_PACKAGE})
    DESCRIPTION: ClassVar[str] = (
        "ONAP: CNFs through the MultiCloud k8s plugin (backend: k8splugin) or the Service "
        "Orchestrator's macro flow (backend: so)"
    )
    #: Set by each mode's subclass.
    BACKEND: ClassVar[str] = ""

    def __new__(cls, name: str, config: AdapterConfig) -> OnapAdapter:
        if cls is not OnapAdapter:
            return super().__new__(cls)
        onap = _as_onap_config(config)
        # Imported here: the mode modules subclass this one.
        if onap.backend == "so":
            from netweave_onap.so import SoAdapter

            return super().__new__(SoAdapter)
        from netweave_onap.k8splugin import K8sPluginAdapter

        return super().__new__(K8sPluginAdapter)

    def __init__(self, name: str, config: OnapConfig) -> None:
        super().__init__(name, config)
        if self.BACKEND and self.config.backend != self.BACKEND:
            raise ValueError(
                f"{type(self).__name__} drives backend {self.BACKEND!r}, "
                f"the configuration says {self.config.backend!r}"
            )
        self._client: BackendClient | None = None

    # -- shared plumbing -----------------------------------------------------------------

    def _make_client(self, base_url: str, backend: str, mapper: ErrorMapper) -> BackendClient:
        cfg = self.config
        auth: httpx.Auth | None = None
        if cfg.username is not None and cfg.password is not None:
            auth = httpx.BasicAuth(cfg.username, cfg.password.get_secret_value())
        return BackendClient(
            base_url.rstrip("/"),
            backend=backend,
            settings=cfg.http,
            auth=auth,
            headers=self._default_headers(),
            error_mapper=mapper,
        )

    def _default_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @property
    def client(self) -> BackendClient:
        if self._client is None:
            raise RuntimeError(f"adapter {self.name!r} used before start()")
        return self._client

    async def _stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _poll(
        self,
        fetch: Callable[[], Awaitable[_T]],
        done: Callable[[_T], bool],
    ) -> _T:
        """Call ``fetch`` every ``pollInterval`` until ``done``, within the write timeout
        (core's one deadline rule: a ``BackendTimeout`` when it passes)."""
        return await poll_until(
            fetch,
            done,
            within=self.config.timeouts.write,
            interval=self.config.poll_interval,
            what="the ONAP request settling",
        )


def _as_onap_config(config: AdapterConfig | dict[str, Any]) -> OnapConfig:
    if isinstance(config, OnapConfig):
        return config
    if isinstance(config, dict):
        return OnapConfig.model_validate(config)
    return OnapConfig.model_validate(config.model_dump(by_alias=True))


__all__ = [
    "HELM_PACKAGE",
    "K8SPLUGIN_CAPABILITIES",
    "SDC_PACKAGE",
    "SO_CAPABILITIES",
    "OnapAdapter",
]
