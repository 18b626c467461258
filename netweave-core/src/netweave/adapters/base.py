"""``DMSAdapter``: the contract every backend adapter implements.

Public methods are *template methods*: they check the declared capability, validate input,
apply the instance's timeouts and map every failure onto :mod:`netweave.errors`, then call the
protected ``_hook`` an adapter overrides. So every adapter behaves the same at the edges, and an
adapter is mostly its backend's client plus a vocabulary mapping.

A hook the adapter does not override raises :class:`NotImplementedError`; if its capability is
declared that becomes a 501 naming the hook (the conformance kit flags it), and if it is not
declared the call never reaches the hook.
"""

from __future__ import annotations

import abc
import asyncio
import importlib.metadata
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Container
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from typing_extensions import TypeVar as DefaultedTypeVar

from netweave.__about__ import CONTRACT_VERSION
from netweave.adapters.capabilities import Capability
from netweave.adapters.info import AdapterInfo
from netweave.adapters.types import (
    AdapterHealth,
    BackendChanges,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    OperationContext,
    PackageDescription,
    PackageInfo,
    PackageListing,
    PackageUpload,
)
from netweave.errors import (
    BackendError,
    BackendTimeout,
    InvalidInput,
    NetweaveError,
    Unprocessable,
    Unsupported,
)
from netweave.models import LogOptions, Preview, ResourceDiff, RevisionEntry

if TYPE_CHECKING:
    from netweave.config import FetchSettings

_log = logging.getLogger("netweave.adapters")

#: Capabilities that are parts of a coarser one: declaring the whole in ``CAPABILITIES``
#: declares its parts (so an adapter written before the split keeps them); an instance that
#: lacks a part says so in its ``capabilities`` property (ONAP's SO mode has no catalogue to
#: list and cannot update).
CAPABILITY_PARTS: dict[Capability, frozenset[Capability]] = {
    Capability.PACKAGE_MANAGEMENT: frozenset({Capability.PACKAGE_LISTING}),
    Capability.DEPLOYMENT_LIFECYCLE: frozenset({Capability.DEPLOYMENT_UPDATE}),
}


def with_parts(declared: frozenset[Capability]) -> frozenset[Capability]:
    """``declared`` with the parts of each coarse capability it holds."""
    parts = [CAPABILITY_PARTS[c] for c in declared if c in CAPABILITY_PARTS]
    return declared.union(*parts)


_T = TypeVar("_T")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Timeouts(BaseModel):
    """Seconds a call may take before it becomes a ``BackendTimeout`` (504)."""

    model_config = ConfigDict(extra="forbid")

    read: float = Field(default=30.0, gt=0, le=3600)
    write: float = Field(default=600.0, gt=0, le=86_400)


class ConfigSection(BaseModel):
    """Base of every model in an adapter's ``config:`` block, the block itself and its nested
    sections: keys are camelCase in YAML and JSON (``kubeUrl``), snake_case in Python, and a
    misspelt key is refused at load."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class AdapterConfig(ConfigSection):
    """Base of every adapter's ``config:`` block; adapters subclass it with their own fields."""

    timeouts: Timeouts = Field(default_factory=Timeouts)


#: The adapter's config model: ``class HelmAdapter(DMSAdapter[HelmConfig])`` makes
#: ``self.config`` a ``HelmConfig`` for the type checker and ``HelmAdapter.Config`` the model
#: the loader validates an instance's ``config:`` block with.
ConfigT = DefaultedTypeVar("ConfigT", bound=AdapterConfig, default=AdapterConfig)


