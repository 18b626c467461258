"""ETSI SOL005 VNF package management over the native package store (the ``vnfpkgm`` face).

One store, two faces:

- every native package (a chart uploaded or registered through ``/o2dms/v1``, or adopted from
  the backend) *is* a VNF package of the same id: ONBOARDED, ENABLED while the native state is
  AVAILABLE (DISABLED while DEPRECATED), IN_USE while deployments use it; its VNFD is generated
  from the chart (:mod:`netweave.packaging.vnfd`), ``vnfdId`` = its ``packageId``, the id the
  ``vnflcm`` face takes as ``vnfdId``;
- a VNF package created through ``POST /vnf_packages`` has a row of its own (CREATED);
  uploading a CSAR moves it UPLOADING → PROCESSING → ONBOARDED (the chart inside becomes a
  native package whose id is the VNFD's ``descriptor_id``) or ERROR (with the problem in
  ``onboardingFailureDetails``; nothing of the content is kept and it may be uploaded again);
- ``operationalState`` changes are native state changes (ENABLED ↔ AVAILABLE, DISABLED ↔
  DEPRECATED), so both faces always agree.

Content is processed while the upload request waits (the 202 then means ONBOARDED already, and
a refused package is a 4xx to that request, as well as ERROR on the resource). The CSAR is kept
under ``{data_dir}/vnf_packages`` (replicas must share the data directory, as they share a
local chart repository). For a native package the same routes read a CSAR the gateway builds
from the chart and its generated VNFD (``Definitions/vnfd.yaml``, the chart under
``Files/kubernetes/``, a manifest with SHA-256 digests): deterministic, so replicas build the
same bytes, and it can be onboarded as is by another NFVO.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from netweave.adapters import PackageUpload
from netweave.adapters.charts import (
    DEFAULT_LIMITS,
    ArchiveFacts,
    expands_too_much,
    forget_received,
    inspect_received,
    remember_received,
)
from netweave.config import FetchSettings
from netweave.config.registry import AdapterRegistry
from netweave.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    InUse,
    InvalidInput,
    NetweaveError,
    NotFound,
    Unprocessable,
)
from netweave.fetching import FetchPolicy, fetch_to_file
from netweave.models import DeploymentPackage, PackageState
from netweave.notifications import Notifications
from netweave.operations.events import HookBus
from netweave.packaging.csar import (
    CHART_DIR,
    CsarInfo,
    CsarLimits,
    CsarStream,
    chart_identity,
    inspect_csar,
)
from netweave.packaging.signatures import load_trust_anchors
from netweave.packaging.vnfd import Vnfd, generated_vnfd, to_sol001
from netweave.services.packages import Finish, PackageService
from netweave.services.vnflcm_notify import EtsiSubscriptions
from netweave.services.vnfpkgm_notify import pkgm_subscriptions
from netweave.store import PackageRecord, Store
from netweave.store.vnf import ColumnTerm
from netweave.store.vnfpkg import VnfPackageRecord

_log = logging.getLogger("netweave.vnfpkgm")
_PACKAGE_ID = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-")


class Onboarding:
    CREATED = "CREATED"
    UPLOADING = "UPLOADING"
    PROCESSING = "PROCESSING"
    ONBOARDED = "ONBOARDED"
    ERROR = "ERROR"


#: States from which content may be uploaded (SOL005: else 409).
UPLOADABLE = frozenset({Onboarding.CREATED, Onboarding.ERROR})
_GZIP = b"\x1f\x8b"
_ZIP = b"PK\x03\x04"
#: The fixed timestamp of every entry of a generated CSAR (the same bytes on every replica).
_EPOCH = (2000, 1, 1, 0, 0, 0)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class VnfPackageView:
    """A VNF package as the face shows it: its row (if any), its native package (once
    onboarded) and whether deployments use it."""

    vnf_pkg_id: str
    record: VnfPackageRecord | None
    package: PackageRecord | None
    in_use: bool
    created_at: datetime

    @property
    def onboarding_state(self) -> str:
        if self.record is not None:
            return self.record.onboarding_state
        return Onboarding.ONBOARDED

    @property
    def onboarded(self) -> bool:
        return self.onboarding_state == Onboarding.ONBOARDED and self.package is not None

    @property
    def operational_state(self) -> str:
        if self.onboarded and self.package is not None:
            return "DISABLED" if self.package.state == PackageState.DEPRECATED else "ENABLED"
        return "DISABLED"

    @property
    def usage_state(self) -> str:
        return "IN_USE" if self.onboarded and self.in_use else "NOT_IN_USE"

    @property
    def version(self) -> int:
        return self.record.version if self.record is not None else 0

    @property
    def etag(self) -> str:
        """Changes whenever the representation's stored parts do (row or native state)."""
        parts = [str(self.version), self.onboarding_state]
        if self.package is not None:
            parts += [self.package.state.value, self.package.updated_at.isoformat()]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    @property
    def is_csar(self) -> bool:
        return self.record is not None and (self.record.content or {}).get("kind") == "csar"


