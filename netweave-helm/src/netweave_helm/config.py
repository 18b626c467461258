"""The ``config:`` block of a ``helm`` adapter instance (documented field by field in README.md).

Keys are camelCase in YAML (``repositoryDir``, ``maxFileBytes`` …); snake_case works too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from netweave.adapters import AdapterConfig
from netweave.config import FetchSettings
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _is_loopback(host: str | None) -> bool:
    return host in {"127.0.0.1", "localhost", "::1"} or bool(host and host.startswith("127."))


class LocalStorage(_Section):
    """A chart repository directory on disk, served by the gateway at ``servePath``."""

    kind: Literal["local"] = "local"
    #: Directory holding ``*.tgz`` and ``index.yaml``. Default: ``<dataDir>/charts``.
    repository_dir: Path | None = None
    #: Serve the directory as a Helm HTTP repository through the gateway.
    serve: bool = True
    #: URL path the repository is served at; ``None`` = ``/charts`` for the first served local
    #: instance and ``/charts/<instance>`` for the others.
    serve_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9/_-]*[A-Za-z0-9_-]$")


class _Credentials(_Section):
    username: str | None = None
    password: SecretStr | None = None
    #: Bearer token, an alternative to username/password.
    token: SecretStr | None = None
    insecure_skip_tls_verify: bool = False
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _one_auth(self) -> _Credentials:
        if self.token is not None and self.username is not None:
            raise ValueError("give either username/password or token, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class OciStorage(_Credentials):
    """An OCI registry path ``oci://host[:port]/path`` holding charts as artifacts."""

    kind: Literal["oci"] = "oci"
    url: str
    #: Talk HTTP instead of HTTPS. ``None``: only for loopback hosts (127.0.0.0/8, localhost).
    plain_http: bool | None = None

    @field_validator("url")
    @classmethod
    def _oci_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "oci" or not parts.netloc:
            raise ValueError("must look like oci://host[:port]/path")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def repository_path(self) -> str:
        return urlsplit(self.url).path.strip("/")

    @property
    def use_plain_http(self) -> bool:
        if self.plain_http is not None:
            return self.plain_http
        return _is_loopback(urlsplit(self.url).hostname)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


class ChartMuseumStorage(_Credentials):
    """A ChartMuseum server (its ``/api/charts`` API; ``/index.yaml`` for reads)."""

    kind: Literal["chartmuseum"] = "chartmuseum"
    url: str
    #: Multitenant prefix (ChartMuseum ``--depth``), e.g. ``org/team``.
    tenant: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class HttpStorage(_Credentials):
    """A read-only Helm HTTP repository (``index.yaml`` plus archives)."""

    kind: Literal["http"] = "http"
    url: str

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


Storage = Annotated[
    LocalStorage | OciStorage | ChartMuseumStorage | HttpStorage, Field(discriminator="kind")
]


class DependencyRepository(_Section):
    """A repository whose charts may satisfy dependencies an upload does not vendor. The
    gateway fetches them at upload time through the fetch policy (``netweave_helm.dependencies``;
    never the Helm SDK) into the stored archive. Anonymous repositories only."""

    url: str

    @field_validator("url")
    @classmethod
    def _repo_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https", "oci"} or not parts.netloc:
            raise ValueError("must be an http(s):// or oci:// URL")
        return value.rstrip("/")


class ArchiveLimits(_Section):
    """Bounds an uploaded archive must stay within (checked while streaming, before Helm)."""

    max_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    max_depth: int = Field(default=32, ge=2, le=256)
    #: Helm's own loader refuses files above 5 MiB and charts above 100 MiB (decompressed).
    max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    max_uncompressed_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    #: Decompressed/compressed ratio beyond which an archive is a bomb, once it is larger than
    #: ``ratioFloorBytes`` (small YAML compresses very well and is harmless).
    max_ratio: float = Field(default=100.0, gt=1)
    ratio_floor_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    max_path_length: int = Field(default=1024, ge=16, le=4096)
    #: ``Chart.yaml`` / ``requirements.yaml`` are parsed in Python; keep them small.
    max_metadata_bytes: int = Field(default=1024 * 1024, ge=1024)


class LintSettings(_Section):
    #: Treat lint warnings as errors (refuse the upload).
    strict: bool = False
    #: Kubernetes version lint checks ``kubeVersion`` constraints against, e.g. ``v1.30.0``.
    kube_version: str | None = Field(default=None, pattern=r"^v?\d+\.\d+(\.\d+)?$")


