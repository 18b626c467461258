"""Gateway configuration: a YAML file plus the environment, validated with pydantic.

Shape (the design notes' form)::

    server: {host: 127.0.0.1, port: 8080}
    store: {url: postgresql+asyncpg://…}        # default: SQLite file in the data directory
    api: {token: ${NETWEAVE_API_TOKEN}, maxUploadBytes: 1073741824}
    fetch: {allowedCidrs: [10.20.0.0/16]}     # networks client-caused fetches may reach
    plugins:
      dms:
        - name: helm-local      # instance name, unique
          type: helm            # entry-point name in netweave.adapters
          enabled: true
          default: true
          config: { ... adapter specific ... }
      hooks: [my_company.netweave_policy]   # extra pluggy plugins (importable modules)

``${VAR}`` (or ``${VAR:-default}``; ``$$`` for a literal ``$``) in any string value is replaced
from the environment before validation; a variable that is not set and has no default is a
configuration error naming it. Secrets are kept as ``SecretStr`` so they never print, and every
value taken from a secret-looking variable (``*TOKEN*``, ``*PASSWORD*``, ``*SECRET*``, ``*KEY*``)
is registered with :func:`netweave.logging.register_secret` so no log line shows it.

Where settings come from, later wins:

1. embedded defaults (no file): SQLite in the data directory and, if the ``helm`` entry point
   is installed, one instance ``helm-local`` (type ``helm``, default, local chart storage);
   a file without ``plugins.dms`` keeps that instance (``dms: []`` configures none);
2. the YAML file: ``config_path`` argument, else ``NETWEAVE_CONFIG``, else
   ``<data dir>/netweave.yaml`` when it exists;
3. the environment: ``NETWEAVE_DATA_DIR``, ``NETWEAVE_API_TOKEN`` (``api.token``),
   ``NETWEAVE_STORE_URL`` (``store.url``), ``NETWEAVE_HOST``, ``NETWEAVE_PORT``,
   ``NETWEAVE_LOG_FORMAT``, ``NETWEAVE_LOG_LEVEL``; ``NETWEAVE_ADAPTERS`` (comma list of instance
   names: only those stay enabled) and ``NETWEAVE_DISABLED_ADAPTERS`` (instance names to
   disable);
4. arguments of :func:`load_settings` (the CLI's ``--data-dir``, ``--host``, ``--port``).
"""

from __future__ import annotations

import copy
import importlib.metadata
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

# The gateway's sections follow the rules of an adapter's config block (camelCase keys,
# unknown keys refused): one base for both.
from netweave.adapters.base import ConfigSection
from netweave.logging import register_secret

_log = logging.getLogger("netweave.config")

CONFIG_ENV = "NETWEAVE_CONFIG"
DATA_DIR_ENV = "NETWEAVE_DATA_DIR"
CONFIG_FILE_NAME = "netweave.yaml"
DEFAULT_DATA_DIR = Path(".netweave")
ADAPTER_GROUP = "netweave.adapters"


