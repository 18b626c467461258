"""``netweave``: serve the gateway, inspect adapters, check configuration, print the OpenAPI.

Exit codes: 0 success; 1 an unexpected failure; 2 the configuration or an adapter is not
usable (the message says what to change or install); 3 the server failed to start.

Heavy modules (the API, uvicorn) are imported inside the commands that need them, so
``netweave --help`` and ``netweave config check`` stay quick.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from netweave.__about__ import CONTRACT_VERSION, __version__
from netweave.cli.adapter import adapter_group
from netweave.cli.client import CLIENT_GROUPS

if TYPE_CHECKING:
    from litestar import Litestar

    from netweave.config import ServerTlsSettings, Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CONFIG = 2
EXIT_STARTUP = 3
#: Longest wait for uvicorn to bind before the listening line is given up (the server keeps
#: running; only the line is skipped).
_STARTUP_WAIT_SECONDS = 120.0


def _settings_options(func: F) -> F:
    func = click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="NETWEAVE_DATA_DIR",
        help="Gateway data directory (SQLite store, local charts, generated token). Env: "
        "NETWEAVE_DATA_DIR. Default: ./.netweave in the current directory, so starting "
        "elsewhere gives another store and token.",
    )(func)
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="NETWEAVE_CONFIG",
        help="YAML configuration file. Env: NETWEAVE_CONFIG. Default: <data dir>/netweave.yaml "
        "if it exists, else the embedded defaults.",
    )(func)
    return func


def _fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(
    config_path: Path | None, data_dir: Path | None, overrides: dict[str, Any] | None = None
) -> Settings:
    from netweave.config import ConfigError, load_settings

    try:
        return load_settings(config_path, data_dir=data_dir, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="netweave", message=f"%(prog)s %(version)s (contract {CONTRACT_VERSION})"
)
def main() -> None:
    """netweave: an O-RAN O2-DMS gateway with pluggable backend adapters."""


main.add_command(adapter_group)
for _group in CLIENT_GROUPS:  # the HTTP client commands, also under their singular names
    main.add_command(_group)
    main.add_command(_group, name=str(_group.name).removesuffix("s"))


# -- serve ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8080; 0: any)."
)
@_settings_options
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default=None,
    help="Log format (default: json unless stderr is a terminal). Env: NETWEAVE_LOG_FORMAT.",
)
@click.option("--ssl-certfile", type=click.Path(path_type=Path), default=None, help="TLS cert.")
@click.option("--ssl-keyfile", type=click.Path(path_type=Path), default=None, help="TLS key.")
@click.option(
    "--ssl-ca-certs",
    type=click.Path(path_type=Path),
    default=None,
    help="CA bundle for client certificates (mTLS).",
)
@click.option(
    "--ssl-client-auth",
    type=click.Choice(["none", "optional", "required"]),
    default=None,
    help="Ask clients for a certificate (mTLS). See docs/security.md.",
)
def serve(
    host: str | None,
    port: int | None,
    config_path: Path | None,
    data_dir: Path | None,
    log_format: str | None,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
    ssl_ca_certs: Path | None,
    ssl_client_auth: str | None,
) -> None:
    """Serve the O2-DMS API (embedded defaults when no configuration exists)."""
    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if host is not None:
        server["host"] = host
    if port is not None:
        server["port"] = port
    tls = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in (
            ("cert_file", ssl_certfile),
            ("key_file", ssl_keyfile),
            ("ca_file", ssl_ca_certs),
            ("client_auth", ssl_client_auth),
        )
        if value is not None
    }
    if tls:
        server["tls"] = tls
    if server:
        overrides["server"] = server
    if log_format is not None:
        overrides["log_format"] = log_format
    settings = _load(config_path, data_dir, overrides)

    from netweave.logging import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create the data directory {settings.data_dir}: {exc.strerror}")
    pm, registry = _load_adapters(settings)
    app = _create_app(settings, registry=registry, plugin_manager=pm)
    # ``serve`` owns its process: whatever a plugin or adapter attached to the root logger
    # while loading, the process's logs go through netweave's handler alone.
    configure_logging(settings.log_format, settings.log_level, exclusive=True)
    _run(app, settings)


def _load_adapters(settings: Settings) -> tuple[Any, Any]:
    """Load adapters before the server starts, so a missing or broken one is a plain message
    and exit code 2, not a traceback out of the ASGI lifespan."""
    from netweave.config.loading import AdapterLoadError, load_adapters
    from netweave.config.plugins import PluginRegistrationError, make_plugin_manager

    try:
        pm = make_plugin_manager(settings)
        return pm, load_adapters(settings, pm)
    except (AdapterLoadError, PluginRegistrationError) as exc:
        _fail(str(exc))


def _create_app(settings: Settings, **kwargs: Any) -> Litestar:
    try:
        from netweave.api.app import create_app
    except ImportError as exc:
        _fail(f"the HTTP API is not available in this installation: {exc}", 1)
    return create_app(settings, **kwargs)


def uvicorn_tls_options(tls: ServerTlsSettings | None) -> dict[str, Any]:
    """``server.tls`` as uvicorn ``Config`` keywords (empty without TLS)."""
    if tls is None:
        return {}
    import ssl

    requirement = {
        "none": ssl.CERT_NONE,
        "optional": ssl.CERT_OPTIONAL,
        "required": ssl.CERT_REQUIRED,
    }[tls.client_auth]
    options: dict[str, Any] = {
        "ssl_certfile": str(tls.cert_file),
        "ssl_keyfile": str(tls.key_file),
        "ssl_cert_reqs": requirement,
    }
    if tls.key_password is not None:
        options["ssl_keyfile_password"] = tls.key_password.get_secret_value()
    if tls.ca_file is not None:
        options["ssl_ca_certs"] = str(tls.ca_file)
    return options


def _run(app: Litestar, settings: Settings) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,  # logging is configured above; uvicorn's loggers propagate to it
        access_log=False,  # the API writes its own, cheaper access line (netweave.access)
        lifespan="on",
        server_header=False,
        **uvicorn_tls_options(settings.server.tls),
    )
    server = uvicorn.Server(config)

    async def serve_and_announce() -> None:
        task = asyncio.create_task(server.serve())
        steps = int(_STARTUP_WAIT_SECONDS / 0.01)
        for _ in range(steps):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if server.started:
            for listener in server.servers:
                for sock in listener.sockets:
                    address = sock.getsockname()
                    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
                    scheme = "https" if settings.server.tls is not None else "http"
                    click.echo(f"netweave listening on {scheme}://{shown}:{address[1]}")
            click.echo(f"data directory: {settings.data_dir}; configuration: {settings.source}")
            # Supervisors and tests wait for these lines on a pipe: don't leave them buffered.
            sys.stdout.flush()
            # What start loaded (modules, app, adapters, their indexes) lives as long as the
            # process: kept out of the collector's full passes, which otherwise walk it all
            # again and again under load (pauses of the event loop at every one).
            gc.collect()
            gc.freeze()
        await task

    # ``server.loop``: the standard library's loop unless uvloop is asked for (see the setting).
    loop_factory = asyncio.new_event_loop if settings.server.loop == "asyncio" else _uvloop()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve_and_announce())
    if not server.started:
        _fail("the server did not start (see the log above)", EXIT_STARTUP)


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        _fail("server.loop is uvloop, but uvloop is not installed (pip install uvloop)")
    return uvloop.new_event_loop


# -- adapters ------------------------------------------------------------------------------


def adapter_overview(settings: Settings | None) -> dict[str, Any]:
    """What is installed in ``netweave.adapters`` and what the configuration uses, without
    importing any adapter."""
    from netweave.config import ADAPTER_GROUP
    from netweave.config.loading import KNOWN_ADAPTERS, install_hint

    instances = settings.plugins.dms if settings is not None else []
    installed = []
    installed_types = set()
    for ep in sorted(
        importlib.metadata.entry_points(group=ADAPTER_GROUP), key=lambda e: (e.name, e.value)
    ):
        installed_types.add(ep.name)
        installed.append(
            {
                "type": ep.name,
                "value": ep.value,
                "distribution": ep.dist.metadata["Name"] if ep.dist is not None else None,
                "version": ep.dist.version if ep.dist is not None else None,
                "instances": [
                    {"name": i.name, "enabled": i.enabled, "default": i.default}
                    for i in instances
                    if i.type == ep.name
                ],
            }
        )
    missing: dict[str, dict[str, Any]] = {}
    for instance in instances:
        if instance.type in installed_types:
            continue
        entry = missing.setdefault(
            instance.type,
            {"type": instance.type, "instances": [], "hint": install_hint(instance.type)},
        )
        entry["instances"].append({"name": instance.name, "enabled": instance.enabled})
    available = [
        {"type": t, "distribution": d, "hint": install_hint(t)}
        for t, d in sorted(KNOWN_ADAPTERS.items())
        if t not in installed_types and t not in missing
    ]
    return {
        "group": ADAPTER_GROUP,
        "configuration": settings.source if settings is not None else None,
        "installed": installed,
        "missing": list(missing.values()),
        "available": available,
    }


def _describe_instances(instances: list[dict[str, Any]]) -> str:
    if not instances:
        return "not configured"
    parts = []
    for i in instances:
        flags = [] if i["enabled"] else ["disabled"]
        if i.get("default"):
            flags.append("default")
        parts.append(i["name"] + (f" ({', '.join(flags)})" if flags else ""))
    return "instances: " + ", ".join(parts)


@main.command()
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def adapters(config_path: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """List installed adapters, which instances use them, and install hints."""
    from netweave.config import ConfigError, load_settings

    error: ConfigError | None = None
    settings: Settings | None
    try:
        settings = load_settings(config_path, data_dir=data_dir)
    except ConfigError as exc:
        settings, error = None, exc
    overview = adapter_overview(settings)
    if as_json:
        if error is not None:
            overview["configurationErrors"] = error.errors
        click.echo(json.dumps(overview, indent=2))
    else:
        click.echo(f"Adapters (entry-point group {overview['group']}):")
        if not overview["installed"]:
            click.echo("  none installed")
        for a in overview["installed"]:
            click.echo(
                f"  {a['type']:<10} {a['distribution']} {a['version']}  ({a['value']})  "
                f"{_describe_instances(a['instances'])}"
            )
        for m in overview["missing"]:
            click.echo(
                f"  {m['type']:<10} NOT INSTALLED, {_describe_instances(m['instances'])}: "
                f"{m['hint']}"
            )
        if overview["available"]:
            click.echo("Other first-party adapters:")
            for a in overview["available"]:
                click.echo(f"  {a['type']:<10} {a['hint']}")
        if settings is not None:
            click.echo(f"Configuration: {settings.source}")
    if error is not None:
        _fail(str(error))
    if any(i["enabled"] for m in overview["missing"] for i in m["instances"]):
        sys.exit(EXIT_CONFIG)


# -- config check --------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Inspect the gateway configuration."""