class DMSAdapter(abc.ABC, Generic[ConfigT]):
    """Base class of all adapters. Subclasses name their config model as the type argument
    (``DMSAdapter[AcmeConfig]``), set the class attributes and override hooks."""

    #: Entry-point name in ``netweave.adapters``; must equal it (checked at load).
    TYPE: ClassVar[str]
    #: Distribution shipping the adapter, named in install hints (``pip install …``).
    DISTRIBUTION: ClassVar[str]
    #: The type's default capabilities: what an instance can do unless its ``capabilities``
    #: property says otherwise; shown for the type before any instance exists.
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset()
    #: Package types this adapter onboards (``helm``, ``git-repo``, ``oci``, ``vnfd`` …).
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset()
    CONTRACT_VERSION: ClassVar[str] = CONTRACT_VERSION
    DESCRIPTION: ClassVar[str] = ""
    #: Schema of the instance's ``config:`` block: the type argument of ``DMSAdapter[...]``
    #: (set by ``__init_subclass__``; a class may still set it explicitly).
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    #: Longest deployment name the backend accepts (Helm releases: 53).
    MAX_DEPLOYMENT_NAME_LENGTH: ClassVar[int] = 63

    config: ConfigT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__:
            return
        for base in getattr(cls, "__orig_bases__", ()):
            origin = get_origin(base)
            if isinstance(origin, type) and issubclass(origin, DMSAdapter):
                args = get_args(base)
                if args and isinstance(args[0], type) and issubclass(args[0], AdapterConfig):
                    cls.Config = args[0]
                    return

    def __init__(
        self,
        name: str,
        config: ConfigT,
        *,
        data_dir: Path | None = None,
        fetch: FetchSettings | None = None,
    ) -> None:
        """``data_dir``: a directory private to this instance (``<gateway data dir>/adapters/
        <instance name>``), given by the loader; ``None`` when the adapter runs without one
        (tests). It may not exist yet: an adapter that keeps files creates it.

        ``fetch``: the gateway's ``fetch`` settings (networks that fetches a client's content
        causes may reach), given by the loader; build the policy with
        ``netweave.fetching.FetchPolicy.from_settings``. ``None``: the policy's defaults."""
        self.name = name
        self.data_dir = data_dir
        self.gateway_fetch = fetch
        model = type(self).Config
        if not isinstance(config, model):
            # A config of another model (a test's base ``AdapterConfig``, a parent class's):
            # validate its fields against this adapter's model, once, here.
            config = model.model_validate(config.model_dump())  # type: ignore[assignment]
        self.config = config

    # -- metadata ------------------------------------------------------------------------

    @classmethod
    def info(cls) -> AdapterInfo:
        """The type's description with its class-level defaults (``CAPABILITIES``,
        ``PACKAGE_TYPES``): what the loader checks before any instance exists."""
        return cls._adapter_info(cls.default_capabilities(), cls.PACKAGE_TYPES)

    def instance_info(self) -> AdapterInfo:
        """This instance's description: its own capabilities and package types."""
        return self._adapter_info(self.capabilities, self.package_types)

    @classmethod
    def _adapter_info(
        cls, capabilities: frozenset[Capability], package_types: frozenset[str]
    ) -> AdapterInfo:
        try:
            version = importlib.metadata.version(cls.DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "0+unknown"
        return AdapterInfo(
            type=cls.TYPE,
            distribution=cls.DISTRIBUTION,
            version=version,
            contract_version=cls.CONTRACT_VERSION,
            capabilities=capabilities,
            package_types=package_types,
            description=cls.DESCRIPTION,
        )

    # -- what this instance can do (from its configuration) ------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this instance can do end to end. The default is the class's ``CAPABILITIES``;
        an adapter whose abilities depend on its configuration (ONAP's ``backend``) overrides
        this property. The core, the API listing and the conformance kit read this one."""
        return type(self).default_capabilities()

    @classmethod
    def default_capabilities(cls) -> frozenset[Capability]:
        """What an instance of this type can do unless its ``capabilities`` say otherwise:
        ``CAPABILITIES`` with the parts of each coarse capability it names."""
        return with_parts(cls.CAPABILITIES)

    @property
    def package_types(self) -> frozenset[str]:
        """Package types this instance onboards (default: the class's ``PACKAGE_TYPES``)."""
        return type(self).PACKAGE_TYPES

    @property
    def max_deployment_name_length(self) -> int:
        """Longest deployment name this instance's backend accepts (default: the class's
        ``MAX_DEPLOYMENT_NAME_LENGTH``)."""
        return type(self).MAX_DEPLOYMENT_NAME_LENGTH

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            reason = self._unsupported_reason(capability)
            raise Unsupported(
                f"adapter {self.name!r} ({self.TYPE}) does not support {capability.value}"
                + (f": {reason}" if reason else ""),
                details={"capability": capability.value, "adapter": self.name},
            )

    def _unsupported_reason(self, capability: Capability) -> str | None:
        """Why this instance lacks ``capability``, for the 501's message (e.g. the backend has
        no such API); ``None`` (the default) says nothing more."""
        return None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open clients. Must not fail for an unreachable backend: health reports that."""
        await self._guard("start", self.config.timeouts.read, self._start)

    async def stop(self) -> None:
        await self._guard("stop", self.config.timeouts.read, self._stop)

    async def health(self) -> AdapterHealth:
        try:
            return await self._guard("health", self.config.timeouts.read, self._health)
        except NetweaveError as exc:
            return AdapterHealth(healthy=False, message=exc.message)

    # -- packages ------------------------------------------------------------------------

    async def list_packages(self) -> list[PackageInfo]:
        self.require(Capability.PACKAGE_MANAGEMENT)
        self.require(Capability.PACKAGE_LISTING)
        return await self._guard("list packages", self.config.timeouts.read, self._list_packages)

    async def list_packages_since(
        self, token: str | None, known_refs: Container[str] = ()
    ) -> PackageListing:
        """The packages added since ``token`` (an earlier answer's), or every package, leaving
        out those whose ``backend_ref`` is in ``known_refs`` (the caller has them already).

        Lets a caller that polls the backend pay for what changed, not for the whole catalogue:
        an adapter compares references before it builds a ``PackageInfo``. An adapter without
        change tracking answers every package it does not know (``complete``) each time.
        """
        self.require(Capability.PACKAGE_MANAGEMENT)
        self.require(Capability.PACKAGE_LISTING)
        return await self._guard(
            "list packages",
            self.config.timeouts.read,
            lambda: self._list_packages_since(token, known_refs),
        )

    async def get_package(self, backend_ref: str) -> PackageInfo:
        self.require(Capability.PACKAGE_MANAGEMENT)
        return await self._guard(
            "get package", self.config.timeouts.read, lambda: self._get_package(backend_ref)
        )

    async def check_package(self, upload: PackageUpload) -> None:
        """Refuse, before the package reaches the backend or the store, one this instance
        cannot onboard (``Unsupported``, ``Unprocessable``, ``InvalidInput``, or the adapter's
        own ``_check_package``); changes nothing."""
        self._check_upload(upload)
        await self._guard(
            "check package", self.config.timeouts.read, lambda: self._check_package(upload)
        )

    def _check_upload(self, upload: PackageUpload) -> None:
        self.require(Capability.PACKAGE_MANAGEMENT)
        if (
            upload.package_type is not None
            and self.package_types
            and (upload.package_type not in self.package_types)
        ):
            raise Unprocessable(
                f"adapter {self.name!r} accepts package types "
                f"{sorted(self.package_types)}, not {upload.package_type!r}",
                details={"field": "packageType"},
            )
        if upload.archive is None and upload.package_uri is None:
            raise InvalidInput("a package needs an archive or a packageUri")

    async def upload_package(self, upload: PackageUpload) -> PackageInfo:
        self._check_upload(upload)
        return await self._guard(
            "upload package", self.config.timeouts.write, lambda: self._upload_package(upload)
        )

    async def delete_package(self, backend_ref: str) -> None:
        self.require(Capability.PACKAGE_MANAGEMENT)
        await self._guard(
            "delete package", self.config.timeouts.write, lambda: self._delete_package(backend_ref)
        )

    async def set_package_deprecated(self, backend_ref: str, deprecated: bool) -> None:
        """Called after the gateway stored a package as DEPRECATED (``True``) or restored it
        (``False``). Optional: a backend with its own mark mirrors it (Helm's index entry
        ``deprecated: true``); the default does nothing."""
        return None

    async def package_archive(self, backend_ref: str) -> Path | None:
        """A local file holding the package's archive as the backend keeps it (the ETSI
        package face serves it; the caller only reads it). Optional: ``None`` (the default)
        when the adapter keeps no archive."""
        self.require(Capability.PACKAGE_MANAGEMENT)
        return await self._guard(
            "read package archive",
            self.config.timeouts.write,
            lambda: self._package_archive(backend_ref),
        )

    async def describe_package(self, backend_ref: str) -> PackageDescription | None:
        """The workloads the package deploys with its default values and the values key that
        sets each one's replicas (the generated VNFD of a bare chart). Optional: ``None`` (the
        default) when the adapter cannot tell."""
        self.require(Capability.PACKAGE_MANAGEMENT)
        return await self._guard(
            "describe package",
            self.config.timeouts.write,
            lambda: self._describe_package(backend_ref),
        )

    async def _package_archive(self, backend_ref: str) -> Path | None:
        return None

    async def _describe_package(self, backend_ref: str) -> PackageDescription | None:
        return None

    # -- deployments ---------------------------------------------------------------------

    def validate_deployment_name(self, name: str) -> None:
        message = (
            f"deployment name {name!r} must be a DNS label of at most "
            f"{self.max_deployment_name_length} characters for adapter {self.TYPE!r}"
        )
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise InvalidInput(message, details={"field": "name"})
        if len(name) > self.max_deployment_name_length:
            # The API document allows any DNS label of up to 63 characters: this backend's
            # shorter limit (Helm: 53) refuses a well-formed name, so it is a 422.
            raise Unprocessable(message, details={"field": "name"})

    async def check_deployment(self, spec: DeploymentSpec, *, dry_run: bool = False) -> None:
        """Refuse, before any operation exists, a deployment this instance cannot carry out:
        the capability, the name, and the adapter's own ``_check_deployment`` (Helm: 503
        ``ClusterNotConfigured`` without a cluster, except for a dry run). Changes nothing."""
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        self.validate_deployment_name(spec.name)
        await self._guard(
            "check deployment",
            self.config.timeouts.read,
            lambda: self._check_deployment(spec, dry_run),
        )

    async def create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        self.validate_deployment_name(spec.name)
        return await self._guard(
            "create deployment",
            self.config.timeouts.write,
            lambda: self._create_deployment(spec, ctx),
        )

    async def get_deployment(self, backend_ref: str) -> DeploymentInfo:
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        return await self._guard(
            "get deployment", self.config.timeouts.read, lambda: self._get_deployment(backend_ref)
        )

    async def update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        self._require_for_change(change)
        return await self._guard(
            "update deployment",
            self.config.timeouts.write,
            lambda: self._update_deployment(backend_ref, change, ctx),
        )

    async def delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        await self._guard(
            "delete deployment",
            self.config.timeouts.write,
            lambda: self._delete_deployment(backend_ref, ctx),
        )

    def _require_for_change(self, change: DeploymentChange) -> None:
        if change.values is not None or change.package is not None:
            self.require(Capability.DEPLOYMENT_UPDATE)
        if change.suspend is not None:
            self.require(Capability.SUSPEND)

    async def scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        self.require(Capability.SCALING)
        if replicas < 0:
            raise InvalidInput("replicas must be >= 0", details={"field": "replicas"})
        return await self._guard(
            "scale deployment",
            self.config.timeouts.write,
            lambda: self._scale_deployment(backend_ref, replicas, ctx),
        )

    async def check_update(self, backend_ref: str, change: DeploymentChange) -> None:
        """Refuse, before any operation exists, an update the backend cannot carry out
        (``Unsupported`` for a backend that cannot update, ``InvalidInput``); changes nothing."""
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        self._require_for_change(change)
        await self._guard(
            "check update",
            self.config.timeouts.read,
            lambda: self._check_update(backend_ref, change),
        )

    async def check_scale(self, backend_ref: str, replicas: int) -> None:
        """Refuse, before any operation exists, a scale the backend cannot carry out (e.g. a
        chart without a replica count). Raises ``InvalidInput``; changes nothing."""
        self.require(Capability.SCALING)
        if replicas < 0:
            raise InvalidInput("replicas must be >= 0", details={"field": "replicas"})
        await self._guard(
            "check scale",
            self.config.timeouts.read,
            lambda: self._check_scale(backend_ref, replicas),
        )

    async def rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        self.require(Capability.ROLLBACK)
        if revision < 0:
            raise InvalidInput("revision must be >= 0", details={"field": "revision"})
        return await self._guard(
            "rollback deployment",
            self.config.timeouts.write,
            lambda: self._rollback_deployment(backend_ref, revision, ctx),
        )

    async def get_history(self, backend_ref: str) -> list[RevisionEntry]:
        self.require(Capability.HISTORY)
        return await self._guard(
            "get history", self.config.timeouts.read, lambda: self._get_history(backend_ref)
        )

    async def preview_deployment(
        self, spec: DeploymentSpec, change: DeploymentChange | None = None
    ) -> Preview:
        """Render what ``create`` (or, with ``change``, ``update``) would apply; change nothing."""
        self.require(Capability.DRY_RUN)
        self.validate_deployment_name(spec.name)
        return await self._guard(
            "preview deployment",
            self.config.timeouts.read,
            lambda: self._preview_deployment(spec, change),
        )

    async def repair_deployment(
        self, backend_ref: str, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        """Bring the backend back to ``spec`` (the gateway's recorded package and values) after
        a change made outside the gateway (``POST …/reconcile``). The default applies them
        again as an update that replaces the values; an adapter whose backend has a better way
        (a forced sync) overrides ``_repair_deployment``."""
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        return await self._guard(
            "repair deployment",
            self.config.timeouts.write,
            lambda: self._repair_deployment(backend_ref, spec, ctx),
        )

    async def diff_deployment(self, backend_ref: str, revision: int) -> list[ResourceDiff]:
        """Desired (the manifests of ``revision``, the one the gateway recorded) vs live, one
        unified diff per resource (capability ``drift``)."""
        self.require(Capability.DRIFT)
        return await self._guard(
            "diff deployment",
            self.config.timeouts.read,
            lambda: self._diff_deployment(backend_ref, revision),
        )

    async def _diff_deployment(self, backend_ref: str, revision: int) -> list[ResourceDiff]:
        raise NotImplementedError("_diff_deployment")

    def watch_deployments(self) -> AsyncIterator[BackendChanges]:
        """Report which deployments may have changed, as the backend tells it (Kubernetes:
        list+watch with resourceVersion and bookmarks), so the reconciler reads only those.

        Optional: the default raises ``NotImplementedError`` and the reconciler polls
        ``get_deployment`` at its interval instead (``WATCHES`` says which applies). The
        iterator runs until cancelled; errors inside it are the adapter's to retry (a watch
        that restarts from a fresh list yields ``BackendChanges(resync=True)``)."""
        raise NotImplementedError("watch_deployments")

    #: True when the adapter implements :meth:`watch_deployments`.
    WATCHES: ClassVar[bool] = False

    #: True when the adapter implements :meth:`_get_deployments` (one backend call for many).
    BATCH_READS: ClassVar[bool] = False
    #: The most deployments one :meth:`_get_deployments` call is given (a poll round of more
    #: is split): raise it when the backend's list answers all of them anyway.
    BATCH_READ_SIZE: ClassVar[int] = 500

    def implementation_of(self, hook: str) -> Callable[..., Any]:
        """The function that carries out the protected hook ``hook`` (``"_rollback_deployment"``)
        for this instance: the class's own. An adapter that hands its hooks to a backend object
        chosen by configuration (ONAP) returns that object's, so the conformance kit checks
        that a declared capability is implemented where it really is."""
        func: Callable[..., Any] = getattr(type(self), hook)
        return func

    @property
    def watches(self) -> bool:
        """Whether this instance is watched (:meth:`watch_deployments`) rather than polled:
        the class's ``WATCHES`` unless the instance's backend decides (override)."""
        return self.WATCHES

    @property
    def batch_reads(self) -> bool:
        """Whether this instance reads a poll round in one backend call: the class's
        ``BATCH_READS`` unless the instance's backend decides (ONAP: SO yes, k8s plugin no)."""
        return self.BATCH_READS

    async def get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        """Many deployments at once (the reconciler's poll round): each ref's deployment, or
        the error its read met (``NotFound``: the backend no longer has it). With
        ``batch_reads`` one backend call; an error of that call (backend unreachable) is
        raised. Otherwise one :meth:`get_deployment` per ref."""
        self.require(Capability.DEPLOYMENT_LIFECYCLE)
        if self.batch_reads:
            return await self._guard(
                "get deployments",
                self.config.timeouts.read,
                lambda: self._get_deployments(backend_refs),
            )
        out: dict[str, DeploymentInfo | NetweaveError] = {}
        for ref in backend_refs:
            try:
                out[ref] = await self.get_deployment(ref)
            except NetweaveError as exc:
                out[ref] = exc
        return out

    async def _get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        raise NotImplementedError("_get_deployments")

    async def stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        """Yield log lines. Errors before the first line map like any other call."""
        self.require(Capability.LOGS)
        iterator = self._stream_logs(backend_ref, options).__aiter__()
        try:
            while True:
                try:
                    line = await asyncio.wait_for(
                        iterator.__anext__(),
                        None if options.follow else self.config.timeouts.read,
                    )
                except StopAsyncIteration:
                    return
                yield line
        except (NetweaveError, GeneratorExit):
            raise
        except Exception as exc:
            raise self._map_unexpected("stream logs", exc, self.config.timeouts.read) from exc

    # -- protected hooks: override these -------------------------------------------------

    async def _start(self) -> None:
        return None

    async def _stop(self) -> None:
        return None

    async def _health(self) -> AdapterHealth:
        return AdapterHealth(healthy=True)

    async def _list_packages_since(
        self, token: str | None, known_refs: Container[str]
    ) -> PackageListing:
        packages = [p for p in await self._list_packages() if p.backend_ref not in known_refs]
        return PackageListing(token=None, packages=packages, complete=True)

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

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        raise NotImplementedError("_delete_deployment")

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        raise NotImplementedError("_scale_deployment")

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        raise NotImplementedError("_rollback_deployment")

    async def _repair_deployment(
        self, backend_ref: str, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        change = DeploymentChange(
            values=dict(spec.values), package=spec.package, values_mode="replace"
        )
        return await self._update_deployment(backend_ref, change, ctx)

    async def _check_package(self, upload: PackageUpload) -> None:
        """Override to refuse a package up front; by default every package is attempted."""
        return None

    async def _check_deployment(self, spec: DeploymentSpec, dry_run: bool) -> None:
        """Override to refuse a deployment up front (a backend not configured for it); by
        default every deployment is attempted."""
        return None

    async def _check_update(self, backend_ref: str, change: DeploymentChange) -> None:
        """Override to refuse an update up front; by default every update is attempted."""
        return None

    async def _check_scale(self, backend_ref: str, replicas: int) -> None:
        """Override to refuse a scale up front; by default every scale is attempted."""
        return None

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        raise NotImplementedError("_get_history")

    async def _preview_deployment(
        self, spec: DeploymentSpec, change: DeploymentChange | None
    ) -> Preview:
        raise NotImplementedError("_preview_deployment")

    def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        raise NotImplementedError("_stream_logs")

    # -- the edge every call goes through ------------------------------------------------

    async def _guard(self, what: str, seconds: float, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await asyncio.wait_for(call(), seconds)
        except NetweaveError:
            raise
        except Exception as exc:
            raise self._map_unexpected(what, exc, seconds) from exc

    def _map_unexpected(self, what: str, exc: Exception, timeout: float) -> NetweaveError:
        if isinstance(exc, TimeoutError):
            return BackendTimeout(
                f"adapter {self.name!r}: {what} did not finish within {timeout:g} s",
                details={"adapter": self.name},
            )
        if isinstance(exc, NotImplementedError):
            hook = str(exc) or what
            return Unsupported(
                f"adapter {self.name!r} ({self.TYPE}) does not implement {hook}",
                details={"adapter": self.name, "hook": hook},
            )
        # A backend exception the adapter did not map: log it here, never show its type or
        # text to the client (it may carry URLs or credentials).
        _log.error(
            "adapter %s: unmapped %s during %s", self.name, type(exc).__name__, what, exc_info=exc
        )
        error = BackendError(
            f"adapter {self.name!r}: {what} failed in the backend",
            details={"adapter": self.name},
        )
        error.unmapped_exception_type = type(exc).__name__
        return error


def describe_capabilities(adapter: DMSAdapter | type[DMSAdapter]) -> list[str]:
    """An instance's capabilities, or a class's defaults, as sorted wire names."""
    declared = (
        adapter.capabilities if isinstance(adapter, DMSAdapter) else adapter.default_capabilities()
    )
    return sorted(c.value for c in declared)


__all__ = [
    "AdapterConfig",
    "ConfigSection",
    "ConfigT",
    "DMSAdapter",
    "Timeouts",
    "describe_capabilities",
    "with_parts",
]
