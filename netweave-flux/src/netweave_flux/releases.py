"""A HelmRelease's desired objects (Helm's release storage, as helm-controller writes it) vs
the live ones: ``GET …/nfDeployments/{id}/diff``.

helm-controller runs Helm's own install/upgrade, so each release revision is stored the Helm
way: a Secret ``sh.helm.release.v1.<release>.v<N>`` of type ``helm.sh/release.v1`` in the
storage namespace (the HelmRelease's ``storageNamespace``, by default its own namespace),
labelled ``owner=helm``, ``name``, ``version``, ``status``; its ``data.release`` is the
release as JSON, gzipped and base64-encoded (then base64 again as any Secret value). The
release's ``manifest`` is what Helm rendered and applied (helm-controller's post-renderer has
already added its ``helm.toolkit.fluxcd.io/*`` labels), ``config`` the values.

Blocking (the ``kubernetes`` client's transport): run inside :meth:`Kube.call`. Reads: the
revision's Secret (a label-selected list when it is gone), one discovery GET per API group
version the manifest uses, one GET per object.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from netweave.adapters.kubernetes import ObjectReader
from netweave.errors import BackendError, Conflict
from netweave.health.diff import unified
from netweave.models import ResourceDiff

DiffState = Literal["in-sync", "modified", "missing", "added", "removed"]
_DOCUMENT = re.compile(r"^---\s*$", re.M)
_GZIP_MAGIC = b"\x1f\x8b\x08"
#: Largest decompressed release accepted (a storage Secret holds at most 1 MiB compressed;
#: this bounds what a hostile one can make the gateway inflate).
MAX_RELEASE_BYTES = 64 * 1024 * 1024
#: Release revisions looked at when the recorded one is gone (Helm's storage is bounded by
#: ``maxHistory``, 5 by default in Flux).
MAX_REVISIONS = 100
#: Helm statuses of a revision that ran (now or before).
_RAN = frozenset({"deployed", "superseded"})


def secret_name(release: str, version: int) -> str:
    return f"sh.helm.release.v1.{release}.v{version}"


def release_name(hr: Mapping[str, Any]) -> str:
    """The Helm release a HelmRelease manages: ``spec.releaseName``, else the name Flux
    recorded in its history, else Flux's default (``[<targetNamespace>-]<name>``)."""
    spec = hr.get("spec") or {}
    if spec.get("releaseName"):
        return str(spec["releaseName"])
    history = (hr.get("status") or {}).get("history") or []
    if history and isinstance(history[0], dict) and history[0].get("name"):
        return str(history[0]["name"])
    meta = hr.get("metadata") or {}
    target = spec.get("targetNamespace")
    return f"{target}-{meta.get('name')}" if target else str(meta.get("name"))


def storage_namespace(hr: Mapping[str, Any]) -> str:
    """Where helm-controller keeps the release (its status says which it used)."""
    status = hr.get("status") or {}
    spec = hr.get("spec") or {}
    meta = hr.get("metadata") or {}
    return str(
        status.get("storageNamespace") or spec.get("storageNamespace") or meta.get("namespace")
    )