def _store_summary(settings: Settings) -> str:
    if settings.store.url is None:
        return f"SQLite file {settings.data_dir / 'netweave.db'}"
    scheme = settings.store.url.get_secret_value().split("://", 1)[0]
    return f"{scheme} (URL from configuration, not shown)"


@config.command("check")
@_settings_options
def config_check(config_path: Path | None, data_dir: Path | None) -> None:
    """Validate the configuration and the enabled adapters' configs; exit 2 on errors."""
    from netweave.config.loading import AdapterLoadError, resolve_adapters
    from netweave.config.plugins import PluginRegistrationError, make_plugin_manager

    settings = _load(config_path, data_dir)
    try:
        make_plugin_manager(settings)
        loaded = resolve_adapters(settings)
    except (AdapterLoadError, PluginRegistrationError) as exc:
        _fail(f"{exc}\n(configuration: {settings.source})")
    missing = [
        f"adapter instance {name!r}: {field} {path} does not exist"
        for name, (_, adapter_config) in loaded.configs.items()
        for field, path in _kubeconfig_paths(adapter_config)
        if not path.is_file()
    ]
    if missing:
        _fail("\n".join(missing) + f"\n(configuration: {settings.source})")
    click.echo(f"configuration OK ({settings.source})")
    click.echo(f"  data directory: {settings.data_dir}")
    click.echo(f"  listen: {settings.server.host}:{settings.server.port}")
    click.echo(f"  store: {_store_summary(settings)}")
    click.echo(f"  API token: {_token_summary(settings)}")
    click.echo(f"  fetches caused by clients: {_fetch_summary(settings)}")
    enabled = settings.enabled_instances()
    if enabled:
        names = [f"{i.name} ({i.type}{', default' if i.default else ''})" for i in enabled]
        click.echo(f"  adapters: {', '.join(names)}")
    else:
        click.echo(f"  adapters: none enabled ({_why_no_adapter(settings)})")
    disabled = [i.name for i in settings.plugins.dms if not i.enabled]
    if disabled:
        click.echo(f"  disabled: {', '.join(disabled)}")
    if settings.plugins.hooks:
        click.echo(f"  hook plugins: {', '.join(settings.plugins.hooks)}")


