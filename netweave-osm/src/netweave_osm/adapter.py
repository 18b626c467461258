"""``OsmAdapter``: packages and NS instances through ETSI OSM's northbound interface (NBI).

- Packages: VNF packages (``vnfd``, including Helm-based KNFs whose KDUs are charts) and NS
  descriptors (``nsd``) onboarded through ``…_packages_content`` / ``ns_descriptors_content``.
  ``backend_ref`` is ``vnfd:<osm _id>`` or ``nsd:<osm _id>``.
- Deployments: an NS instance of an ``nsd`` package (``backend_ref`` = the NS instance id),
  created and instantiated in one ``ns_instances_content`` call; every change is an NS LCM
  operation occurrence the adapter follows until it is terminal. Helm values go to the KDUs
  (``additionalParamsForKdu`` at instantiation, the ``upgrade`` primitive afterwards), rollback
  is the KDU ``rollback`` primitive (previous revision only), scale is the KDU values'
  replica key, or the descriptor's scaling aspect for VNFs without KDUs.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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
from netweave.adapters.idempotency import idempotency_stamp
from netweave.adapters.polling import poll_until
from netweave.adapters.times import parse_time as _timestamp
from netweave.adapters.values import merge_values as _deep_merge
from netweave.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import ResourceStatus, RevisionEntry

from netweave_osm.config import OsmConfig
from netweave_osm.descriptors import (
    Kdu,
    ScalingAspect,
    descriptor_name,
    descriptor_version,
    inspect_archive,
    member_vnfs,
    package_extensions,
    vnfd_kdus,
    vnfd_scaling_aspects,
)
from netweave_osm.nbi import NbiClient
from netweave_osm.status import (
    OP_PROCESSING,
    SUCCESS_OP_STATES,
    TERMINAL_OP_STATES,
    deployment_status,
    kdu_readiness,
)

_COLLECTIONS = {
    "vnfd": "/vnfpkgm/v1/vnf_packages_content",
    "nsd": "/nsd/v1/ns_descriptors_content",
}
_NS = "/nslcm/v1/ns_instances_content"
_OPS = "/nslcm/v1/ns_lcm_op_occs"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REF = re.compile(r"^(vnfd|nsd):([A-Za-z0-9._-]{1,128})$")
#: NS instance ids are uuids; anything else cannot name one (and must not reach a URL path).
_NS_REF = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
#: Marker in ``nsDescription`` that ties an NS instance to a gateway operation step.
_KEY_MARKER = "netweave-key:"
_log = logging.getLogger("netweave_osm")
_CHUNK = 1 << 16
#: NS descriptors looked at when finding the package an upgraded NS runs now.
_MAX_PACKAGE_CANDIDATES = 50
#: NS instance ids per filtered operations list of a poll round (bounds the URL's length).
_OPS_FILTER_IDS = 100


class _FileChunks:
    """An upload body that can be sent again (httpx re-reads it when the token flow retries)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def __aiter__(self) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)


@dataclass(slots=True)
class _Layout:
    """What an NS is made of, read from its NSD and VNFDs."""

    nsd: dict[str, Any]
    kdus: list[Kdu] = field(default_factory=list)
    aspects: list[ScalingAspect] = field(default_factory=list)

    @property
    def version(self) -> str:
        return descriptor_version(self.nsd)

    def kdu_label(self, kdu: Kdu) -> str:
        """How values name a KDU: its name, or ``member/name`` when names repeat."""
        if sum(1 for k in self.kdus if k.name == kdu.name) > 1:
            return kdu.key
        return kdu.name


def _parse_package_ref(ref: str) -> tuple[str, str]:
    found = _REF.match(ref)
    if found is None:
        raise NotFound(f"no OSM package {ref!r} (references look like 'nsd:<id>' or 'vnfd:<id>')")
    return found.group(1), found.group(2)


def _check_ns_ref(ref: str) -> None:
    if not _NS_REF.match(ref):
        raise NotFound(f"no OSM NS instance {ref!r} (references are NS instance ids)")


