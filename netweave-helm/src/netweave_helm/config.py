"""The ``config:`` block of a ``helm`` adapter instance (documented field by field in README.md).

Keys are camelCase in YAML (``repositoryDir``, ``maxFileBytes`` …); snake_case works too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from netweave.adapters import AdapterConfig, ConfigSection
from netweave.config import FetchSettings
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)


def _is_loopback(host: str | None) -> bool:
    return host in {"127.0.0.1", "localhost", "::1"} or bool(host and host.startswith("127."))


class LocalStorage(ConfigSection):
    """A chart repository directory on disk, served by the gateway at ``servePath``."""

    kind: Literal["local"] = "local"
    #: Directory holding ``*.tgz`` and ``index.yaml``. Default: ``<dataDir>/charts``.
    repository_dir: Path | None = None
    #: Serve the directory as a Helm HTTP repository through the gateway.
    serve: bool = True
    #: URL path the repository is served at; ``None`` = ``/charts`` for the first served local
    #: instance and ``/charts/<instance>`` for the others.
    serve_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9/_-]*[A-Za-z0-9_-]$")


class _Credentials(ConfigSection):
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


class _ObjectStorage(ConfigSection):
    """Charts and an ``index.yaml`` in a bucket (container) under a prefix, as the helm-s3 and
    helm-gcs plugins lay them out (``netweave_helm.storage.objectstore``). Any string may be
    ``${VAR}`` (expanded by the gateway's configuration loader); credentials left out come
    from the cloud's default chain (environment, instance role, workload identity)."""

    #: ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``az://container/prefix``.
    repository_url: str = Field(
        validation_alias=AliasChoices("repositoryUrl", "repository_url", "url")
    )
    #: Another endpoint than the cloud's (an S3-compatible store, an emulator, a private link).
    endpoint: str | None = None
    #: Refused TLS certificates are accepted (testing only).
    insecure_skip_tls_verify: bool = False
    #: PEM file of the CA that signs the endpoint's certificate (besides the system's).
    ca_file: Path | None = None
    #: Seconds after which an upload's or delete's unfinished claim on a chart version (a
    #: replica that died mid-way) may be taken over.
    claim_ttl: float = Field(default=900.0, gt=0, le=86_400)

    #: URL schemes of the kind, the first the usual one.
    _schemes: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _check_url(self) -> _ObjectStorage:
        parts = urlsplit(self.repository_url)
        if parts.scheme not in self._schemes or not parts.netloc or parts.query:
            raise ValueError(f"repositoryUrl must look like {self._schemes[0]}://bucket[/prefix]")
        self.repository_url = self.repository_url.rstrip("/")
        return self

    @property
    def bucket(self) -> str:
        return urlsplit(self.repository_url).netloc

    @property
    def prefix(self) -> str:
        return urlsplit(self.repository_url).path.strip("/")


class S3Storage(_ObjectStorage):
    """Amazon S3 or an S3-compatible store (``endpoint``)."""

    kind: Literal["s3"] = "s3"
    _schemes: ClassVar[tuple[str, ...]] = ("s3",)
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    #: ``bucket.host`` requests instead of ``host/bucket``; by default only without endpoint.
    virtual_hosted_style: bool | None = None

    @model_validator(mode="after")
    def _key_pair(self) -> S3Storage:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("accessKeyId and secretAccessKey go together")
        return self


class GcsStorage(_ObjectStorage):
    """Google Cloud Storage."""

    kind: Literal["gcs"] = "gcs"
    _schemes: ClassVar[tuple[str, ...]] = ("gs", "gcs")
    #: A service account key (the JSON document); else the default chain.
    service_account_key: SecretStr | None = None
    #: A file holding the service account key.
    service_account_path: Path | None = None

    @model_validator(mode="after")
    def _one_key(self) -> GcsStorage:
        if self.service_account_key is not None and self.service_account_path is not None:
            raise ValueError("give serviceAccountKey or serviceAccountPath, not both")
        return self


class AzureStorage(_ObjectStorage):
    """Azure Blob Storage (``az://container/prefix``)."""

    kind: Literal["azure"] = "azure"
    _schemes: ClassVar[tuple[str, ...]] = ("az", "azure")
    account_name: str | None = None
    account_key: SecretStr | None = None
    #: A SAS token (query string form), an alternative to the account key.
    sas_token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> AzureStorage:
        if self.account_key is not None and self.sas_token is not None:
            raise ValueError("give accountKey or sasToken, not both")
        return self


ObjectStorage = S3Storage | GcsStorage | AzureStorage

Storage = Annotated[
    LocalStorage
    | OciStorage
    | ChartMuseumStorage
    | HttpStorage
    | S3Storage
    | GcsStorage
    | AzureStorage,
    Field(discriminator="kind"),
]


class DependencyRepository(ConfigSection):
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


class ArchiveLimits(ConfigSection):
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


class LintSettings(ConfigSection):
    #: Treat lint warnings as errors (refuse the upload).
    strict: bool = False
    #: Kubernetes version lint checks ``kubeVersion`` constraints against, e.g. ``v1.30.0``.
    kube_version: str | None = Field(default=None, pattern=r"^v?\d+\.\d+(\.\d+)?$")


class RenderLimits(ConfigSection):
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


class ClusterSettings(ConfigSection):
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

    #: A directory of the operator's choosing for the instance's files; when not set, the one
    #: the gateway gives the instance (``DMSAdapter.data_dir``: ``<gateway data
    #: dir>/adapters/<instance>``). Never written by the loader.
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
    #: reach; when not given, the gateway's ``fetch`` block applies (``DMSAdapter.gateway_fetch``).
    fetch: FetchSettings | None = None
    #: Requests to remote repositories (OCI manifest API, ChartMuseum, HTTP, object stores)
    #: time out after this.
    http_timeout: float = Field(default=30.0, gt=0, le=3600)


__all__ = [
    "ArchiveLimits",
    "AzureStorage",
    "ChartMuseumStorage",
    "ClusterSettings",
    "DependencyRepository",
    "GcsStorage",
    "HelmConfig",
    "HttpStorage",
    "LintSettings",
    "LocalStorage",
    "ObjectStorage",
    "OciStorage",
    "RenderLimits",
    "S3Storage",
    "Storage",
]