def _fetch_summary(settings: Settings) -> str:
    cidrs = settings.fetch.allowed_cidrs
    if not cidrs:
        return "public addresses only (fetch.allowedCidrs is empty)"
    return f"public addresses and fetch.allowedCidrs {', '.join(cidrs)}"


def _kubeconfig_paths(model: object, prefix: str = "") -> list[tuple[str, Path]]:
    """Every configured ``kubeconfig`` path in an adapter's config, nested models included
    (adapters name the field so by convention); a missing file fails only at the first call."""
    from pydantic import BaseModel

    found: list[tuple[str, Path]] = []
    if not isinstance(model, BaseModel):
        return found
    for name in type(model).model_fields:
        value = getattr(model, name)
        where = f"{prefix}{name}"
        if name == "kubeconfig" and isinstance(value, Path):
            found.append((where, value))
        elif isinstance(value, BaseModel):
            found.extend(_kubeconfig_paths(value, f"{where}."))
    return found


def _token_summary(settings: Settings) -> str:
    """Whether an API token exists: configured, or generated earlier and stored hashed."""
    if settings.api.token is not None:
        return "set"
    if settings.store.url is not None:
        return "not configured (tokens stored in the database are used; not checked here)"
    import sqlite3

    db = settings.data_dir / "netweave.db"
    if not db.is_file():
        return "not set (generated at first start)"
    try:
        # Read-only: config check never creates or changes the store.
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as connection:
            (count,) = connection.execute("SELECT count(*) FROM api_tokens").fetchone()
    except sqlite3.Error:
        return f"not configured (could not read {db})"
    if count:
        return f"not configured; {count} stored (generated at first start or added), in {db}"
    return "not set (generated at first start)"