def _set_path(values: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(values)
    node = result
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value
    return result


def _op_params(op: dict[str, Any]) -> dict[str, Any]:
    params = op.get("operationParams")
    return params if isinstance(params, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _op_text(op: dict[str, Any]) -> str:
    for key in ("errorMessage", "detailed-status"):
        value = op.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:500]
    return str(op.get("operationState"))


class OsmAdapter(DMSAdapter[OsmConfig]):
    TYPE: ClassVar[str] = "osm"
    DISTRIBUTION: ClassVar[str] = "netweave-osm"
    DESCRIPTION: ClassVar[str] = "ETSI OSM NBI: VNF/NS packages, NS instances and Helm KDUs"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PACKAGE_MANAGEMENT,
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.SCALING,
            Capability.ROLLBACK,
            Capability.HISTORY,
        }
    )
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({"vnfd", "nsd"})

    def __init__(
        self,
        name: str,
        config: OsmConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(name, config, data_dir=data_dir)
        self._transport = transport
        self._nbi_client: NbiClient | None = None
        self._vim_account_id: str | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def _nbi(self) -> NbiClient:
        if self._nbi_client is None:
            self._nbi_client = NbiClient(
                self.config.api_root(),
                username=self.config.username,
                password=self.config.password,
                project=self.config.project,
                settings=self.config.http,
                renew_margin=self.config.token_renew_margin,
                transport=self._transport,
            )
        return self._nbi_client

    async def _start(self) -> None:
        # Creating the client touches no network: an unreachable NBI shows in health().
        _ = self._nbi

    async def _stop(self) -> None:
        if self._nbi_client is not None:
            client, self._nbi_client = self._nbi_client, None
            await client.aclose()

    async def _health(self) -> AdapterHealth:
        vim_id = await self._vim_account()
        vim = await self._nbi.get(f"/admin/v1/vim_accounts/{vim_id}")
        admin = vim.get("_admin") if isinstance(vim, dict) else None
        state = admin.get("operationalState") if isinstance(admin, dict) else None
        clusters = await self._nbi.get("/admin/v1/k8sclusters", params={"vim_account": vim_id})
        names = [
            str(c.get("name"))
            for c in clusters or []
            if isinstance(c, dict) and c.get("vim_account") == vim_id
        ]
        details: dict[str, Any] = {
            "vimAccountId": vim_id,
            "vimOperationalState": state,
            "k8sClusters": names,
        }
        if state not in (None, "ENABLED"):
            return AdapterHealth(
                healthy=False, message=f"OSM VIM account is {state}", details=details
            )
        if not names:
            # VM-based NSs still work; KNFs (Helm KDUs) need a cluster on this VIM account.
            return AdapterHealth(
                healthy=True,
                message="no K8s cluster is attached to the VIM account: Helm-based KNFs "
                "cannot be instantiated",
                details=details,
            )
        return AdapterHealth(healthy=True, details=details)

    async def _vim_account(self) -> str:
        if self._vim_account_id is not None:
            return self._vim_account_id
        wanted = self.config.vim_account
        if _UUID.match(wanted):
            self._vim_account_id = wanted
            return wanted
        found = await self._nbi.get("/admin/v1/vim_accounts", params={"name": wanted})
        ids = [v["_id"] for v in found or [] if isinstance(v, dict) and v.get("name") == wanted]
        if len(ids) != 1:
            raise BackendError(
                f"OSM has {len(ids)} VIM accounts named {wanted!r}; set vimAccount to one "
                "VIM account's name or id",
                details={"backend": "osm", "vimAccount": wanted},
            )
        self._vim_account_id = str(ids[0])
        return self._vim_account_id

    # -- packages ------------------------------------------------------------------------

    def _package_info(self, kind: str, record: dict[str, Any]) -> PackageInfo:
        admin = record.get("_admin") if isinstance(record.get("_admin"), dict) else {}
        assert isinstance(admin, dict)
        storage = admin.get("storage") if isinstance(admin.get("storage"), dict) else {}
        assert isinstance(storage, dict)
        checksum = storage.get("pkg-md5") or admin.get("pkg-md5")
        return PackageInfo(
            backend_ref=f"{kind}:{record['_id']}",
            name=descriptor_name(record),
            version=descriptor_version(record),
            package_type=kind,
            checksum=f"md5:{checksum}" if isinstance(checksum, str) else None,
            description=record.get("description")
            if isinstance(record.get("description"), str)
            else None,
            provider=next(
                (record[k] for k in ("provider", "designer") if isinstance(record.get(k), str)),
                None,
            ),
            extensions=package_extensions(kind, record),
        )

    async def _list_packages(self) -> list[PackageInfo]:
        packages: list[PackageInfo] = []
        for kind, collection in _COLLECTIONS.items():
            records = await self._nbi.get(collection)
            packages.extend(
                self._package_info(kind, r) for r in records or [] if isinstance(r, dict)
            )
        return packages

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        kind, osm_id = _parse_package_ref(backend_ref)
        record = await self._nbi.get(f"{_COLLECTIONS[kind]}/{osm_id}")
        return self._package_info(kind, record)

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        if upload.archive is None:
            raise InvalidInput(
                "OSM onboards package archives only; upload the .tar.gz or .zip package",
                details={"field": "packageUri"},
            )
        facts = await asyncio.to_thread(inspect_archive, upload.archive, upload.package_type)
        created = await self._nbi.upload(
            _COLLECTIONS[facts.package_type],
            _FileChunks(upload.archive),
            content_type=facts.content_type,
            filename=facts.filename,
            md5=facts.md5,
        )
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise BackendError("OSM NBI answered the package upload without an id")
        info = await self._get_package(f"{facts.package_type}:{created['id']}")
        warnings = []
        if info.name != upload.name or info.version != upload.version:
            warnings.append(
                f"OSM names the package after its descriptor: {info.name} {info.version} "
                f"(uploaded as {upload.name} {upload.version})"
            )
        if info.extensions.get("kdus") and not info.extensions.get("helmBased"):
            warnings.append("some KDUs are juju bundles: values, upgrade and rollback need Helm")
        if not warnings:
            return info
        return PackageInfo(
            backend_ref=info.backend_ref,
            name=info.name,
            version=info.version,
            package_type=info.package_type,
            checksum=info.checksum,
            description=info.description,
            provider=info.provider,
            extensions=info.extensions,
            warnings=tuple(warnings),
        )

    async def _delete_package(self, backend_ref: str) -> None:
        kind, osm_id = _parse_package_ref(backend_ref)
        await self._nbi.delete(f"{_COLLECTIONS[kind]}/{osm_id}")

    # -- what an NS is made of -----------------------------------------------------------

    async def _layout(self, nsd_id: str) -> _Layout:
        return await self._layout_of(await self._nbi.get(f"{_COLLECTIONS['nsd']}/{nsd_id}"))

    async def _layout_of(self, nsd: dict[str, Any]) -> _Layout:
        layout = _Layout(nsd=nsd)
        vnfds: dict[str, dict[str, Any]] = {}
        for member, vnfd_id in member_vnfs(nsd):
            if vnfd_id not in vnfds:
                found = await self._nbi.get(_COLLECTIONS["vnfd"], params={"id": vnfd_id})
                matches = [v for v in found or [] if isinstance(v, dict) and v.get("id") == vnfd_id]
                if not matches:
                    raise BackendError(
                        f"OSM has no VNF package {vnfd_id!r} that NS descriptor "
                        f"{nsd.get('id')!r} references",
                        details={"backend": "osm"},
                    )
                vnfds[vnfd_id] = matches[0]
            vnfd = vnfds[vnfd_id]
            for name, chart, bundle in vnfd_kdus(vnfd):
                layout.kdus.append(Kdu(member, vnfd_id, name, chart, bundle))
            for aspect, level in vnfd_scaling_aspects(vnfd):
                layout.aspects.append(ScalingAspect(member, vnfd_id, aspect, level))
        return layout

    def _split_values(self, layout: _Layout, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Gateway values → Helm values per KDU (key ``member/kdu``).

        One KDU: the values are its Helm values. Several: the values are keyed by KDU name
        (``member-vnf-index/name`` when names repeat).
        """
        if len(layout.kdus) == 1:
            return {layout.kdus[0].key: dict(values)}
        by_label = {layout.kdu_label(k): k for k in layout.kdus}
        by_key = {k.key: k for k in layout.kdus}
        split: dict[str, dict[str, Any]] = {}
        for label, kdu_values in values.items():
            kdu = by_label.get(label) or by_key.get(label)
            if kdu is None or not isinstance(kdu_values, dict):
                raise InvalidInput(
                    f"this NS has several KDUs {sorted(by_label)}: values must be an object "
                    f"keyed by KDU name, and {label!r} is not one",
                    details={"field": "values"},
                )
            split[kdu.key] = dict(kdu_values)
        return split

    def _join_values(
        self, layout: _Layout, per_kdu: dict[str, dict[str, Any]], ns_values: dict[str, Any]
    ) -> dict[str, Any]:
        if not layout.kdus:
            return ns_values
        if len(layout.kdus) == 1:
            return per_kdu.get(layout.kdus[0].key, {})
        return {layout.kdu_label(k): per_kdu.get(k.key, {}) for k in layout.kdus}

    # -- deployments ---------------------------------------------------------------------

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        kind, nsd_id = _parse_package_ref(spec.package.backend_ref)
        if kind != "nsd":
            raise InvalidInput(
                "OSM deploys NS descriptors: deploy the nsd package that references this VNF "
                "package",
                details={"field": "packageId"},
            )
        # Core's label-safe stamp, not the key itself (free text, but one encoding everywhere).
        marker = f"{_KEY_MARKER}{idempotency_stamp(ctx.idempotency_key)}"
        existing = await self._find_ns(spec.name, marker)
        if existing is not None:
            done = await self._resume_create(existing)
            if done is not None:
                return done
        layout = await self._layout(nsd_id)
        body: dict[str, Any] = {
            "nsName": spec.name,
            "nsdId": nsd_id,
            "vimAccountId": await self._vim_account(),
            "nsDescription": f"netweave deployment {spec.deployment_id} ({marker})",
            "k8s-namespace": spec.namespace,
        }
        body.update(self._instantiate_values(layout, spec.values, spec.namespace))
        created, _ = await self._nbi.post(_NS, body, expected=(201,))
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise BackendError("OSM NBI answered the NS creation without an id")
        ns_id = created["id"]
        op_id = created.get("nslcmop_id")
        if isinstance(op_id, str):
            op = await self._wait(op_id)
            if op.get("operationState") not in SUCCESS_OP_STATES:
                await self._discard_failed(ns_id, op)
        return await self._get_deployment(ns_id)

    async def _discard_failed(self, ns_id: str, op: dict[str, Any]) -> None:
        """Remove an NS whose instantiation failed, then raise the failure.

        The gateway records no deployment for a failed create, so an NS left behind would be
        orphaned in OSM (like ``helm install --atomic``). A retry of the same operation would
        find and remove it too, should this cleanup fail.
        """
        try:
            await self._remove_ns(ns_id)
        except NetweaveError as exc:
            _log.warning("OSM: could not remove failed NS %s: %s", ns_id, exc.message)
        self._check(op, ns_id, "instantiation")

    def _instantiate_values(
        self, layout: _Layout, values: dict[str, Any], namespace: str
    ) -> dict[str, Any]:
        if not layout.kdus:
            return {"additionalParamsForNs": dict(values)} if values else {}
        per_kdu = self._split_values(layout, values)
        members: dict[str, list[dict[str, Any]]] = {}
        for kdu in layout.kdus:
            entry: dict[str, Any] = {"kdu_name": kdu.name, "k8s-namespace": namespace}
            if kdu.key in per_kdu:
                entry["additionalParams"] = per_kdu[kdu.key]
            members.setdefault(kdu.member_vnf_index, []).append(entry)
        return {
            "additionalParamsForVnf": [
                {"member-vnf-index": member, "additionalParamsForKdu": entries}
                for member, entries in members.items()
            ]
        }

    async def _find_ns(self, name: str, marker: str) -> dict[str, Any] | None:
        found = await self._nbi.get(_NS, params={"name": name})
        for ns in found or []:
            # Delimited so that key "k:1" never matches a description carrying "k:10".
            if isinstance(ns, dict) and f"({marker})" in str(ns.get("description") or ""):
                return ns
        return None

    async def _resume_create(self, ns: dict[str, Any]) -> DeploymentInfo | None:
        """A retried create found its NS: follow it, or clear a failed one (``None``)."""
        ns_id = str(ns["_id"])
        ops = await self._operations(ns_id)
        instantiate = [o for o in ops if o.get("lcmOperationType") == "instantiate"]
        if instantiate:
            op = instantiate[-1]
            if op.get("operationState") not in TERMINAL_OP_STATES:
                op = await self._wait(str(op["_id"]))
            if op.get("operationState") in SUCCESS_OP_STATES:
                return await self._get_deployment(ns_id)
        # The earlier attempt failed: remove its NS so this attempt starts clean.
        await self._remove_ns(ns_id)
        return None

    async def _operations(self, ns_id: str) -> list[dict[str, Any]]:
        return (await self._operations_of([ns_id]))[ns_id]

    async def _wait(self, op_id: str) -> dict[str, Any]:
        """Poll an NS LCM operation occurrence until it is terminal, within the write timeout."""
        op: dict[str, Any] = await poll_until(
            lambda: self._nbi.get(f"{_OPS}/{op_id}"),
            lambda op: op.get("operationState") in TERMINAL_OP_STATES,
            within=self.config.timeouts.write,
            interval=self.config.polling_interval,
            what=f"OSM operation {op_id} finishing",
            describe=lambda op: f"{op.get('lcmOperationType')} still {op.get('operationState')}",
            details={"backend": "osm", "nsLcmOpOccId": op_id},
        )
        return op

    @staticmethod
    def _check(op: dict[str, Any], ns_id: str, what: str) -> None:
        state = op.get("operationState")
        if state in SUCCESS_OP_STATES:
            return
        raise BackendError(
            f"OSM {what} of NS {ns_id} ended {state}: {_op_text(op)}",
            details={
                "backend": "osm",
                "backendRef": ns_id,
                "nsLcmOpOccId": op.get("_id"),
                "operationState": state,
            },
        )

    async def _load(self, ns_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], _Layout]:
        _check_ns_ref(ns_id)
        nsr, ops = await asyncio.gather(self._nbi.get(f"{_NS}/{ns_id}"), self._operations(ns_id))
        layout = await self._layout(str(nsr.get("nsd-id")))
        return nsr, ops, layout

    def _kdu_history(
        self, ops: list[dict[str, Any]], layout: _Layout
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any], dict[str, str]]:
        """Helm values per KDU after each successful change, NS params, and KDU models.

        Rebuilt from the operation occurrences, the only record OSM keeps of them: the
        instantiate parameters, then each ``upgrade`` (full values; the adapter sends them
        whole) and ``rollback`` (Helm's previous revision) primitive.
        """
        history: dict[str, list[dict[str, Any]]] = {}
        models: dict[str, str] = {k.key: k.helm_chart or "" for k in layout.kdus}
        ns_values: dict[str, Any] = {}
        for op in ops:
            if op.get("operationState") not in SUCCESS_OP_STATES:
                continue
            params = _op_params(op)
            op_type = op.get("lcmOperationType")
            if op_type == "instantiate":
                ns_params = params.get("additionalParamsForNs")
                ns_values = dict(ns_params) if isinstance(ns_params, dict) else {}
                given: dict[str, dict[str, Any]] = {}
                for vnf in params.get("additionalParamsForVnf") or []:
                    for kdu in vnf.get("additionalParamsForKdu") or []:
                        key = f"{vnf.get('member-vnf-index')}/{kdu.get('kdu_name')}"
                        given[key] = dict(kdu.get("additionalParams") or {})
                history = {k.key: [given.get(k.key, {})] for k in layout.kdus}
            elif op_type == "action" and params.get("kdu_name"):
                key = f"{params.get('member_vnf_index')}/{params.get('kdu_name')}"
                revisions = history.setdefault(key, [{}])
                primitive = params.get("primitive")
                if primitive == "upgrade":
                    values = dict(params.get("primitive_params") or {})
                    model = values.pop("kdu_model", None)
                    if isinstance(model, str):
                        models[key] = model
                    revisions.append(values)
                elif primitive == "rollback" and len(revisions) >= 2:
                    revisions.append(copy.deepcopy(revisions[-2]))
        return history, ns_values, models

    def _info(
        self,
        nsr: dict[str, Any],
        ops: list[dict[str, Any]],
        layout: _Layout,
        current: _Layout | None = None,
    ) -> DeploymentInfo:
        ns_id = str(nsr.get("_id"))
        latest = ops[-1] if ops else None
        ns_state = nsr.get("nsState") if isinstance(nsr.get("nsState"), str) else None
        status = deployment_status(
            ns_state,
            latest,
            operational_status=_text(nsr.get("operational-status")),
            config_status=_text(nsr.get("config-status")),
        )
        history, ns_values, models = self._kdu_history(ops, layout)
        values = self._join_values(layout, {k: v[-1] for k, v in history.items() if v}, ns_values)
        message = None
        if latest is not None and latest.get("operationState") not in SUCCESS_OP_STATES:
            message = _op_text(latest)
        elif isinstance(nsr.get("detailed-status"), str):
            message = str(nsr["detailed-status"])
        admin = nsr.get("_admin") if isinstance(nsr.get("_admin"), dict) else {}
        assert isinstance(admin, dict)
        deployed = admin.get("deployed") if isinstance(admin.get("deployed"), dict) else {}
        assert isinstance(deployed, dict)
        resources = tuple(
            ResourceStatus(
                kind="KDU",
                name=str(k.get("kdu-instance") or k.get("kdu-name")),
                namespace=_text(k.get("namespace")),
                ready=kdu_readiness(_text(k.get("status")))[0],
                reason=kdu_readiness(_text(k.get("status")))[1],
                message=_text(k.get("status")),
            )
            for k in deployed.get("K8s") or []
            if isinstance(k, dict)
        )
        scaling = {
            str(g.get("name")): int(g.get("nb-scale-op") or 0)
            for g in admin.get("scaling-group") or []
            if isinstance(g, dict)
        }
        backend_status = f"nsState={ns_state}"
        if latest is not None:
            backend_status += f"; {latest.get('lcmOperationType')} {latest.get('operationState')}"
        return DeploymentInfo(
            backend_ref=ns_id,
            status=status,
            revision=len(ops),
            message=message,
            backend_status=backend_status,
            package_version=(current or layout).version,
            values=values,
            resources=resources,
            updated_at=_timestamp(latest.get("statusEnteredTime")) if latest else None,
            extensions={
                "nsInstanceId": ns_id,
                "nsName": nsr.get("name"),
                "nsdId": nsr.get("nsd-id"),
                "packageRef": f"nsd:{(current or layout).nsd.get('_id')}",
                "nsState": ns_state,
                "operationalStatus": nsr.get("operational-status"),
                "currentOperation": nsr.get("currentOperation"),
                "kduModels": {layout.kdu_label(k): models.get(k.key) for k in layout.kdus},
                "scaleLevels": scaling,
                "lastOperation": {
                    "id": latest.get("_id"),
                    "type": latest.get("lcmOperationType"),
                    "state": latest.get("operationState"),
                }
                if latest
                else None,
            },
        )

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        nsr, ops, layout = await self._load(backend_ref)
        _, _, models = self._kdu_history(ops, layout)
        current = await self._current_package(layout, models)
        return self._info(nsr, ops, layout, current)

    #: The reconciler's poll round is one list of NS records (``_get_deployments``).
    BATCH_READS: ClassVar[bool] = True

    async def _get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        # One list of the NS records (the collection the single read GETs one of) and the
        # operation occurrences of those listed, filtered by id, instead of a record GET and
        # an operations query per NS; each NS then goes through the same ``_info`` (one status
        # table). Descriptors are read once per NSD in the round.
        out: dict[str, DeploymentInfo | NetweaveError] = {}
        wanted: list[str] = []
        for ref in backend_refs:
            try:
                _check_ns_ref(ref)
            except NotFound as exc:
                out[ref] = exc
                continue
            wanted.append(ref)
        if not wanted:
            return out
        listed = await self._nbi.get(_NS)
        nsrs = {str(r.get("_id")): r for r in listed or [] if isinstance(r, dict)}
        present = [ref for ref in wanted if ref in nsrs]
        for ref in wanted:
            if ref not in nsrs:
                out[ref] = NotFound(f"OSM has no NS instance {ref!r}", details={"backend": "osm"})
        ops = await self._operations_of(present)
        layouts: dict[str, _Layout] = {}
        currents: dict[tuple[str, tuple[tuple[str, str], ...]], _Layout] = {}
        for ref in present:
            nsr = nsrs[ref]
            nsd_id = str(nsr.get("nsd-id"))
            try:
                if nsd_id not in layouts:
                    layouts[nsd_id] = await self._layout(nsd_id)
                layout = layouts[nsd_id]
                _, _, models = self._kdu_history(ops[ref], layout)
                key = (nsd_id, tuple(sorted(models.items())))
                if key not in currents:
                    currents[key] = await self._current_package(layout, models)
            except NotFound as exc:
                # The NS is listed: a missing descriptor must not read as the NS being gone.
                out[ref] = BackendError(
                    f"OSM NS instance {ref}: its descriptor cannot be read ({exc.message})",
                    details={"backend": "osm", "backendRef": ref, "nsdId": nsd_id},
                )
                continue
            out[ref] = self._info(nsr, ops[ref], layout, currents[key])
        return out

    async def _operations_of(self, ns_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The operation occurrences of each NS, as :meth:`_operations` orders them; NBI's
        list filter takes comma-separated values (``nsInstanceId=a,b``), in bounded chunks so
        the URL stays short."""
        found: dict[str, list[dict[str, Any]]] = {ns_id: [] for ns_id in ns_ids}
        for start in range(0, len(ns_ids), _OPS_FILTER_IDS):
            chunk = ns_ids[start : start + _OPS_FILTER_IDS]
            listed = await self._nbi.get(_OPS, params={"nsInstanceId": ",".join(chunk)})
            for op in listed or []:
                if isinstance(op, dict) and op.get("nsInstanceId") in found:
                    found[str(op["nsInstanceId"])].append(op)
        return {
            ns_id: sorted(items, key=lambda o: float(o.get("startTime") or 0))
            for ns_id, items in found.items()
        }

    async def _current_package(self, layout: _Layout, models: dict[str, str]) -> _Layout:
        """The NS package whose KDU charts are deployed now.

        OSM keeps the NSD an NS was instantiated from; after a chart upgrade through another
        package (``kdu_model``) the package is found among the onboarded NSDs with the same
        members and exactly the deployed charts (the newest onboarded wins a tie).
        """
        original = {k.key: k.helm_chart or "" for k in layout.kdus}
        if not layout.kdus or models == original:
            return layout
        members = sorted(index for index, _ in member_vnfs(layout.nsd))
        candidates = [
            n
            for n in await self._nbi.get(_COLLECTIONS["nsd"]) or []
            if isinstance(n, dict) and sorted(i for i, _ in member_vnfs(n)) == members
        ]
        candidates.sort(key=lambda n: -float((n.get("_admin") or {}).get("created") or 0))
        for candidate in candidates[:_MAX_PACKAGE_CANDIDATES]:
            try:
                other = await self._layout_of(candidate)
            except BackendError:
                continue  # an NSD whose VNF packages are gone cannot be the deployed one
            if {k.key: k.helm_chart or "" for k in other.kdus} == models:
                return other
        return layout

    @staticmethod
    def _require_idle(ns_id: str, ops: list[dict[str, Any]]) -> None:
        if ops and ops[-1].get("operationState") == OP_PROCESSING:
            raise Conflict(
                f"NS {ns_id} is busy with a {ops[-1].get('lcmOperationType')} operation; "
                "try again when it has finished",
                details={"backendRef": ns_id},
            )

    async def _kdu_action(
        self, ns_id: str, kdu: Kdu, primitive: str, params: dict[str, Any]
    ) -> None:
        body = {
            "member_vnf_index": kdu.member_vnf_index,
            "kdu_name": kdu.name,
            "primitive": primitive,
            "primitive_params": params,
        }
        created, _ = await self._nbi.post(
            f"/nslcm/v1/ns_instances/{ns_id}/action", body, expected=(202,)
        )
        op = await self._wait(str(created["id"]))
        self._check(op, ns_id, f"KDU {kdu.name} {primitive}")

    def _helm_kdus(self, layout: _Layout, what: str) -> list[Kdu]:
        if not layout.kdus:
            raise InvalidInput(
                f"this NS has no KDUs: OSM applies {what} to Helm-based KNFs only",
                details={"field": "values"},
            )
        juju = [k.name for k in layout.kdus if not k.helm_chart]
        if juju:
            raise InvalidInput(f"KDUs {juju} are not Helm charts: OSM cannot {what} them here")
        return layout.kdus

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        if change.suspend is not None:
            raise InvalidInput("OSM NS instances cannot be suspended")
        _, ops, layout = await self._load(backend_ref)
        self._require_idle(backend_ref, ops)
        kdus = self._helm_kdus(layout, "values and upgrades")
        history, _, models = self._kdu_history(ops, layout)
        targets: dict[str, dict[str, Any]] = {}
        if change.values is not None:
            for key, values in self._split_values(layout, change.values).items():
                current = history.get(key, [{}])[-1]
                targets[key] = (
                    _deep_merge(current, values) if change.values_mode == "merge" else values
                )
        new_models: dict[str, str] = {}
        if change.package is not None:
            kind, nsd_id = _parse_package_ref(change.package.backend_ref)
            if kind != "nsd":
                raise InvalidInput("upgrade an NS with another version of its nsd package")
            newer = await self._layout(nsd_id)
            charts = {k.key: k.helm_chart for k in newer.kdus}
            if set(charts) != {k.key for k in kdus}:
                raise InvalidInput(
                    "the new NS package has other KDUs than the deployed one; OSM upgrades "
                    "KDU charts in place only",
                    details={"field": "packageId"},
                )
            for key, chart in charts.items():
                if chart and chart != models.get(key):
                    new_models[key] = chart
        keys = set(targets) | set(new_models) or {k.key for k in kdus}
        for kdu in kdus:
            if kdu.key not in keys:
                continue
            params = copy.deepcopy(targets.get(kdu.key, history.get(kdu.key, [{}])[-1]))
            if kdu.key in new_models:
                params["kdu_model"] = new_models[kdu.key]
            await self._kdu_action(backend_ref, kdu, "upgrade", params)
        return await self._get_deployment(backend_ref)

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        nsr, ops, layout = await self._load(backend_ref)
        self._require_idle(backend_ref, ops)
        if layout.kdus:
            kdus = self._helm_kdus(layout, "scaling")
            if len(kdus) != 1:
                raise InvalidInput(
                    f"this NS has several KDUs {[layout.kdu_label(k) for k in kdus]}: set each "
                    f"one's {self.config.replicas_key} with an update instead",
                    details={"field": "replicas"},
                )
            history, _, _ = self._kdu_history(ops, layout)
            current = history.get(kdus[0].key, [{}])[-1]
            values = _set_path(current, self.config.replicas_key, replicas)
            await self._kdu_action(backend_ref, kdus[0], "upgrade", values)
            return await self._get_deployment(backend_ref)
        return await self._scale_by_aspect(backend_ref, nsr, layout, replicas)

    async def _scale_by_aspect(
        self, ns_id: str, nsr: dict[str, Any], layout: _Layout, replicas: int
    ) -> DeploymentInfo:
        """Step the descriptor's scaling aspect: ``replicas`` = 1 + scale-out steps applied."""
        if len(layout.aspects) != 1:
            raise InvalidInput(
                f"this NS has {len(layout.aspects)} scaling aspects; OSM scales by descriptor "
                "steps and netweave needs exactly one to map replicas onto",
                details={"field": "replicas"},
            )
        aspect = layout.aspects[0]
        if not 1 <= replicas <= aspect.max_scale_level + 1:
            raise InvalidInput(
                f"replicas must be between 1 and {aspect.max_scale_level + 1} for scaling "
                f"aspect {aspect.aspect_id!r}",
                details={"field": "replicas"},
            )
        admin = nsr.get("_admin") if isinstance(nsr.get("_admin"), dict) else {}
        assert isinstance(admin, dict)
        level = next(
            (
                int(g.get("nb-scale-op") or 0)
                for g in admin.get("scaling-group") or []
                if isinstance(g, dict) and g.get("name") == aspect.aspect_id
            ),
            0,
        )
        target = replicas - 1
        direction = "SCALE_OUT" if target > level else "SCALE_IN"
        for _ in range(abs(target - level)):
            body = {
                "scaleType": "SCALE_VNF",
                "scaleVnfData": {
                    "scaleVnfType": direction,
                    "scaleByStepData": {
                        "scaling-group-descriptor": aspect.aspect_id,
                        "member-vnf-index": aspect.member_vnf_index,
                    },
                },
            }
            created, _ = await self._nbi.post(
                f"/nslcm/v1/ns_instances/{ns_id}/scale", body, expected=(202,)
            )
            op = await self._wait(str(created["id"]))
            self._check(op, ns_id, f"{direction.lower().replace('_', '-')}")
        return await self._get_deployment(ns_id)

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        _, ops, layout = await self._load(backend_ref)
        self._require_idle(backend_ref, ops)
        kdus = self._helm_kdus(layout, "rollback")
        # Successful KDU changes as (revision = 1-based operation index, KDU keys touched).
        changes: list[tuple[int, set[str]]] = []
        for index, op in enumerate(ops, start=1):
            if op.get("operationState") not in SUCCESS_OP_STATES:
                continue
            params = _op_params(op)
            if op.get("lcmOperationType") == "instantiate":
                changes.append((index, {k.key for k in kdus}))
            elif op.get("lcmOperationType") == "action" and params.get("primitive") in (
                "upgrade",
                "rollback",
            ):
                changes.append(
                    (index, {f"{params.get('member_vnf_index')}/{params.get('kdu_name')}"})
                )
        if changes and revision == changes[-1][0] and revision < len(ops):
            return await self._reapply(backend_ref, ops[:revision], layout, kdus)
        if len(changes) < 2:
            raise InvalidInput(
                "nothing to roll back to: the NS has no earlier KDU revision",
                details={"field": "revision"},
            )
        touched = changes[-1][1]
        previous = max(i for i, keys in changes[:-1] if keys & touched)
        if revision not in (0, previous):
            raise InvalidInput(
                f"OSM's KDU rollback returns to the previous revision only: revision "
                f"{previous} (or 0), not {revision}",
                details={"field": "revision", "previous": previous},
            )
        for kdu in kdus:
            if kdu.key in touched:
                await self._kdu_action(backend_ref, kdu, "rollback", {})
        return await self._get_deployment(backend_ref)

    async def _reapply(
        self, ns_id: str, ops: list[dict[str, Any]], layout: _Layout, kdus: list[Kdu]
    ) -> DeploymentInfo:
        """Back to the KDU state after ``ops`` when every operation since then failed.

        OSM's ``rollback`` primitive steps back from the last *successful* Helm revision, which
        here is still the requested one: undoing the failed changes means applying that
        revision's values (and charts) again, so the NS reports a successful change.
        """
        history, _, models = self._kdu_history(ops, layout)
        for kdu in kdus:
            params = copy.deepcopy(history.get(kdu.key, [{}])[-1])
            if models.get(kdu.key) and models[kdu.key] != (kdu.helm_chart or ""):
                params["kdu_model"] = models[kdu.key]
            await self._kdu_action(ns_id, kdu, "upgrade", params)
        return await self._get_deployment(ns_id)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        try:
            await self._remove_ns(backend_ref)
        except NotFound:
            return  # already gone: a retried delete succeeds

    async def _remove_ns(self, ns_id: str) -> None:
        """Terminate (when instantiated) and delete an NS, following each operation."""
        _check_ns_ref(ns_id)
        ops = await self._operations(ns_id)
        if ops and ops[-1].get("operationState") == OP_PROCESSING:
            # OSM queues operations per NS; wait for the running one (perhaps the terminate of
            # an interrupted earlier attempt) rather than pile on, then look again.
            await self._wait(str(ops[-1]["_id"]))
        nsr = await self._nbi.get(f"{_NS}/{ns_id}")
        admin = nsr.get("_admin") if isinstance(nsr.get("_admin"), dict) else {}
        assert isinstance(admin, dict)
        if admin.get("nsState") != "NOT_INSTANTIATED":
            created, _ = await self._nbi.post(
                f"/nslcm/v1/ns_instances/{ns_id}/terminate", {}, expected=(202,)
            )
            op = await self._wait(str(created["id"]))
            self._check(op, ns_id, "termination")
        try:
            answer, response = await self._nbi.delete(f"{_NS}/{ns_id}")
        except NotFound:
            return
        if response.status_code == 202 and isinstance(answer, dict):
            # Still instantiated after all: NBI terminates with autoremove itself.
            op_id = answer.get("id") or answer.get("_id")
            if isinstance(op_id, str):
                op = await self._wait(op_id)
                self._check(op, ns_id, "termination")

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        _, ops, layout = await self._load(backend_ref)
        entries: list[RevisionEntry] = []
        for index, op in enumerate(ops, start=1):
            history, ns_values, _ = self._kdu_history(ops[:index], layout)
            params = _op_params(op)
            what = str(op.get("lcmOperationType"))
            if what == "action":
                what = f"action {params.get('primitive')} on KDU {params.get('kdu_name')}"
            elif what == "scale":
                data = params.get("scaleVnfData") or {}
                what = f"scale {data.get('scaleVnfType') if isinstance(data, dict) else ''}"
            detail = op.get("detailed-status") or op.get("errorMessage")
            entries.append(
                RevisionEntry(
                    revision=index,
                    status=str(op.get("operationState")),
                    package_version=layout.version,
                    description=f"{what}: {detail}" if detail else what,
                    deployed_at=_timestamp(op.get("statusEnteredTime")),
                    values=self._join_values(
                        layout, {k: v[-1] for k, v in history.items() if v}, ns_values
                    ),
                )
            )
        return entries


__all__ = ["OsmAdapter"]
