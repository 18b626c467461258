"""``OnapAdapter``: the ``onap`` entry point, driving the backend its configuration names.

What an ONAP instance can do depends on its ``backend`` setting: the k8s plugin can roll back
(re-upgrade to an earlier definition and profile), SO's NBI cannot even update a CNF through a
contract-checked route. So ``OnapAdapter`` holds one :class:`OnapBackend` — the mode's client and
vocabulary (:class:`~netweave_onap.k8splugin.K8sPluginBackend` or
:class:`~netweave_onap.so.SoBackend`) — hands its hooks to it, and reports that backend's
capabilities, package types and name limit as the instance's own. The class-level defaults
(what the loader and ``OnapAdapter.info()`` show before any instance exists) are what every
``onap`` instance can do: the intersection of the modes' capabilities, the union of their
package types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
from netweave.adapters import (
    AdapterHealth,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.adapters.http import BackendClient, ErrorMapper
from netweave.adapters.polling import poll_until
from netweave.errors import NetweaveError
from netweave.models import RevisionEntry

from netweave_onap.config import OnapConfig

_T = TypeVar("_T")

#: Capabilities of each mode; ``OnapAdapter`` declares their intersection as its class default.
K8SPLUGIN_CAPABILITIES = frozenset(
    {
        Capability.PACKAGE_MANAGEMENT,
        Capability.PACKAGE_LISTING,
        Capability.DEPLOYMENT_LIFECYCLE,
        Capability.DEPLOYMENT_UPDATE,
        Capability.ROLLBACK,
        Capability.HISTORY,
    }
)
SO_CAPABILITIES = frozenset({Capability.PACKAGE_MANAGEMENT, Capability.DEPLOYMENT_LIFECYCLE})
HELM_PACKAGE = "helm"
SDC_PACKAGE = "sdc-service"


class OnapBackend:
    """One ONAP backend mode: its client, its vocabulary and the adapter's hooks for it.

    Not an adapter: :class:`OnapAdapter` owns the template (capability checks, timeouts,
    error mapping) and calls these hooks only for what the mode declares."""

    #: The ``backend`` value of the configuration this mode drives.
    BACKEND: ClassVar[str] = ""
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset()
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset()
    MAX_DEPLOYMENT_NAME_LENGTH: ClassVar[int] = 63
    #: Why the mode lacks a capability (the 501's message).
    UNSUPPORTED: ClassVar[dict[Capability, str]] = {}

    def __init__(self, name: str, config: OnapConfig) -> None:
        self.name = name
        self.config = config
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

    # -- hooks (the adapter's, for this mode); a mode overrides what it declares -----------

    async def _start(self) -> None:
        return None

    async def _stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _health(self) -> AdapterHealth:
        return AdapterHealth(healthy=True)

    async def _list_packages(self) -> list[PackageInfo]:
        raise NotImplementedError("_list_packages")

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        raise NotImplementedError("_get_package")

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        raise NotImplementedError("_upload_package")

    async def _delete_package(self, backend_ref: str) -> None:
        raise NotImplementedError("_delete_package")

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        raise NotImplementedError("_create_deployment")

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        raise NotImplementedError("_get_deployment")

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        raise NotImplementedError("_update_deployment")

    async def _check_update(self, backend_ref: str, change: DeploymentChange) -> None:
        return None

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        raise NotImplementedError("_delete_deployment")

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        raise NotImplementedError("_rollback_deployment")

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        raise NotImplementedError("_get_history")

    #: True when the mode reads many deployments in one backend call (``_get_deployments``).
    BATCH_READS: ClassVar[bool] = False

    async def _get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        raise NotImplementedError("_get_deployments")


class OnapAdapter(DMSAdapter[OnapConfig]):
    TYPE: ClassVar[str] = "onap"
    DISTRIBUTION: ClassVar[str] = "netweave-onap"
    #: What every ``onap`` instance can do; an instance reports its backend's (``capabilities``).
    CAPABILITIES: ClassVar[frozenset[Capability]] = K8SPLUGIN_CAPABILITIES & SO_CAPABILITIES
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({HELM_PACKAGE, SDC_PACKAGE})
    DESCRIPTION: ClassVar[str] = (
        "ONAP: CNFs through the MultiCloud k8s plugin (backend: k8splugin) or the Service "
        "Orchestrator's macro flow (backend: so)"
    )

    def __init__(self, name: str, config: OnapConfig, *, data_dir: Path | None = None) -> None:
        super().__init__(name, config, data_dir=data_dir)
        self.backend = _backend_for(name, self.config)

    def implementation_of(self, hook: str) -> Callable[..., Any]:
        # Every hook is handed to the configured backend: its method is the implementation
        # (a hook the backend classes do not define at all is DMSAdapter's default).
        func: Callable[..., Any] = getattr(
            type(self.backend), hook, None
        ) or DMSAdapter.implementation_of(self, hook)
        return func

    @property
    def batch_reads(self) -> bool:
        # Whether a poll round is one call depends on the configured backend: SO lists its
        # requests at once; the k8s plugin's instance list carries no status.
        return self.backend.BATCH_READS

    # -- what this instance can do: its backend's ------------------------------------------

    @classmethod
    def default_capabilities(cls) -> frozenset[Capability]:
        # Exactly the intersection: SO lacks the parts (listing, update) of what it declares.
        return cls.CAPABILITIES

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.backend.CAPABILITIES

    @property
    def package_types(self) -> frozenset[str]:
        return self.backend.PACKAGE_TYPES

    @property
    def max_deployment_name_length(self) -> int:
        return self.backend.MAX_DEPLOYMENT_NAME_LENGTH

    def _unsupported_reason(self, capability: Capability) -> str | None:
        return self.backend.UNSUPPORTED.get(capability)

    # -- hooks: the backend's ------------------------------------------------------------

    async def _start(self) -> None:
        await self.backend._start()

    async def _stop(self) -> None:
        await self.backend._stop()

    async def _health(self) -> AdapterHealth:
        return await self.backend._health()

    async def _list_packages(self) -> list[PackageInfo]:
        return await self.backend._list_packages()

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        return await self.backend._get_package(backend_ref)

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        return await self.backend._upload_package(upload)

    async def _delete_package(self, backend_ref: str) -> None:
        await self.backend._delete_package(backend_ref)

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        return await self.backend._create_deployment(spec, ctx)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        return await self.backend._get_deployment(backend_ref)

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        return await self.backend._update_deployment(backend_ref, change, ctx)

    async def _check_update(self, backend_ref: str, change: DeploymentChange) -> None:
        await self.backend._check_update(backend_ref, change)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        await self.backend._delete_deployment(backend_ref, ctx)

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        return await self.backend._rollback_deployment(backend_ref, revision, ctx)

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        return await self.backend._get_history(backend_ref)

    async def _get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        return await self.backend._get_deployments(backend_refs)


def _backend_for(name: str, config: OnapConfig) -> OnapBackend:
    # Imported here: the mode modules subclass OnapBackend from this one.
    if config.backend == "so":
        from netweave_onap.so import SoBackend

        return SoBackend(name, config)
    from netweave_onap.k8splugin import K8sPluginBackend

    return K8sPluginBackend(name, config)


__all__ = [
    "HELM_PACKAGE",
    "K8SPLUGIN_CAPABILITIES",
    "SDC_PACKAGE",
    "SO_CAPABILITIES",
    "OnapAdapter",
    "OnapBackend",
]