def _why_no_adapter(settings: Settings) -> str:
    """Exactly what turned the adapters off, for ``config check``."""
    if settings.plugins.dms:
        return "every instance in plugins.dms is disabled"
    from netweave.config import helm_installed

    if helm_installed():
        return f"plugins.dms is empty in {settings.source}"
    from netweave.config.loading import install_hint

    return f"{install_hint('helm')} for the embedded default, or configure plugins.dms"


# -- openapi -------------------------------------------------------------------------------


@main.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
def openapi(output: Path | None) -> None:
    """Print the OpenAPI document of the gateway's HTTP API (JSON).

    The document does not depend on the configured adapters: it is built with none, exactly as
    the committed ``openapi.json`` and ``/schema/openapi.json`` are.
    """
    from netweave.config import Settings
    from netweave.config.plugins import make_plugin_manager
    from netweave.config.registry import AdapterRegistry

    try:
        from netweave.api.openapi import openapi_document, render
    except ImportError as exc:
        _fail(f"the HTTP API is not available in this installation: {exc}", 1)
    app = _create_app(
        Settings(), registry=AdapterRegistry({}), plugin_manager=make_plugin_manager()
    )
    document = render(openapi_document(app))
    if output is None:
        click.echo(document, nl=False)
    else:
        output.write_text(document, encoding="utf-8")


__all__ = ["adapter_overview", "main"]