class ConfigError(Exception):
    """The configuration cannot be used. ``errors`` lists one readable line per problem
    (a field path and what is wrong); no line ever contains a configured value."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


class ServerTlsSettings(ConfigSection):
    """``server.tls``: TLS (and mTLS with ``clientAuth``) in uvicorn; see docs/security.md."""

    cert_file: Path
    key_file: Path
    key_password: SecretStr | None = None
    #: CA bundle that signs client certificates (needed for ``clientAuth`` other than none).
    ca_file: Path | None = None
    client_auth: Literal["none", "optional", "required"] = "none"

    @model_validator(mode="after")
    def _ca_for_client_auth(self) -> ServerTlsSettings:
        if self.client_auth != "none" and self.ca_file is None:
            raise ValueError("clientAuth needs caFile (the CA that signs client certificates)")
        return self


class ServerSettings(ConfigSection):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tls: ServerTlsSettings | None = None
    #: The event loop ``netweave serve`` runs on. ``asyncio`` (the default) answers requests
    #: in arrival order under load; ``uvloop`` spends ~10 % less CPU per request but, once the
    #: process is saturated, leaves a few requests waiting several rounds (benches E1/P2 at
    #: c=32: p99 4-5x the median, against 1.1-1.4x on ``asyncio``).
    loop: Literal["asyncio", "uvloop"] = "asyncio"


class StoreSettings(ConfigSection):
    #: ``sqlite:///path`` or ``postgresql://…``; ``None`` = ``sqlite:///<data_dir>/netweave.db``.
    url: SecretStr | None = None
    echo: bool = False


JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
_DEFAULT_JWT_ALGORITHMS: list[JwtAlgorithm] = ["RS256", "ES256"]


class JwtSettings(ConfigSection):
    """``api.jwt``: verify bearer JWTs (signature from the issuer's JWKS, iss, aud, exp, nbf)."""

    issuer: str = Field(min_length=1)
    audience: str | list[str] = Field(min_length=1)
    jwks_url: str = Field(pattern=r"^https?://")
    #: Clock skew tolerated on exp/nbf/iat, seconds.
    leeway: float = Field(default=30.0, ge=0, le=600)
    #: Asymmetric algorithms only: a JWKS holds public keys (and "none" is never accepted).
    algorithms: list[JwtAlgorithm] = Field(default_factory=lambda: _DEFAULT_JWT_ALGORITHMS[:])
    #: Keys are refetched after this long, and on an unknown ``kid`` at most once per
    #: ``jwks_min_refresh_seconds`` (a flood of forged kids cannot hammer the issuer).
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    jwks_min_refresh_seconds: float = Field(default=30.0, ge=0)
    jwks_timeout: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _some_algorithm(self) -> JwtSettings:
        if not self.algorithms:
            raise ValueError("algorithms must name at least one algorithm")
        return self


class RateLimitSettings(ConfigSection):
    """``api.rateLimit``: per client (token subject, else client IP) on mutating routes."""

    enabled: bool = False
    #: At most ``requests`` per ``window_seconds`` (a token bucket: bursts up to ``requests``).
    requests: int = Field(default=600, ge=1, le=1_000_000)
    window_seconds: float = Field(default=60.0, gt=0, le=86_400)


class ApiSettings(ConfigSection):
    #: Static bearer token (scopes: all). With none and no stored token, one is generated.
    token: SecretStr | None = None
    max_upload_bytes: int = Field(default=1 << 30, ge=1)
    #: JSON bodies larger than this are refused with 413.
    max_json_bytes: int = Field(default=4 << 20, ge=1024)
    #: ``public_url`` is used in ``Location`` headers and callbacks when behind a proxy.
    public_url: str | None = None
    #: OAuth2 bearer JWT verification (production); static/stored tokens keep working.
    jwt: JwtSettings | None = None
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)


class OperationSettings(ConfigSection):
    #: Operations run at once per replica. Waiting on backends, not CPU, so the adapters' own
    #: limits (the Helm adapter's ``cluster.maxConcurrency``, 16) bound the backend work; the
    #: default is twice that, so operations already started wait at the adapter's limit and
    #: each backend slot is refilled the moment it frees, not after a claim and a start.
    workers: int = Field(default=32, ge=1, le=256)
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval: float = Field(default=0.5, gt=0)
    #: An operation failing with a retryable error is retried this many times, then FAILED_TEMP.
    max_attempts: int = Field(default=3, ge=1, le=100)


class NotificationSettings(ConfigSection):
    """``notifications``: delivery of subscription events from the outbox."""

    #: Callback URLs resolving to loopback/private/link-local/unspecified addresses are refused
    #: unless this is true or the address is inside ``allowed_cidrs``. Cloud metadata addresses
    #: are refused unless listed in ``allowed_cidrs`` explicitly.
    allow_private_callbacks: bool = False
    allowed_cidrs: list[str] = Field(default_factory=list)
    #: Test the callback on subscription create (GET must answer 204, as ETSI does).
    test_callback: bool = True
    workers: int = Field(default=4, ge=1, le=256)
    poll_interval: float = Field(default=0.5, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=10.0, gt=0, le=300)
    #: Attempts per delivery before it is marked FAILED (and logged).
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)
    #: Deliveries wait this long after recording, so an event committed a little after it was
    #: stamped still takes its place in a deployment's order.
    settle_seconds: float = Field(default=0.5, ge=0, le=60)
    #: The gateway's client certificate and key (PEM) for callbacks: presented to every
    #: callback endpoint that asks for one, and what lets a subscription choose ETSI's
    #: ``TLS_CERT`` authentication (mutually authenticated TLS, https callbacks only).
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    #: CA bundle that callback endpoints' certificates are verified against (PEM), instead of
    #: the public CAs: an SMO behind the operator's own PKI.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _cidrs_parse(self) -> NotificationSettings:
        _check_cidrs(self.allowed_cidrs)
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("clientCertFile and clientKeyFile go together")
        return self