def _digest_file(path: Path) -> str:
    return _digest_handle(path.open("rb"))


def _digest_handle(handle: IO[bytes]) -> str:
    """The SHA-256 of what ``handle`` reads (it is closed)."""
    hasher = hashlib.sha256()
    with handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def _settle(pending: asyncio.Future[Any]) -> None:
    """A background result no one will use: its outcome is taken when it comes (not logged
    as never retrieved)."""
    pending.add_done_callback(lambda done: done.cancelled() or done.exception())


def _problem(exc: NetweaveError) -> dict[str, Any]:
    return {
        "status": exc.status,
        "title": exc.title,
        "detail": exc.message,
        "type": f"https://netweave.dev/problems/{exc.code}",
    }


@contextlib.asynccontextmanager
async def _as_bad_request() -> AsyncIterator[None]:
    """SOL005 declares no 422 for upload_from_uri: an address refused is a bad request."""
    try:
        yield
    except Unprocessable as exc:
        raise InvalidInput(exc.message, details=exc.details) from None


class VnfPkgmService:
    def __init__(
        self,
        store: Store,
        registry: AdapterRegistry,
        packages: PackageService,
        data_dir: Path,
        *,
        fetch: FetchSettings | None = None,
        max_upload_bytes: int = 1 << 30,
        limits: CsarLimits | None = None,
        hooks: HookBus | None = None,
        notifications: Notifications | None = None,
        test_callback: bool = True,
        trust_anchors: Sequence[Path] = (),
    ) -> None:
        self._store = store
        self._registry = registry
        self._packages = packages
        self._dir = data_dir / "vnf_packages"
        self._tmp = data_dir / "tmp"
        self._fetch = fetch
        self.max_upload_bytes = max_upload_bytes
        self.limits = limits or CsarLimits()
        #: The CA certificates a signed CSAR must chain to (vnfpkgm.trustAnchorFiles).
        self.anchors = load_trust_anchors(trust_anchors)
        #: Generated VNFDs by (package id, checksum): a pure function of the chart.
        self._vnfds: dict[tuple[str, str | None], Vnfd] = {}
        self._building: dict[str, asyncio.Lock] = {}
        #: SOL005 subscriptions; their notifier observes every change (None: no hook bus).
        self.subscriptions: EtsiSubscriptions | None = (
            pkgm_subscriptions(store, hooks, notifications, test_callback=test_callback)
            if hooks is not None
            else None
        )

    @property
    def tmp_dir(self) -> Path:
        return self._tmp

    # -- reads -------------------------------------------------------------------------------

    async def _view_of_record(self, record: VnfPackageRecord) -> VnfPackageView | None:
        package = None
        if record.package_id is not None:
            package = await self._store.get_package(record.package_id)
            if package is None and record.onboarding_state == Onboarding.ONBOARDED:
                # Its native package was deleted through /o2dms/v1: the VNF package went with it.
                await self._forget(record)
                return None
        in_use = bool(
            package is not None and await self._store.package_ids_in_use([package.package_id])
        )
        return VnfPackageView(record.vnf_pkg_id, record, package, in_use, record.created_at)

    async def get(self, vnf_pkg_id: str) -> VnfPackageView:
        record = await self._store.get_vnf_package(vnf_pkg_id)
        if record is not None:
            view = await self._view_of_record(record)
            if view is not None:
                return view
        else:
            package = await self._store.get_package(vnf_pkg_id)
            owner = await self._store.vnf_package_of(vnf_pkg_id) if package else None
            if package is not None and owner is None:
                in_use = bool(await self._store.package_ids_in_use([vnf_pkg_id]))
                return VnfPackageView(vnf_pkg_id, None, package, in_use, package.created_at)
        raise NotFound(f"VNF package {vnf_pkg_id!r} not found", details={"vnfPkgId": vnf_pkg_id})

    async def by_vnfd_id(self, vnfd_id: str) -> VnfPackageView:
        """The ONBOARDED VNF package whose VNFD is ``vnfd_id`` (SOL003's view): its native
        package has that id."""
        package = await self._store.get_package(vnfd_id)
        if package is not None:
            record = await self._store.vnf_package_of(vnfd_id)
            view = await self.get(record.vnf_pkg_id if record is not None else vnfd_id)
            if view.onboarded:
                return view
        raise NotFound(
            f"no onboarded VNF package has vnfdId {vnfd_id!r}", details={"vnfdId": vnfd_id}
        )

    async def page(
        self,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
    ) -> list[VnfPackageView]:
        """VNF packages in (created_at, id) order after ``after``, pre-filtered by ``where``
        (a superset: the face checks each exactly): the rows and the native packages without
        one, read a page at a time from the store (``VnfPackageStore.vnf_package_page``). A
        view with neither row nor package was deleted while being read."""
        if after is None:
            await self._packages.query(limit=1)  # adopt what the backends hold, as native lists do
        entries = await self._store.vnf_package_page(after=after, limit=limit, where=where)
        return [
            VnfPackageView(e.vnf_pkg_id, e.record, e.package, e.in_use, e.created_at)
            for e in entries
        ]

    async def vnfd(self, view: VnfPackageView) -> Vnfd:
        """The package's VNFD: read from its CSAR, or generated from its chart."""
        if view.record is not None and view.record.vnfd is not None:
            return Vnfd.from_json(view.record.vnfd)
        package = view.package
        if package is None:
            raise Conflict(
                f"VNF package {view.vnf_pkg_id} is {view.onboarding_state}: no VNFD yet",
                details={"onboardingState": view.onboarding_state},
            )
        key = (package.package_id, package.checksum)
        cached = self._vnfds.get(key)
        if cached is not None:
            return cached
        adapter = self._registry.owner(package.adapter)
        description = await adapter.describe_package(package.backend_ref)
        vnfd = generated_vnfd(
            package.package_id,
            package.name,
            package.version,
            description,
            provider=package.provider,
            app_version=package.extensions.get("appVersion"),
            summary=package.description,
        )
        if len(self._vnfds) >= 1024:
            self._vnfds.clear()  # bounded; a miss costs one more render
        self._vnfds[key] = vnfd
        return vnfd

    async def vnfd_aspects(
        self, package_id: str, flavour_id: str | None
    ) -> dict[str, dict[str, Any]]:
        """The ``vnflcm`` face's scale aspects the VNFD of native package ``package_id``
        declares for ``flavour_id`` (its first flavour when not one of its ids); empty when
        it declares none with a replica key, or when the VNFD cannot be had (a backend that
        cannot render it now): instantiate then keeps its default aspect."""
        vnfd = await self._vnfd_of(package_id)
        if vnfd is None:
            return {}
        known = {f.flavour_id for f in vnfd.flavours}
        return vnfd.scale_aspects(flavour_id if flavour_id in known else None)

    async def vnfd_default_level(self, package_id: str, flavour_id: str | None) -> dict[str, int]:
        """The aspects' levels of the default instantiation level the VNFD of native package
        ``package_id`` declares for ``flavour_id``; empty when it names none or the VNFD cannot
        be had (instantiate then starts each aspect at level 0, as without a VNFD)."""
        vnfd = await self._vnfd_of(package_id)
        return {} if vnfd is None else vnfd.default_level(flavour_id)

    async def vnfd_levels(
        self, package_id: str, flavour_id: str | None
    ) -> dict[str, dict[str, int]]:
        """The instantiation levels the VNFD of native package ``package_id`` declares for
        ``flavour_id`` (level id → aspect id → scale level); empty when it declares none.

        Unlike the aspects, a level asked for by name cannot fall back to a default: when the
        VNFD cannot be had the caller gets why (a 409 when the package is gone or its content
        cannot be read, a 503 when its backend failed to answer), never "no such level"."""
        package = await self._store.get_package(package_id)
        if package is None:
            raise Conflict(
                f"package {package_id!r} is not onboarded any more: its VNFD's instantiation "
                "levels are unknown",
                details={"vnfdId": package_id},
            )
        record = await self._store.vnf_package_of(package_id)
        view = VnfPackageView(
            record.vnf_pkg_id if record else package_id, record, package, False, package.created_at
        )
        try:
            vnfd = await self.vnfd(view)
        except NetweaveError as exc:
            message = (
                f"the VNFD of package {package_id} cannot be read ({exc.message}): its "
                "instantiation levels are unknown"
            )
            details = {"vnfdId": package_id, "cause": exc.code}
            if exc.status >= 500:
                raise BackendUnavailable(message, details=details) from None
            raise Conflict(message, details=details) from None
        return vnfd.instantiation_levels(flavour_id)

    async def _vnfd_of(self, package_id: str) -> Vnfd | None:
        record = await self._store.vnf_package_of(package_id)
        package = await self._store.get_package(package_id)
        if package is None:
            return None
        view = VnfPackageView(
            record.vnf_pkg_id if record else package_id, record, package, False, package.created_at
        )
        try:
            return await self.vnfd(view)
        except NetweaveError as exc:
            _log.warning("no VNFD for package %s (%s)", package_id, exc.message)
            return None

    async def csar(self, view: VnfPackageView) -> Path:
        """A CSAR file of the package: the one uploaded, or one built from its chart."""
        if not view.onboarded:
            raise Conflict(
                f"VNF package {view.vnf_pkg_id} is {view.onboarding_state}, not ONBOARDED",
                details={"onboardingState": view.onboarding_state},
            )
        if view.is_csar and view.record is not None:
            path = self._dir / str((view.record.content or {})["file"])
            if not await asyncio.to_thread(path.is_file):
                raise NotFound(
                    f"the content of VNF package {view.vnf_pkg_id} is missing from the data "
                    "directory",
                    details={"vnfPkgId": view.vnf_pkg_id},
                )
            return path
        assert view.package is not None
        return await self._built_csar(view.package)

    async def content(self, view: VnfPackageView) -> Path:
        """The package content as onboarded: a security-option-2 package's signed zip (the
        CSAR with its signature and certificate), else :meth:`csar`."""
        csar = await self.csar(view)
        signed = (view.record.content or {}).get("signedFile") if view.record else None
        if signed and view.is_csar:
            path = self._dir / str(signed)
            if not await asyncio.to_thread(path.is_file):
                raise NotFound(
                    f"the signed content of VNF package {view.vnf_pkg_id} is missing from the "
                    "data directory",
                    details={"vnfPkgId": view.vnf_pkg_id},
                )
            return path
        return csar

    async def _built_csar(self, package: PackageRecord) -> Path:
        digest = (package.checksum or "unknown").removeprefix("sha256:")[:16]
        target = self._dir / "built" / f"{package.package_id}-{digest}.csar"
        if await asyncio.to_thread(target.is_file):
            return target
        lock = self._building.setdefault(package.package_id, asyncio.Lock())
        async with lock:
            if await asyncio.to_thread(target.is_file):
                return target
            adapter = self._registry.owner(package.adapter)
            chart = await adapter.package_archive(package.backend_ref)
            if chart is None:
                raise NotFound(
                    f"adapter {package.adapter} keeps no archive of package "
                    f"{package.package_id}: there is no content to serve",
                    details={"packageId": package.package_id},
                )
            vnfd = await self.vnfd(
                VnfPackageView(package.package_id, None, package, False, package.created_at)
            )
            await asyncio.to_thread(_build_csar, target, vnfd, package, chart)
        return target

    # -- changes -----------------------------------------------------------------------------

    async def create(self, user_defined_data: dict[str, Any]) -> VnfPackageView:
        stamp = now()
        record = VnfPackageRecord(
            vnf_pkg_id=str(uuid.uuid4()),
            onboarding_state=Onboarding.CREATED,
            created_at=stamp,
            updated_at=stamp,
            user_defined_data=dict(user_defined_data),
        )
        await self._store.add_vnf_package(record)
        return VnfPackageView(record.vnf_pkg_id, record, None, False, stamp)

    async def modify(
        self,
        vnf_pkg_id: str,
        operational_state: str | None,
        user_defined_data: dict[str, Any] | None,
        expected_etag: str | None,
    ) -> VnfPackageView:
        """PATCH: a native state change for ``operationalState`` (409 before ONBOARDED or when
        already in that state, as SOL005 asks), ``userDefinedData`` merged (a null value
        deletes its key)."""
        view = await self.get(vnf_pkg_id)
        expected_version = None
        if expected_etag is not None:
            if expected_etag != view.etag:
                raise Conflict(
                    f"VNF package {vnf_pkg_id} has changed (ETag {view.etag})",
                    details={"etag": view.etag},
                )
            expected_version = view.version if view.record is not None else None
        if operational_state is not None:
            if not view.onboarded:
                raise Conflict(
                    f"VNF package {vnf_pkg_id} is {view.onboarding_state}: only an ONBOARDED "
                    "package can be enabled or disabled",
                    details={"onboardingState": view.onboarding_state},
                )
            if operational_state == view.operational_state:
                raise Conflict(
                    f"VNF package {vnf_pkg_id} is {operational_state} already",
                    details={"operationalState": operational_state},
                )
        record = view.record
        if user_defined_data is not None:
            merged = dict(record.user_defined_data if record is not None else {})
            for key, value in user_defined_data.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            if record is None:
                assert view.package is not None
                stamp = now()
                record = VnfPackageRecord(
                    vnf_pkg_id=vnf_pkg_id,
                    onboarding_state=Onboarding.ONBOARDED,
                    package_id=view.package.package_id,
                    created_at=view.package.created_at,
                    updated_at=stamp,
                    user_defined_data=merged,
                    content={"kind": "native"},
                )
                try:
                    await self._store.add_vnf_package(record)
                except AlreadyExists:
                    raise Conflict(
                        f"VNF package {vnf_pkg_id} changed meanwhile; read it again",
                        details={"vnfPkgId": vnf_pkg_id},
                    ) from None
            else:
                record = await self._store.update_vnf_package(
                    vnf_pkg_id,
                    expected_version=expected_version,
                    user_defined_data=merged,
                    updated_at=now(),
                )
        if operational_state is not None:
            assert view.package is not None
            state = (
                PackageState.AVAILABLE
                if operational_state == "ENABLED"
                else (PackageState.DEPRECATED)
            )
            await self._packages.set_state(view.package.package_id, state)
            if record is not None:
                record = await self._store.update_vnf_package(vnf_pkg_id, updated_at=now())
        return await self.get(vnf_pkg_id)

    async def delete(self, vnf_pkg_id: str) -> None:
        view = await self.get(vnf_pkg_id)
        if view.onboarding_state in {Onboarding.UPLOADING, Onboarding.PROCESSING}:
            raise Conflict(
                f"VNF package {vnf_pkg_id} is {view.onboarding_state}",
                details={"onboardingState": view.onboarding_state},
            )
        if view.onboarded:
            if view.operational_state == "ENABLED":
                raise Conflict(
                    f"VNF package {vnf_pkg_id} is ENABLED: disable it first",
                    details={"operationalState": "ENABLED"},
                )
            if view.usage_state == "IN_USE":
                raise InUse(
                    f"VNF package {vnf_pkg_id} is IN_USE by deployments",
                    details={"usageState": "IN_USE"},
                )
            assert view.package is not None
            await self._packages.delete(view.package.package_id)
        if view.record is not None:
            await self._forget(view.record)

    async def _forget(self, record: VnfPackageRecord) -> None:
        with contextlib.suppress(NotFound):
            await self._store.delete_vnf_package(record.vnf_pkg_id)
        for key in ("file", "signedFile"):
            name = (record.content or {}).get(key)
            if name:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread((self._dir / str(name)).unlink)

    async def upload_from_uri(
        self, vnf_pkg_id: str, uri: str, username: str | None, password: str | None
    ) -> VnfPackageView:
        """Fetch the content through core's fetch policy (SSRF rules), then onboard it."""
        if username is not None or password is not None:
            raise InvalidInput(
                "userName/password are not supported: give a URI the gateway can read",
                details={"field": "userName"},
            )
        view = await self.get(vnf_pkg_id)
        self._uploadable(view)
        policy = FetchPolicy.from_settings(self._fetch)
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="vnfpkg-", suffix=".bin", dir=self._tmp)
        os.close(fd)
        target = Path(name)
        try:
            # An address the policy refuses changes nothing; the fetch itself (checked again
            # at each connection) is the upload: UPLOADING, ERROR if it fails.
            async with _as_bad_request():
                await policy.check(uri, field="addressInformation")
            async with self.receiving(vnf_pkg_id), _as_bad_request():
                await fetch_to_file(
                    policy,
                    uri,
                    target,
                    limit=self.max_upload_bytes,
                    timeout=60.0,
                    field="addressInformation",
                )
            return await self.upload(vnf_pkg_id, target, received=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()  # noqa: ASYNC240  (one cheap syscall)

    def _uploadable(self, view: VnfPackageView) -> None:
        if view.record is None or view.onboarding_state not in UPLOADABLE:
            raise Conflict(
                f"VNF package {view.vnf_pkg_id} is {view.onboarding_state}: content can be "
                "uploaded only in CREATED or ERROR",
                details={"onboardingState": view.onboarding_state},
            )

    async def _mark_uploading(self, vnf_pkg_id: str) -> None:
        """CREATED (or ERROR) → UPLOADING, refused (409) in any other state."""
        self._uploadable(await self.get(vnf_pkg_id))
        await self._store.update_vnf_package(
            vnf_pkg_id,
            expected_state=UPLOADABLE,
            onboarding_state=Onboarding.UPLOADING,
            onboarding_failure=None,
            updated_at=now(),
        )

    @contextlib.asynccontextmanager
    async def receiving(self, vnf_pkg_id: str) -> AsyncIterator[None]:
        """The package is UPLOADING while its content arrives (SOL005: being uploaded), so a
        second upload or a DELETE meanwhile is a 409; a transfer that fails leaves it ERROR
        with the problem it was answered with, as a refused content does. Then
        ``upload(..., received=True)``."""
        await self._mark_uploading(vnf_pkg_id)
        try:
            yield
        except BaseException as exc:
            failure = (
                _problem(exc)
                if isinstance(exc, NetweaveError)
                else {"status": 500, "detail": "the upload was interrupted"}
            )
            with contextlib.suppress(Exception):
                await self._store.update_vnf_package(
                    vnf_pkg_id,
                    expected_state=frozenset({Onboarding.UPLOADING}),
                    onboarding_state=Onboarding.ERROR,
                    onboarding_failure=failure,
                    updated_at=now(),
                )
            raise

    def stream_csar(self, upload: Path) -> CsarStream:
        """Start taking the chart out of a CSAR while it is written to ``upload`` (see
        :class:`CsarStream`; handed to :meth:`upload`, which ends it, or abandoned)."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="csar-stream-", suffix=".tgz", dir=self._tmp)
        os.close(fd)
        return CsarStream(upload, Path(name), self.limits, _inspect_chart)

    async def upload(
        self,
        vnf_pkg_id: str,
        content: Path,
        sha256: str | None = None,
        *,
        received: bool = False,
        stream: CsarStream | None = None,
    ) -> VnfPackageView:
        """Onboard ``content`` (a CSAR zip, or a bare chart .tgz) into the package; ``sha256``:
        its digest when the caller computed it while receiving it; ``received``: it arrived
        inside :meth:`receiving` (the package is UPLOADING); ``stream``: the
        :meth:`stream_csar` that followed it as it arrived (ended here in any case). The file
        may be moved into the package store (the caller removes it if still there). A refusal
        leaves the package ERROR with the problem, nothing of the content stored, and is
        raised."""
        try:
            return await self._upload(vnf_pkg_id, content, sha256, received, stream)
        finally:
            if stream is not None:
                await asyncio.to_thread(stream.abandon)

    async def _upload(
        self,
        vnf_pkg_id: str,
        content: Path,
        sha256: str | None,
        received: bool,
        stream: CsarStream | None,
    ) -> VnfPackageView:
        if not received:
            await self._mark_uploading(vnf_pkg_id)
        try:
            await self._store.update_vnf_package(
                vnf_pkg_id,
                expected_state=frozenset({Onboarding.UPLOADING}),
                onboarding_state=Onboarding.PROCESSING,
                updated_at=now(),
            )
            await self._process(vnf_pkg_id, content, sha256, stream)
        except NetweaveError as exc:
            await self._store.update_vnf_package(
                vnf_pkg_id,
                onboarding_state=Onboarding.ERROR,
                onboarding_failure=_problem(exc),
                package_id=None,
                vnfd=None,
                content=None,
                updated_at=now(),
            )
            raise
        except BaseException:
            # Cancelled or crashed mid-way: not left PROCESSING for ever.
            with contextlib.suppress(Exception):
                await self._store.update_vnf_package(
                    vnf_pkg_id,
                    onboarding_state=Onboarding.ERROR,
                    onboarding_failure={"status": 500, "detail": "onboarding was interrupted"},
                    updated_at=now(),
                )
            raise
        return await self.get(vnf_pkg_id)

    def _onboarded(
        self,
        vnf_pkg_id: str,
        changes: dict[str, Any],
        content_sha256: asyncio.Future[str] | None = None,
    ) -> Finish:
        """The native onboarding's last step, in its transaction: the VNF package becomes
        ONBOARDED with the package it names, so the change's observers (the SOL005 notifier)
        see the VNF package, and a failure leaves neither. ``content_sha256``: the content's
        digest still being computed (its ``content.checksum``)."""

        async def finish(wire: DeploymentPackage, _warnings: tuple[str, ...]) -> None:
            recorded = changes
            if content_sha256 is not None:
                checksum = {"algorithm": "SHA-256", "hash": await content_sha256}
                recorded = {**changes, "content": {**changes["content"], "checksum": checksum}}
            await self._store.update_vnf_package(
                vnf_pkg_id,
                onboarding_state=Onboarding.ONBOARDED,
                updated_at=now(),
                **{"package_id": wire.package_id, **recorded},
            )

        return finish

    async def _process(
        self, vnf_pkg_id: str, content: Path, sha256: str | None, stream: CsarStream | None
    ) -> None:
        magic = await asyncio.to_thread(_magic, content)
        if magic.startswith(_GZIP):
            await self._onboard_chart(vnf_pkg_id, content)
            return
        if not magic.startswith(_ZIP):
            raise InvalidInput(
                "the package content is neither a CSAR (zip) nor a Helm chart (.tgz)",
                details={"field": "package"},
            )
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        fd, chart_name = tempfile.mkstemp(prefix="csar-chart-", suffix=".tgz", dir=self._tmp)
        os.close(fd)
        chart = Path(chart_name)
        # Security option 2: the CSAR inside the signed zip, written out while its signature's
        # digest is computed.
        inner = chart.with_name(chart.name.removesuffix(".tgz") + "-inner.csar")
        try:
            # The chart is written out while its digest is checked: one pass over it, which
            # the chart's own inspection follows on the other core (_inspect_chart).
            # Taken out while the CSAR arrived, when it could be (then used as the entry the
            # central directory names, if it is that entry).
            streamed = await asyncio.to_thread(stream.result) if stream is not None else None
            info = await asyncio.to_thread(
                inspect_csar,
                content,
                self.limits,
                chart,
                self.anchors,
                inner,
                _inspect_chart,
                streamed,
            )
            await self._onboard_csar(vnf_pkg_id, content, sha256, info, chart, inner)
        finally:
            for leftover in (chart, inner):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    async def _onboard_csar(
        self,
        vnf_pkg_id: str,
        content: Path,
        sha256: str | None,
        info: CsarInfo,
        chart: Path,
        inner: Path,
    ) -> None:
        vnfd_id = info.vnfd.vnfd_id
        if len(vnfd_id) > 300 or not set(vnfd_id) <= _PACKAGE_ID or not vnfd_id[0].isalnum():
            raise InvalidInput(
                f"the VNFD's descriptor_id {vnfd_id!r} cannot name a package here (letters, "
                "digits, '.', '_', '+', '-', at most 300)",
                details={"field": "vnfd", "property": "descriptor_id"},
            )
        if await self._store.get_package(vnfd_id) is not None:
            raise Conflict(
                f"a package with vnfdId {vnfd_id} is onboarded already",
                details={"vnfdId": vnfd_id},
            )
        await asyncio.to_thread(self._dir.mkdir, parents=True, exist_ok=True)
        stored = self._dir / f"{vnf_pkg_id}.csar"
        size = await asyncio.to_thread(lambda: content.stat().st_size)
        # The manifest's SHA-256 of the chart was checked against its bytes: no second pass.
        listed = next((a for a in info.artifacts if a.path == info.chart), None)
        chart_sha = listed.hash if listed is not None and listed.algorithm == "SHA-256" else None
        checksum = f"sha256:{chart_sha or await asyncio.to_thread(_digest_file, chart)}"
        chart_size = chart.stat().st_size  # noqa: ASYNC240  (one cheap syscall)
        facts = _chart_facts(info.chart_followed, chart_size)
        identity = _identity(facts) if facts is not None else None
        if identity is None:
            identity = await asyncio.to_thread(chart_identity, chart, self.limits)
        name, version = identity
        content_sha256: asyncio.Future[str] | None = None
        if sha256 is None:
            # The CSAR's own digest (its package checksum), read on another core while the
            # adapter checks the chart in its child process (~0.06 s of CPU per 100 MB taken
            # off the receiving), when that check outlasts it: the chart is most of the CSAR.
            # Opened here, before the file is moved into the store.
            handle = await asyncio.to_thread(lambda: content.open("rb"))
            content_sha256 = asyncio.ensure_future(asyncio.to_thread(_digest_handle, handle))
            if 2 * chart_size < size:
                sha256, content_sha256 = await content_sha256, None
        upload = PackageUpload(
            name=name,
            version=version,
            package_type="helm",
            description=info.vnfd.description or None,
            provider=info.vnfd.provider,
            archive=chart,
            archive_size=chart_size,
            checksum=checksum,
        )
        changes = {
            "vnfd": info.vnfd.to_json(),
            "content": {
                "kind": "csar",
                "file": stored.name,
                "size": size,
                **({"checksum": {"algorithm": "SHA-256", "hash": sha256}} if sha256 else {}),
                "layout": info.layout,
                "entryDefinitions": info.entry_definitions,
                "manifest": info.manifest,
                "vnfdFiles": info.vnfd_files,
                "chart": info.chart,
                "artifacts": [a.to_json() for a in info.artifacts],
                "compatibleSpecificationVersions": info.compatible_versions,
                "signed": info.signed,
                "signer": info.signer,
                "certificate": info.certificate,
                "securityOption": info.security_option,
            },
        }
        kept = [stored]
        if info.security_option == "OPTION_2":
            # The inner CSAR is what the artifact, VNFD and manifest routes read; the signed
            # zip as uploaded is what package_content serves.
            signed = self._dir / f"{vnf_pkg_id}.signed.zip"
            changes["content"] |= {"signedFile": signed.name, "signedCsar": info.signed_csar}
            await asyncio.to_thread(_keep, inner, stored)
            await asyncio.to_thread(_keep, content, signed)
            kept.append(signed)
        else:
            # The CSAR is kept first (moved when on the same file system): if storing the
            # native package fails, it is removed.
            await asyncio.to_thread(_keep, content, stored)
        if facts is not None:
            # The chart's bytes passed the inspection the adapter would run (default limits)
            # and are those its checksum names (the digest was checked): it takes this result.
            remember_received(checksum, facts, DEFAULT_LIMITS)
        try:
            finish = self._onboarded(vnf_pkg_id, changes, content_sha256)
            await self._packages.onboard(upload, None, package_id=vnfd_id, finish=finish)
        except BaseException:
            for path in kept:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            raise
        finally:
            if facts is not None:
                forget_received(checksum)
            if content_sha256 is not None:
                _settle(content_sha256)

    async def _onboard_chart(self, vnf_pkg_id: str, content: Path) -> None:
        """A bare chart sent as the package content: a native package like an upload to
        /o2dms/v1, its VNFD generated."""
        name, version = await asyncio.to_thread(chart_identity, content, self.limits)
        upload = PackageUpload(
            name=name,
            version=version,
            package_type="helm",
            archive=content,
            archive_size=content.stat().st_size,  # noqa: ASYNC240  (one cheap syscall)
            checksum=f"sha256:{await asyncio.to_thread(_digest_file, content)}",
        )
        await self._packages.onboard(
            upload, None, finish=self._onboarded(vnf_pkg_id, {"content": {"kind": "chart"}})
        )

    async def in_use(self, package_ids: Sequence[str]) -> set[str]:
        return await self._store.package_ids_in_use(package_ids)


def _inspect_chart(raw: IO[bytes], size: int) -> tuple[ArchiveFacts, int] | None:
    """The chart archive's inspection (the adapter's, default limits) while the chart leaves
    the CSAR; None when it refuses (the adapter inspects it again and says why)."""
    try:
        return inspect_received(raw, size, DEFAULT_LIMITS)
    except InvalidInput:
        return None


def _chart_facts(followed: object, size: int) -> ArchiveFacts | None:
    """The facts :func:`_inspect_chart` found, when it passed (bomb rule with the real size)."""
    if not isinstance(followed, tuple):
        return None
    facts, decompressed = followed
    if not isinstance(facts, ArchiveFacts) or expands_too_much(decompressed, size, DEFAULT_LIMITS):
        return None
    return dataclasses.replace(facts, compressed_bytes=size)


def _identity(facts: ArchiveFacts) -> tuple[str, str] | None:
    name, version = facts.chart_yaml.get("name"), facts.chart_yaml.get("version")
    if isinstance(name, str) and isinstance(version, str | int | float):
        return name, str(version)
    return None


def _keep(content: Path, stored: Path) -> None:
    try:
        os.replace(content, stored)
    except OSError:  # another file system: copy
        shutil.copyfile(content, stored)


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def _build_csar(target: Path, vnfd: Vnfd, package: PackageRecord, chart: Path) -> None:
    """A SOL004 CSAR (TOSCA-Metadata layout) of a native package: deterministic bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    definitions = "Definitions/vnfd.yaml"
    chart_name = f"{CHART_DIR}{package.name}-{package.version}.tgz"
    vnfd_text = to_sol001(vnfd).encode()
    meta = (
        "TOSCA-Meta-File-Version: 1.0\n"
        "CSAR-Version: 1.1\n"
        "Created-By: netweave\n"
        f"Entry-Definitions: {definitions}\n"
        "ETSI-Entry-Manifest: vnfd.mf\n"
    ).encode()
    chart_digest = _digest_file(chart)
    manifest = (
        "metadata:\n"
        f"vnf_provider_id: {vnfd.provider}\n"
        f"vnf_product_name: {vnfd.product_name}\n"
        f"vnf_release_date_time: {package.created_at.strftime('%Y-%m-%dT%H:%M:%S+00:00')}\n"
        f"vnf_package_version: {vnfd.vnfd_version}\n"
        "compatible_specification_versions: 4.3.1\n"
        "\n"
        f"Source: {definitions}\nAlgorithm: SHA-256\n"
        f"Hash: {hashlib.sha256(vnfd_text).hexdigest()}\n"
        "\n"
        f"Source: {chart_name}\nAlgorithm: SHA-256\nHash: {chart_digest}\n"
    ).encode()
    fd, name = tempfile.mkstemp(prefix=".building-", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for entry, data in (
                ("TOSCA-Metadata/TOSCA.meta", meta),
                ("vnfd.mf", manifest),
                (definitions, vnfd_text),
            ):
                out.writestr(zipfile.ZipInfo(entry, _EPOCH), data)
            info = zipfile.ZipInfo(chart_name, _EPOCH)
            info.compress_type = zipfile.ZIP_STORED  # already compressed
            with chart.open("rb") as source, out.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        partial.replace(target)  # atomic: a reader never sees a half-built file
    finally:
        partial.unlink(missing_ok=True)


__all__ = ["UPLOADABLE", "Onboarding", "VnfPackageView", "VnfPkgmService"]