class RenderLimits(_Section):
    """Caps on every process that renders a chart (the upload's lint, a dry-run preview, an
    install, upgrade or scale): an untrusted template such as ``{{ range until 20000000 }}``
    must not exhaust the node. The rendering runs in a child process or a render worker; over
    a cap it is stopped and the request refused (400)."""

    #: The child's data segment (``RLIMIT_DATA``: the Go heap and Python's), in bytes.
    memory_bytes: int = Field(default=512 * 1024 * 1024, ge=128 * 1024 * 1024)
    #: Wall-clock seconds one lint or preview may take (CPU seconds are capped at twice this,
    #: for installs, upgrades and scales too).
    time_seconds: float = Field(default=60.0, gt=0, le=3600)
    #: Largest preview (rendered manifests plus notes) answered, in bytes.
    max_output_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Persistent render workers (installs, upgrades, scales, previews), one request each at
    #: a time; by default ``cluster.maxConcurrency``. Started on demand, idle ones ended after a
    #: minute; each holds the Helm SDK (~65 MB RSS, much of it the shared library).
    workers: int | None = Field(default=None, ge=1, le=512)


class ClusterSettings(_Section):
    """Where releases go. With none of ``kubeconfig``/``kubeconfigContent`` set, Helm's usual
    resolution applies (``KUBECONFIG``, ``~/.kube/config``, in-cluster service account) when one
    of them exists; otherwise deployment calls answer 503 ``ClusterNotConfigured``."""

    kubeconfig: Path | None = None
    kubeconfig_content: SecretStr | None = None
    context: str | None = None
    #: Namespace used when a request names none.
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    create_namespace: bool = True
    storage_driver: Literal["secret", "configmap"] = "secret"
    #: Client-side throttling of the Kubernetes client. Helm's defaults (5/10) make every
    #: request after the burst wait; a gateway runs many releases at once.
    qps: float = Field(default=500.0, gt=0, le=100_000)
    burst: int = Field(default=1000, ge=1, le=1_000_000)
    #: Helm v4 wait strategy: ``watcher`` (kstatus), ``legacy``, ``hookOnly`` (Helm's default:
    #: wait for hooks only) or ``none``.
    wait: Literal["watcher", "legacy", "hookOnly", "none"] = "hookOnly"
    #: Seconds Helm may spend on one install/upgrade/rollback/uninstall (hooks and waits).
    operation_timeout: int = Field(default=300, ge=1, le=86_400)
    max_history: int = Field(default=10, ge=0, le=1000)
    #: Values key ``scale`` sets (dotted path, e.g. ``deployment.replicas`` for traefik).
    scale_key: str = Field(default="replicaCount", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    #: Threads running Helm SDK calls (the SDK is blocking).
    max_concurrency: int = Field(default=16, ge=1, le=512)

    @model_validator(mode="after")
    def _one_source(self) -> ClusterSettings:
        if self.kubeconfig is not None and self.kubeconfig_content is not None:
            raise ValueError("give kubeconfig or kubeconfigContent, not both")
        return self


class HelmConfig(AdapterConfig):
    """The ``helm`` adapter's configuration."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    #: The instance's private directory; the gateway's loader sets it to
    #: ``<gateway data dir>/adapters/<instance>`` when the configuration does not.
    data_dir: Path | None = None
    storage: Storage = Field(default_factory=LocalStorage)
    #: Extra repositories whose charts satisfy undeclared (not vendored) dependencies.
    dependency_repositories: list[DependencyRepository] = Field(default_factory=list)
    limits: ArchiveLimits = Field(default_factory=ArchiveLimits)
    lint: LintSettings = Field(default_factory=LintSettings)
    render: RenderLimits = Field(default_factory=RenderLimits)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    #: Registration by ``packageUri`` may fetch from loopback/private addresses (link-local and
    #: reserved ones are always refused): off by default, against SSRF.
    allow_private_package_uris: bool = False
    #: Networks fetches caused by client content (``packageUri``, dependency repositories) may
    #: reach; the gateway's loader sets the gateway's ``fetch`` block when this is not given.
    fetch: FetchSettings | None = None
    #: Requests to remote repositories (OCI manifest API, ChartMuseum, HTTP) time out after this.
    http_timeout: float = Field(default=30.0, gt=0, le=3600)


__all__ = [
    "ArchiveLimits",
    "ChartMuseumStorage",
    "ClusterSettings",
    "DependencyRepository",
    "HelmConfig",
    "HttpStorage",
    "LintSettings",
    "LocalStorage",
    "OciStorage",
    "RenderLimits",
    "Storage",
]