def _check_cidrs(cidrs: list[str]) -> None:
    for index, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"allowedCidrs[{index}] is not an IP network") from None


class ReconcileSettings(ConfigSection):
    """``reconcile``: the reconciler that keeps deployments' recorded state true between
    operations (``docs/health.md``)."""

    enabled: bool = True
    #: Seconds between two observations of a deployment of a polled adapter (no watch).
    interval: float = Field(default=30.0, gt=0, le=86_400)
    #: Seconds between two full observations of a watched adapter's deployments (the watch
    #: reports changes at once; this is the safety net). A full pass reads every deployment:
    #: 5 000 Helm releases cost about 140 s of one core's time (bench_health).
    resync: float = Field(default=3600.0, gt=0, le=86_400)
    #: Back-off cap after a backend did not answer.
    max_interval: float = Field(default=300.0, gt=0, le=86_400)
    #: Deployments are spread over this many shards; each replica leases its fair share.
    shards: int = Field(default=64, ge=1, le=4096)
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: Observations per second toward one adapter instance (token bucket), and at a time.
    rate: float = Field(default=20.0, gt=0, le=10_000)
    concurrency: int = Field(default=4, ge=1, le=256)
    #: Seconds between two reads of the deployment list (new and removed deployments).
    list_interval: float = Field(default=30.0, gt=0, le=3600)


class FetchSettings(ConfigSection):
    """``fetch``: fetches that content a client sends can cause (a package registered by URL,
    an OCI reference, a chart's dependency repositories; see ``netweave.fetching``). Hosts on
    loopback, private, link-local, metadata, multicast or reserved addresses are refused unless
    their address is inside one of ``allowed_cidrs`` (listed networks are allowed whatever
    they are, metadata addresses included). An adapter instance may set its own ``fetch``
    block; without one it gets this."""

    allowed_cidrs: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cidrs_parse(self) -> FetchSettings:
        _check_cidrs(self.allowed_cidrs)
        return self


class VnfPkgmSettings(ConfigSection):
    """``vnfpkgm``: the SOL005 package face. ``trust_anchor_files``: PEM files of the CA
    certificates a signed CSAR's signer must chain to (SOL004 security option 1); without
    any, a signed package is refused (its signer cannot be trusted), an unsigned one is
    onboarded as before."""

    trust_anchor_files: list[Path] = Field(default_factory=list)

    @model_validator(mode="after")
    def _anchors_load(self) -> VnfPkgmSettings:
        from cryptography import x509

        for path in self.trust_anchor_files:
            try:
                x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise ValueError(f"trustAnchorFiles: {path}: {exc}") from None
        return self


class AdapterInstanceSettings(ConfigSection):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    type: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    enabled: bool = True
    default: bool = False
    #: Validated by the adapter class's ``Config`` model at load. Kept out of ``repr`` because
    #: it may hold interpolated secrets the core cannot recognise.
    config: dict[str, Any] = Field(default_factory=dict, repr=False)


class PluginSettings(ConfigSection):
    dms: list[AdapterInstanceSettings] = Field(default_factory=list)
    hooks: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique_one_default(self) -> PluginSettings:
        seen: dict[str, int] = {}
        problems: list[str] = []
        for index, instance in enumerate(self.dms):
            if instance.name in seen:
                problems.append(
                    f"instance name {instance.name!r} is used by dms[{seen[instance.name]}] "
                    f"and dms[{index}]; names must be unique"
                )
            seen.setdefault(instance.name, index)
        defaults = [f"dms[{i}] ({d.name})" for i, d in enumerate(self.dms) if d.default]
        if len(defaults) > 1:
            problems.append(f"at most one instance may be default: true, found {defaults}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Settings(ConfigSection):
    data_dir: Path = Path(".netweave")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    operations: OperationSettings = Field(default_factory=OperationSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    vnfpkgm: VnfPkgmSettings = Field(default_factory=VnfPkgmSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)

    _source: str = PrivateAttr(default="embedded defaults")

    @property
    def source(self) -> str:
        """Where these settings came from: a file path, or ``embedded defaults``."""
        return self._source

    def enabled_instances(self) -> list[AdapterInstanceSettings]:
        return [i for i in self.plugins.dms if i.enabled]

    def store_url(self) -> str:
        if self.store.url is not None:
            return self.store.url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'netweave.db').resolve()}"


