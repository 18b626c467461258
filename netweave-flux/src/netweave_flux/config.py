"""The ``config:`` block of a ``flux`` adapter instance (documented field by field in README.md).

Keys are camelCase in YAML (``scaleValuePath``, ``kubeconfigContent`` …); snake_case works too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from netweave.adapters import AdapterConfig, ConfigSection
from pydantic import Field, SecretStr, field_validator, model_validator

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Flux durations (``metav1.Duration`` as the CRDs restrict them).
_DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_VALUE_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_SUBST_KEY = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")


class ClusterSettings(ConfigSection):
    """The Kubernetes cluster Flux runs in (written to in cluster mode, read in both modes)."""

    #: Path of a kubeconfig file; with neither this nor ``kubeconfigContent``, ``KUBECONFIG`` /
    #: ``~/.kube/config`` and then the in-cluster service account are tried.
    kubeconfig: Path | None = None
    #: Inline kubeconfig YAML (e.g. from ``${FLUX_KUBECONFIG}``); never logged.
    kubeconfig_content: SecretStr | None = None
    context: str | None = None
    #: Client-side retries of a failed connection (each waits for the read timeout).
    connect_retries: int = Field(default=1, ge=0, le=10)


class Remediation(ConfigSection):
    """``spec.install`` / ``spec.upgrade`` remediation of every HelmRelease."""

    install_retries: int = Field(default=3, ge=0, le=100)
    upgrade_retries: int = Field(default=3, ge=0, le=100)
    #: What the controller does after a failed upgrade: roll back or uninstall.
    upgrade_strategy: Literal["rollback", "uninstall"] = "rollback"
    #: Remediate (roll back) the last failure too, once retries are exhausted.
    remediate_last_failure: bool = True


class GitSettings(ConfigSection):
    """Git mode: where the manifests are committed (Flux syncs them into the cluster)."""

    #: Clone URL (``https://``, ``http://``, ``ssh://``, ``git://`` or ``file://``); credentials
    #: in the URL are used by git and never logged.
    url: SecretStr
    branch: str = Field(default="main", min_length=1, max_length=255)
    #: Directory inside the repository holding netweave's manifests (the path a Flux
    #: Kustomization syncs). Files: ``<path>/<namespace>/<kind>-<name>.yaml``.
    path: str = Field(default="clusters/netweave", min_length=1, max_length=255)
    author_name: str = Field(default="netweave", min_length=1, max_length=200)
    author_email: str = Field(default="netweave@localhost", min_length=3, max_length=200)
    #: Commit message; ``{action}``, ``{kind}``, ``{namespace}``, ``{name}`` and
    #: ``{operation}`` are filled in.
    commit_message: str = Field(
        default="netweave: {action} {kind} {namespace}/{name} (operation {operation})",
        min_length=1,
        max_length=2000,
    )
    #: Attempts of fetch + re-apply + push when the branch moved under us (never a force-push).
    push_attempts: int = Field(default=5, ge=1, le=50)
    #: Working copy directory; default: a temporary directory per adapter instance.
    workdir: Path | None = None
    #: Seconds a read may reuse the last fetch (0: every read fetches, so reads never report
    #: a state older than the branch).
    read_cache_seconds: float = Field(default=0.0, ge=0, le=300)
    #: Seconds a git command may run.
    command_timeout: float = Field(default=60.0, gt=0, le=3600)
    #: Seconds a delete waits for the cluster to show a resumed (unsuspended) object before it
    #: commits the removal (a suspended HelmRelease is not uninstalled when deleted).
    resume_wait: float = Field(default=120.0, gt=0, le=3600)

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        parts = [p for p in value.strip("/").split("/") if p not in ("", ".")]
        if not parts or any(p == ".." for p in parts):
            raise ValueError("git.path must be a relative path inside the repository")
        return "/".join(parts)


class FluxConfig(AdapterConfig):
    mode: Literal["cluster", "git"] = "cluster"
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    git: GitSettings | None = None
    #: Namespace of the Flux sources netweave registers (packages).
    source_namespace: str = Field(default="flux-system", pattern=_NAME, max_length=63)
    #: ``spec.interval`` of HelmReleases and Kustomizations.
    interval: str = Field(default="5m", pattern=_DURATION)
    #: ``spec.interval`` of sources.
    source_interval: str = Field(default="10m", pattern=_DURATION)
    #: ``spec.timeout`` of HelmReleases / Kustomizations (none: Flux's default).
    timeout: str | None = Field(default=None, pattern=_DURATION)
    remediation: Remediation = Field(default_factory=Remediation)
    #: ``spec.install.createNamespace`` of HelmReleases.
    create_namespace: bool = True
    #: ``spec.prune`` of Kustomizations.
    prune: bool = True
    #: Dotted Helm value ``scale`` sets on HelmReleases (``replicaCount``, ``web.replicas`` …).
    scale_value_path: str = "replicaCount"
    #: ``postBuild.substitute`` variable ``scale`` sets on Kustomizations (the manifests must use
    #: ``${replicas}``).
    scale_substitute_key: str = "replicas"
    #: Values netweave remembers per applied revision (for rollback), at most this many.
    ledger_entries: int = Field(default=10, ge=1, le=50)
    #: Size limit (bytes of JSON) of that record, kept in an annotation of the object.
    ledger_max_bytes: int = Field(default=64 * 1024, ge=1024, le=200 * 1024)

    @field_validator("scale_value_path")
    @classmethod
    def _value_path(cls, value: str) -> str:
        if not _VALUE_PATH.match(value):
            raise ValueError("scaleValuePath must be a dotted path of keys, e.g. replicaCount")
        return value

    @field_validator("scale_substitute_key")
    @classmethod
    def _subst_key(cls, value: str) -> str:
        if not _SUBST_KEY.match(value):
            raise ValueError("scaleSubstituteKey must be a shell-style variable name")
        return value

    @model_validator(mode="after")
    def _git_needs_settings(self) -> FluxConfig:
        if self.mode == "git" and self.git is None:
            raise ValueError("mode 'git' needs a 'git' section (url, branch, path …)")
        return self
