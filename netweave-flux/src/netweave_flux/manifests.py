"""The Flux objects netweave writes: sources (packages), HelmReleases and Kustomizations.

Pure functions over dicts, shared by both modes (cluster and git), so what is committed to Git is
exactly what would be sent to the API server.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from netweave.adapters.values import merge_values
from netweave.errors import InvalidInput

GROUP_SOURCE = "source.toolkit.fluxcd.io"
GROUP_HELM = "helm.toolkit.fluxcd.io"
GROUP_KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
SOURCE_VERSION = "v1"
HELM_VERSION = "v2"
KUSTOMIZE_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


GIT_REPOSITORY = Kind("GitRepository", GROUP_SOURCE, SOURCE_VERSION, "gitrepositories")
OCI_REPOSITORY = Kind("OCIRepository", GROUP_SOURCE, SOURCE_VERSION, "ocirepositories")
HELM_REPOSITORY = Kind("HelmRepository", GROUP_SOURCE, SOURCE_VERSION, "helmrepositories")
HELM_RELEASE = Kind("HelmRelease", GROUP_HELM, HELM_VERSION, "helmreleases")
KUSTOMIZATION = Kind("Kustomization", GROUP_KUSTOMIZE, KUSTOMIZE_VERSION, "kustomizations")

SOURCE_KINDS: dict[str, Kind] = {
    k.kind: k for k in (GIT_REPOSITORY, OCI_REPOSITORY, HELM_REPOSITORY)
}
DEPLOYMENT_KINDS: dict[str, Kind] = {k.kind: k for k in (HELM_RELEASE, KUSTOMIZATION)}
#: Package type → source kind.
PACKAGE_KINDS: dict[str, Kind] = {
    "git-repo": GIT_REPOSITORY,
    "oci": OCI_REPOSITORY,
    "helm": HELM_REPOSITORY,
}

LABEL_MANAGED = "app.kubernetes.io/managed-by"
MANAGED_BY = "netweave"
LABEL_INSTANCE = "netweave.io/adapter-instance"
ANN_PREFIX = "netweave.io/"
ANN_PACKAGE_NAME = "netweave.io/package-name"
ANN_PACKAGE_VERSION = "netweave.io/package-version"
ANN_PACKAGE_TYPE = "netweave.io/package-type"
ANN_DESCRIPTION = "netweave.io/description"
ANN_CHART = "netweave.io/chart"
ANN_CHART_VERSION = "netweave.io/chart-version"
ANN_PATH = "netweave.io/path"
ANN_IDEMPOTENCY = "netweave.io/idempotency-key"
ANN_DEPLOYMENT_ID = "netweave.io/deployment-id"
ANN_PACKAGE_REF = "netweave.io/package-ref"
ANN_LEDGER = "netweave.io/applied"
ANN_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
#: helm-controller (API v2): with the same token as ``requestedAt``, clears the release's
#: failure counters so a Stalled release (retries exhausted) is attempted again.
ANN_RESET_AT = "reconcile.fluxcd.io/resetAt"
#: helm-controller (API v2): with the same token as ``requestedAt``, a forced upgrade of the
#: release even when nothing changed: every object is applied again (the repair of objects
#: deleted or edited behind Flux's back).
ANN_FORCE_AT = "reconcile.fluxcd.io/forceAt"
HELM_OCI_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9.-]+")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBST_KEY = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")


def object_name(name: str, version: str) -> str:
    """A DNS-1123 object name for a package ``name``+``version``, stable and unique.

    Readable where possible (``demo-1.2.0``); a short hash is appended when characters had to
    be replaced or the name was cut, so two different packages never share an object.
    """
    raw = f"{name}-{version}"
    clean = _INVALID_NAME_CHARS.sub("-", raw.lower()).strip("-.")
    if clean == raw and len(clean) <= 63:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{clean[:54].strip('-.')}-{digest}"


def label_value(text: str) -> str:
    """``text`` as a label value (≤63 chars, alphanumeric ends), hashed when it is not one."""
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def labels(instance: str) -> dict[str, str]:
    return {LABEL_MANAGED: MANAGED_BY, LABEL_INSTANCE: label_value(instance)}


def selector(instance: str) -> str:
    return ",".join(f"{k}={v}" for k, v in labels(instance).items())


def digest_values(values: dict[str, Any]) -> str:
    """``sha256:<hex>`` of ``values`` the way helm-controller digests a release's config.

    helm-controller records ``configDigest`` as the digest of Helm's ``Values.Encode`` (YAML with
    sorted keys, via JSON). This mirrors it for ordinary values; where it differs (exotic
    scalars), the ledger lookup misses and a rollback to that revision is refused rather than
    guessed.
    """
    canonical = json.loads(json.dumps(values))  # JSON round trip, as sigs.k8s.io/yaml does
    text = yaml.safe_dump(canonical, default_flow_style=False, sort_keys=True, allow_unicode=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def digest_config(config: dict[str, Any]) -> str:
    """Digest of netweave's own record of a Kustomization's configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def flat_substitutions(values: dict[str, Any]) -> dict[str, str]:
    """Values for a Kustomization: flat scalars only, as ``postBuild.substitute`` strings.

    Flux substitutes ``${var}`` in the built manifests with these strings; it has nothing like
    Helm's nested values, so nested values are refused instead of silently flattened.
    """
    out: dict[str, str] = {}
    for key, value in values.items():
        if not _SUBST_KEY.match(key):
            raise InvalidInput(
                f"value {key!r}: Kustomization substitutions need shell-style variable names",
                details={"field": f"values.{key}"},
            )
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float | str):
            out[key] = str(value)
        else:
            raise InvalidInput(
                f"value {key!r}: a Kustomization takes flat values (strings, numbers, booleans) "
                "as postBuild.substitute variables, not nested objects or lists",
                details={"field": f"values.{key}"},
            )
    return out


def check_helmrelease(obj: dict[str, Any]) -> None:
    """The CEL rules of the HelmRelease CRD a JSON-schema validator does not evaluate."""
    spec = obj.get("spec") or {}
    if ("chart" in spec) == ("chartRef" in spec):
        raise InvalidInput(
            "a HelmRelease needs exactly one of spec.chart or spec.chartRef",
            details={"field": "spec.chart"},
        )
    for section, forbidden_with in (("install", "RetryOnFailure"), ("upgrade", "RetryOnFailure")):
        strategy = (spec.get(section) or {}).get("strategy") or {}
        if "retryInterval" in strategy and strategy.get("name") != forbidden_with:
            raise InvalidInput(
                f"spec.{section}.strategy.retryInterval needs strategy name RetryOnFailure",
                details={"field": f"spec.{section}.strategy"},
            )


def set_path(values: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``values`` with ``dotted`` (``a.b.c``) set to ``value``."""
    out = json.loads(json.dumps(values))
    cur = out
    keys = dotted.split(".")
    for key in keys[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[key] = nxt
        cur = nxt
    cur[keys[-1]] = value
    return out  # type: ignore[no-any-return]


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=False, allow_unicode=True)


__all__ = [
    "DEPLOYMENT_KINDS",
    "GIT_REPOSITORY",
    "HELM_RELEASE",
    "HELM_REPOSITORY",
    "KUSTOMIZATION",
    "OCI_REPOSITORY",
    "PACKAGE_KINDS",
    "SOURCE_KINDS",
    "Kind",
    "check_helmrelease",
    "digest_config",
    "digest_values",
    "flat_substitutions",
    "label_value",
    "labels",
    "merge_values",
    "object_name",
    "selector",
    "set_path",
    "to_yaml",
]