def decode_release(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The release JSON of a Helm storage Secret (bounded inflation)."""
    name = (secret.get("metadata") or {}).get("name")
    raw = (secret.get("data") or {}).get("release")
    if not isinstance(raw, str) or not raw:
        raise BackendError(f"Helm storage Secret {name} holds no release")
    try:
        blob = base64.b64decode(base64.b64decode(raw, validate=True), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BackendError(f"Helm storage Secret {name}: the release is not base64") from exc
    if blob[:3] == _GZIP_MAGIC:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            text = inflate.decompress(blob, MAX_RELEASE_BYTES)
        except zlib.error as exc:
            raise BackendError(f"Helm storage Secret {name}: the release is not gzip") from exc
        if inflate.unconsumed_tail:
            raise BackendError(
                f"Helm storage Secret {name}: the release inflates beyond {MAX_RELEASE_BYTES} bytes"
            )
        if not inflate.eof:
            raise BackendError(f"Helm storage Secret {name}: the release is not gzip (truncated)")
        blob = text
    try:
        release = json.loads(blob)
    except ValueError as exc:
        raise BackendError(f"Helm storage Secret {name}: the release is not JSON") from exc
    if not isinstance(release, dict):
        raise BackendError(f"Helm storage Secret {name}: the release is not an object")
    return release


@dataclass(frozen=True, slots=True)
class Recorded:
    """The release revision whose manifest is the desired state."""

    version: int
    namespace: str
    manifest: str


def _recorded(release: dict[str, Any], fallback_namespace: str) -> Recorded:
    return Recorded(
        version=int(release.get("version") or 0),
        namespace=str(release.get("namespace") or fallback_namespace),
        manifest=str(release.get("manifest") or ""),
    )


def recorded_release(
    reader: ObjectReader,
    storage_ns: str,
    release: str,
    revision: int,
    wanted: Mapping[str, Any] | None,
    target_namespace: str,
) -> Recorded:
    """The desired state: revision ``revision`` (the one the gateway recorded). When Helm's
    storage no longer has it (pruned by ``maxHistory``, or deleted), the newest stored
    revision that ran what netweave last wrote (``wanted``: its ledger entry, chart version
    and values) — the same chart and values render the same manifest. Otherwise nothing to
    compare with: ``Conflict``."""
    if revision > 0:
        secret = reader.get(
            f"/api/v1/namespaces/{storage_ns}/secrets/{secret_name(release, revision)}"
        )
        if secret is not None:
            return _recorded(decode_release(secret), target_namespace)
    listed = (
        reader.get(
            f"/api/v1/namespaces/{storage_ns}/secrets",
            labelSelector=f"owner=helm,name={release}",
            limit=str(MAX_REVISIONS),
        )
        or {}
    )
    stored = []
    for secret in listed.get("items") or []:
        labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
        try:
            version = int(labels.get("version") or 0)
        except ValueError:
            continue
        if labels.get("status") in _RAN:
            stored.append((version, secret))
    if wanted is not None:
        for _, secret in sorted(stored, key=lambda s: s[0], reverse=True):
            candidate = decode_release(secret)
            chart = ((candidate.get("chart") or {}).get("metadata") or {}).get("version")
            if str(chart) == str(wanted.get("chartVersion")) and (
                candidate.get("config") or {}
            ) == (wanted.get("values") or {}):
                return _recorded(candidate, target_namespace)
    raise Conflict(
        f"Helm release {storage_ns}/{release}: revision {revision}, the one the gateway "
        f"recorded, is no longer in Helm's storage (Secret {secret_name(release, revision)}), "
        "and no stored revision runs the chart version and values netweave wrote: there is no "
        "desired manifest to compare with (repair the deployment to release it again)",
        details={"revision": revision, "release": release, "storageNamespace": storage_ns},
    )


@dataclass(frozen=True, slots=True)
class Desired:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    obj: dict[str, Any]

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()}/{where}{self.name}"


def manifest_objects(manifest: str) -> list[dict[str, Any]]:
    """The objects of Helm's rendered manifest (``---``-separated YAML documents)."""
    found: list[dict[str, Any]] = []
    for chunk in _DOCUMENT.split(manifest):
        if not chunk.strip():
            continue
        try:
            docs = list(yaml.safe_load_all(chunk))
        except yaml.YAMLError as exc:
            raise BackendError(f"the release manifest does not parse as YAML: {exc}") from exc
        found.extend(d for d in docs if isinstance(d, dict) and d.get("kind"))
    return found


class Discovery:
    """Where a kind lives in the API (its plural, whether namespaced), from the server's
    discovery documents: one GET per group version, remembered for the call."""

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader
        self._seen: dict[str, dict[str, tuple[str, bool]]] = {}

    def locate(self, api_version: str, kind: str) -> tuple[str, bool] | None:
        if api_version not in self._seen:
            document: dict[str, Any] | None = None
            if api_version == "v1":
                document = self._reader.get("/api/v1")
            elif "/" in api_version:
                document = self._reader.get(f"/apis/{api_version}")
            kinds: dict[str, tuple[str, bool]] = {}
            for item in (document or {}).get("resources") or []:
                name = str(item.get("name") or "")
                if name and "/" not in name and item.get("kind"):
                    kinds[str(item["kind"])] = (name, bool(item.get("namespaced")))
            self._seen[api_version] = kinds
        return self._seen[api_version].get(kind)


def diff_release(reader: ObjectReader, manifest: str, namespace: str) -> list[ResourceDiff]:
    """Each object of ``manifest`` against the live one (``namespace``: the release's, for
    objects that name none): ``in-sync``, ``modified`` with a unified diff of what the
    manifest sets, or ``missing`` (not in the cluster, or of a kind the cluster no longer
    serves)."""
    discovery = Discovery(reader)
    diffs: list[ResourceDiff] = []
    for obj in manifest_objects(manifest):
        api_version = str(obj.get("apiVersion") or "v1")
        kind = str(obj["kind"])
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name = str((meta or {}).get("name") or "")
        located = discovery.locate(api_version, kind)
        namespaced = located[1] if located else True
        item = Desired(
            api_version=api_version,
            kind=kind,
            name=name,
            namespace=str((meta or {}).get("namespace") or namespace) if namespaced else None,
            obj=obj,
        )
        live: dict[str, Any] | None = None
        if located is not None and name:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            if item.namespace is not None:
                base += f"/namespaces/{item.namespace}"
            live = reader.get(f"{base}/{located[0]}/{name}")
        text = unified(item.obj, live, item.label)
        state: DiffState = "missing" if live is None else ("modified" if text else "in-sync")
        diffs.append(
            ResourceDiff(kind=kind, name=name, namespace=item.namespace, state=state, diff=text)
        )
    return diffs


__all__ = [
    "MAX_RELEASE_BYTES",
    "Desired",
    "Discovery",
    "Recorded",
    "decode_release",
    "diff_release",
    "manifest_objects",
    "recorded_release",
    "release_name",
    "secret_name",
    "storage_namespace",
]