# -- loading -------------------------------------------------------------------------------

_VAR_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
_SECRET_VAR_RE = re.compile(r"(?i)(TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL|AUTH)")

#: (environment variable, path in the settings document). Applied after the file.
_ENV_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("NETWEAVE_API_TOKEN", ("api", "token")),
    ("NETWEAVE_STORE_URL", ("store", "url")),
    ("NETWEAVE_HOST", ("server", "host")),
    ("NETWEAVE_PORT", ("server", "port")),
    ("NETWEAVE_LOG_FORMAT", ("log_format",)),
    ("NETWEAVE_LOG_LEVEL", ("log_level",)),
)


def embedded_defaults() -> dict[str, Any]:
    """The document used when no configuration file exists (product spec §6)."""
    document: dict[str, Any] = {}
    if helm_installed():
        document["plugins"] = {
            "dms": [
                {
                    "name": "helm-local",
                    "type": "helm",
                    "enabled": True,
                    "default": True,
                    # The Helm adapter keeps its chart repository under the data directory
                    # (the loader injects ``data_dir``, see netweave.config.loading).
                    "config": {"storage": {"kind": "local"}},
                }
            ]
        }
    return document


def helm_installed() -> bool:
    return bool(importlib.metadata.entry_points(group=ADAPTER_GROUP, name="helm"))


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validation_messages(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error: field path and message, never the input value."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        path = _format_loc(tuple(error["loc"]))
        if prefix:
            path = prefix if path == "(top level)" else f"{prefix}.{path}"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return lines


def _interpolate(
    value: Any, path: str, env: Mapping[str, str], errors: list[str], secrets: list[str]
) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, f"{path}.{k}" if path else str(k), env, errors, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", env, errors, secrets) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name, default = match.group(2), match.group(3)
        found = env.get(name)
        if found is None or (found == "" and default is not None):
            if default is None:
                errors.append(
                    f"{path}: environment variable {name} is not set "
                    f"(write ${{{name}:-default}} to give a default)"
                )
                return ""
            found = default
        if _SECRET_VAR_RE.search(name):
            secrets.append(found)
        return found

    result = _VAR_RE.sub(replace, value)
    leftover = _VAR_RE.sub("", value)
    if "${" in leftover:
        errors.append(f"{path}: malformed variable reference (use ${{NAME}} or ${{NAME:-default}})")
    return result


def _set_path(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = document
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = node.get(to_camel(key))
        if not isinstance(child, dict):
            child = {}
        node.pop(to_camel(key), None)
        node[key] = child
        node = child
    last = path[-1]
    # The file may spell the key in camelCase; never leave both spellings.
    node.pop(to_camel(last), None)
    node[last] = value


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base.pop(to_camel(key), None)
            base[key] = copy.deepcopy(value)


def _names(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


def _read_document(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [f"configuration file {path} does not exist"]) from None
    except OSError as exc:
        raise ConfigError(source, [f"cannot read {path}: {exc.strerror}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # problem + position only: the snippet yaml would print may contain a literal secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(source, [f"YAML {problem}{where}"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            source, [f"the top level must be a mapping, not {type(document).__name__}"]
        )
    return document


def _keep_default_adapters(document: dict[str, Any]) -> None:
    """A file that says nothing about adapter instances (no ``plugins``, or ``plugins``
    without ``dms``) keeps the embedded default ones: a file written for the store or the API
    must not silently turn the Helm adapter off. ``dms: []`` turns every instance off."""
    default = embedded_defaults().get("plugins")
    if default is None:
        return
    plugins = document.get("plugins")
    if plugins is None:
        document["plugins"] = default
    elif isinstance(plugins, dict) and "dms" not in plugins:
        plugins["dms"] = default["dms"]


def _apply_adapter_switches(
    document: dict[str, Any], env: Mapping[str, str], errors: list[str]
) -> None:
    allow_raw = env.get("NETWEAVE_ADAPTERS")
    deny = set(_names(env.get("NETWEAVE_DISABLED_ADAPTERS", "")))
    if allow_raw is None and not deny:
        return
    plugins = document.get("plugins")
    dms = plugins.get("dms") if isinstance(plugins, dict) else None
    if not isinstance(dms, list):
        dms = []
    known = [d.get("name") for d in dms if isinstance(d, dict)]
    if allow_raw is not None:
        allow = set(_names(allow_raw))
        unknown = sorted(allow - set(known))
        if unknown:
            errors.append(
                f"NETWEAVE_ADAPTERS names instance(s) {unknown} that are not configured; "
                f"configured: {sorted(n for n in known if isinstance(n, str))}"
            )
        for entry in dms:
            if isinstance(entry, dict) and entry.get("name") not in allow:
                entry["enabled"] = False
    for entry in dms:
        if isinstance(entry, dict) and entry.get("name") in deny:
            entry["enabled"] = False
    for name in sorted(deny - set(known)):
        _log.warning("NETWEAVE_DISABLED_ADAPTERS names %r, which is not configured", name)


def load_settings(
    config_path: Path | None = None,
    *,
    data_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read, interpolate, override and validate the gateway settings (see the module doc).

    ``env`` defaults to ``os.environ`` (tests pass their own). Raises :class:`ConfigError`.
    """
    env = os.environ if env is None else env
    env_data_dir = env.get(DATA_DIR_ENV) or None
    base_dir = data_dir if data_dir is not None else Path(env_data_dir or DEFAULT_DATA_DIR)

    path: Path | None
    if config_path is not None:
        path = Path(config_path)
    elif env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    elif (base_dir / CONFIG_FILE_NAME).is_file():
        path = base_dir / CONFIG_FILE_NAME
    else:
        path = None

    if path is not None:
        source = str(path)
        document = _read_document(path)
        _keep_default_adapters(document)
    else:
        source = "embedded defaults"
        document = embedded_defaults()

    errors: list[str] = []
    secrets: list[str] = []
    document = _interpolate(document, "", env, errors, secrets)

    # A data_dir written in the file is relative to the file; from the environment or the
    # command line, relative to the working directory.
    file_dir = document.pop("data_dir", document.pop("dataDir", None))
    if data_dir is not None:
        resolved_dir = Path(data_dir)
    elif env_data_dir:
        resolved_dir = Path(env_data_dir)
    elif isinstance(file_dir, str) and file_dir and path is not None:
        resolved_dir = path.parent / Path(file_dir).expanduser()
    elif file_dir is not None and not isinstance(file_dir, str):
        errors.append("data_dir: must be a path string")
        resolved_dir = DEFAULT_DATA_DIR
    else:
        resolved_dir = DEFAULT_DATA_DIR
    document["data_dir"] = str(resolved_dir.expanduser().absolute())

    from_env: dict[str, str] = {}
    for variable, field_path in _ENV_FIELDS:
        value = env.get(variable)
        if value:
            _set_path(document, field_path, value)
            # Error locations use the key as given, and env values are set in snake_case.
            from_env[".".join(field_path)] = variable
            if field_path in (("api", "token"), ("store", "url")):
                secrets.append(value)
    if overrides:
        _deep_merge(document, overrides)
    # Last, so the switches apply to the instance list as finally configured.
    _apply_adapter_switches(document, env, errors)

    for secret in secrets:
        register_secret(secret)
    try:
        settings = Settings.model_validate(document)
    except ValidationError as exc:
        for line in validation_messages(exc):
            # Say where a bad value came from when it was not the file.
            origin = from_env.get(line.split(":", 1)[0])
            errors.append(f"{line} (set by {origin})" if origin else line)
    if errors:
        raise ConfigError(source, errors)
    register_secret(settings.api.token)
    register_secret(settings.store.url)
    if settings.server.tls is not None:
        register_secret(settings.server.tls.key_password)
    # Absolute, so that a later change of working directory cannot move the store.
    settings.data_dir = settings.data_dir.expanduser().absolute()
    settings._source = source
    return settings


__all__ = [
    "ADAPTER_GROUP",
    "AdapterInstanceSettings",
    "ApiSettings",
    "ConfigError",
    "FetchSettings",
    "JwtSettings",
    "NotificationSettings",
    "OperationSettings",
    "PluginSettings",
    "RateLimitSettings",
    "ServerSettings",
    "ServerTlsSettings",
    "Settings",
    "StoreSettings",
    "embedded_defaults",
    "helm_installed",
    "load_settings",
    "validation_messages",
]
