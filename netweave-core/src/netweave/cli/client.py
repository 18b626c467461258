"""The ``netweave`` client commands: packages, deployments, operations over the HTTP API.

The server and token come from ``--url``/``--token`` or ``NETWEAVE_URL`` and
``NETWEAVE_API_TOKEN`` (``NETWEAVE_TOKEN`` also works). Output is a table for people, or
``--output json|yaml`` for scripts.

Exit codes (beyond the ``netweave`` ones): 4 the server refused the request (a 4xx problem,
shown readably); 5 the server failed or could not be reached; 6 ``operations wait`` saw the
operation end in a state other than COMPLETED, or did not see it end within ``--timeout``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, TypeVar

import click
import httpx
import yaml

from netweave.models.paths import API_PREFIX

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REFUSED = 4
EXIT_SERVER = 5
EXIT_OPERATION = 6
DEFAULT_URL = "http://127.0.0.1:8080"
API = API_PREFIX
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "FAILED_TEMP", "ROLLED_BACK"})
#: Per-request timeout; uploads and followed logs have none for reading (they may be long).
TIMEOUT = httpx.Timeout(30.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, read=None, write=None)


def _die(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Client:
    """A thin HTTP client: base URL, bearer token, problem bodies turned into exit codes."""

    def __init__(self, url: str, token: str | None, output: str) -> None:
        self.url = url.rstrip("/")
        self.output = output
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            _die(f"cannot reach {self.url}: {exc}", EXIT_SERVER)
        check(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None


def check(response: httpx.Response) -> None:
    """Exit with the problem's text when the server said no."""
    if response.status_code < 400:
        return
    response.read()
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    title = problem.get("title") or response.reason_phrase
    lines = [f"{response.status_code} {title}"]
    if problem.get("detail"):
        lines.append(str(problem["detail"]))
    for key, value in (problem.get("details") or {}).items():
        lines.append(f"  {key}: {value}")
    _die("\n".join(lines), EXIT_REFUSED if response.status_code < 500 else EXIT_SERVER)


# -- output ---------------------------------------------------------------------------------


def show(client: Client, data: Any, columns: list[str]) -> None:
    """``data`` (one object or a list of them) as JSON, YAML or a table of ``columns``."""
    if client.output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if client.output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=True), nl=False)
        return
    rows = data if isinstance(data, list) else [data]
    table = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


# -- options --------------------------------------------------------------------------------


def client_options(func: F) -> F:
    """``--url``, ``--token``, ``--output`` on a command."""
    func = click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json", "yaml"]),
        default="table",
        show_default=True,
        help="Table for people, JSON or YAML for scripts.",
    )(func)
    func = click.option(
        "--token",
        default=None,
        help="API token. Env: NETWEAVE_API_TOKEN (or NETWEAVE_TOKEN).",
    )(func)
    func = click.option(
        "--url",
        envvar="NETWEAVE_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The gateway's URL. Env: NETWEAVE_URL.",
    )(func)
    return func


def with_client(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the command the client options and call it with a :class:`Client` first."""

    @functools.wraps(func)
    def command(*args: Any, url: str, token: str | None, output: str, **kwargs: Any) -> Any:
        token = token or os.environ.get("NETWEAVE_API_TOKEN") or os.environ.get("NETWEAVE_TOKEN")
        with Client(url, token, output) as client:
            return func(client, *args, **kwargs)

    return client_options(command)


# -- packages -------------------------------------------------------------------------------

PACKAGE_COLUMNS = ["packageId", "name", "artifactVersion", "state", "adapter", "checksum"]


@click.group("packages")
def packages() -> None:
    """Deployment packages (charts): upload, list, get, delete, deprecate, restore."""


class ProgressReader:
    """A file read in chunks by httpx's multipart encoder, reporting each chunk: the archive
    streams from disk, so a large chart never sits whole in the client's memory."""

    def __init__(self, file: IO[bytes], report: Callable[[int], None]) -> None:
        self._file = file
        self._report = report

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._report(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()


def _ignore(_: int) -> None:
    """No progress to show (not a terminal)."""


def chart_identity(path: Path) -> tuple[str, str]:
    """Name and version from a Helm chart archive's ``Chart.yaml`` (the first one, top level)."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    stream = archive.extractfile(member)
                    meta = yaml.safe_load(stream) if stream else None
                    if isinstance(meta, dict) and meta.get("name") and meta.get("version"):
                        return str(meta["name"]), str(meta["version"])
                    break
    except (tarfile.TarError, yaml.YAMLError, OSError) as exc:
        raise click.UsageError(f"{path}: cannot read a chart from it ({exc})") from exc
    raise click.UsageError(
        f"{path}: no Chart.yaml with name and version; give --name and --version"
    )


@packages.command("upload")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--name", default=None, help="Package name (default: the chart's name).")
@click.option("--version", "version", default=None, help="Version (default: the chart's).")
@click.option("--adapter", default=None, help="Adapter instance to hold it.")
@click.option("--package-type", default=None, help="Package type (e.g. helm).")
@click.option("--description", default=None)
@with_client
def package_upload(
    client: Client,
    file: Path,
    name: str | None,
    version: str | None,
    adapter: str | None,
    package_type: str | None,
    description: str | None,
) -> None:
    """Upload a package archive (streamed, with a progress bar on a terminal)."""
    if name is None or version is None:
        chart_name, chart_version = chart_identity(file)
        name, version = name or chart_name, version or chart_version
    fields = {"name": name, "artifactVersion": version}
    for key, value in (
        ("adapter", adapter),
        ("packageType", package_type),
        ("description", description),
    ):
        if value is not None:
            fields[key] = value
    size = file.stat().st_size
    # The bar only on a terminal (stderr): a script's output stays the JSON/table alone.
    bar = click.progressbar(length=size, label=f"uploading {file.name}", file=sys.stderr)
    with file.open("rb") as handle, bar if sys.stderr.isatty() else nullcontext(bar):
        reader = ProgressReader(handle, bar.update if sys.stderr.isatty() else _ignore)
        response = client.request(
            "POST",
            f"{API}/nfDeploymentDescriptors",
            data=fields,
            files={"chart": (file.name, reader, "application/gzip")},
            timeout=STREAM_TIMEOUT,
        )
    show(client, response.json(), PACKAGE_COLUMNS)


@packages.command("list")
@click.option("--name", default=None)
@click.option("--state", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@with_client
def package_list(client: Client, name: str | None, state: str | None, limit: int) -> None:
    """List packages."""
    params: dict[str, Any] = {"limit": limit}
    if name:
        params["name"] = name
    if state:
        params["state"] = state
    body = client.json("GET", f"{API}/nfDeploymentDescriptors", params=params)
    show(client, body["items"], PACKAGE_COLUMNS)


@packages.command("get")
@click.argument("package_id")
@with_client
def package_get(client: Client, package_id: str) -> None:
    """One package."""
    show(client, client.json("GET", f"{API}/nfDeploymentDescriptors/{package_id}"), PACKAGE_COLUMNS)


@packages.command("delete")
@click.argument("package_id")
@click.option("--force", is_flag=True, help="Even when deployments use it (admin).")
@with_client
def package_delete(client: Client, package_id: str, force: bool) -> None:
    """Delete a package."""
    params = {"force": "true"} if force else {}
    client.request("DELETE", f"{API}/nfDeploymentDescriptors/{package_id}", params=params)
    click.echo(f"deleted {package_id}")


def _package_state(client: Client, package_id: str, state: str) -> None:
    body = client.json(
        "PATCH", f"{API}/nfDeploymentDescriptors/{package_id}", json={"state": state}
    )
    show(client, body, PACKAGE_COLUMNS)


@packages.command("deprecate")
@click.argument("package_id")
@with_client
def package_deprecate(client: Client, package_id: str) -> None:
    """Mark a package deprecated (no new deployments)."""
    _package_state(client, package_id, "DEPRECATED")


@packages.command("restore")
@click.argument("package_id")
@with_client
def package_restore(client: Client, package_id: str) -> None:
    """Make a deprecated package available again."""
    _package_state(client, package_id, "AVAILABLE")


# -- operations -----------------------------------------------------------------------------

OPERATION_COLUMNS = ["operationId", "operationType", "state", "deploymentId", "stateEnteredTime"]


@click.group("operations")
def operations() -> None:
    """Operation occurrences: list, get, wait, retry, fail, rollback."""


@operations.command("list")
@click.option("--deployment", "deployment_id", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@with_client
def operation_list(client: Client, deployment_id: str | None, limit: int) -> None:
    """List operations."""
    params: dict[str, Any] = {"limit": limit}
    if deployment_id:
        params["deploymentId"] = deployment_id
    show(client, client.json("GET", f"{API}/operations", params=params)["items"], OPERATION_COLUMNS)


@operations.command("get")
@click.argument("operation_id")
@with_client
def operation_get(client: Client, operation_id: str) -> None:
    """One operation."""
    show(client, client.json("GET", f"{API}/operations/{operation_id}"), OPERATION_COLUMNS)


def wait_for(client: Client, operation_id: str, timeout: float, interval: float = 0.5) -> Any:
    """Poll the operation until it is final (or ``timeout`` passes); show its state changes."""
    interactive = sys.stderr.isatty()
    deadline = time.monotonic() + timeout
    last = None
    body: Any = None
    while True:
        body = client.json("GET", f"{API}/operations/{operation_id}")
        state = body.get("state")
        if state != last:
            if interactive or client.output == "table":
                click.echo(f"{operation_id}: {state}", err=True)
            last = state
        if state in FINAL_STATES:
            return body
        if time.monotonic() >= deadline:
            show(client, body, OPERATION_COLUMNS)
            _die(f"operation {operation_id} still {state} after {timeout:g} s", EXIT_OPERATION)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _finish(client: Client, body: Any) -> None:
    show(client, body, OPERATION_COLUMNS)
    if body.get("state") != "COMPLETED":
        error = body.get("error") or {}
        detail = error.get("detail") or error.get("title") or ""
        _die(f"operation {body.get('operationId')} ended {body.get('state')} {detail}".rstrip(),
             EXIT_OPERATION)  # fmt: skip


@operations.command("wait")
@click.argument("operation_id")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds.")
@with_client
def operation_wait(client: Client, operation_id: str, timeout: float) -> None:
    """Follow an operation until it is final; exit 6 unless it COMPLETED."""
    _finish(client, wait_for(client, operation_id, timeout))


def _operation_action(client: Client, operation_id: str, action: str) -> None:
    response = client.request("POST", f"{API}/operations/{operation_id}/{action}")
    body = response.json() if response.content else {"operationId": operation_id}
    show(client, body, OPERATION_COLUMNS)


@operations.command("retry")
@click.argument("operation_id")
@with_client
def operation_retry(client: Client, operation_id: str) -> None:
    """Retry a FAILED_TEMP operation."""
    _operation_action(client, operation_id, "retry")


@operations.command("fail")
@click.argument("operation_id")
@with_client
def operation_fail(client: Client, operation_id: str) -> None:
    """Give up a FAILED_TEMP operation (FAILED)."""
    _operation_action(client, operation_id, "fail")


@operations.command("rollback")
@click.argument("operation_id")
@with_client
def operation_rollback(client: Client, operation_id: str) -> None:
    """Roll back a FAILED_TEMP operation."""
    _operation_action(client, operation_id, "rollback")


# -- deployments ----------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = ["deploymentId", "name", "namespace", "packageId", "status", "revision"]


@click.group("deployments")
def deployments() -> None:
    """NF deployments: list, create, get, status, history, logs, delete."""


@deployments.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@with_client
def deployment_list(client: Client, limit: int) -> None:
    """List deployments."""
    body = client.json("GET", f"{API}/nfDeployments", params={"limit": limit})
    show(client, body["items"], DEPLOYMENT_COLUMNS)


def _values(values_file: Path | None) -> dict[str, Any]:
    if values_file is None:
        return {}
    try:
        values = yaml.safe_load(values_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.UsageError(f"{values_file}: {exc}") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise click.UsageError(f"{values_file}: values must be a mapping")
    return values


def _operation_of(response: httpx.Response) -> str | None:
    location = str(response.headers.get("Location", ""))
    if "/operations/" in location:
        return location.rsplit("/", 1)[-1]
    link = str(response.links.get("operation", {}).get("url", ""))
    return link.rsplit("/", 1)[-1] if link else None


@deployments.command("create")
@click.option("--name", required=True, help="Deployment (release) name.")
@click.option("--package", "package_id", required=True, help="Package id ({name}-{version}).")
@click.option("--namespace", default=None)
@click.option("--adapter", default=None)
@click.option("-f", "--values", "values_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--wait", "wait", is_flag=True, help="Follow the operation until it is final.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@with_client
def deployment_create(
    client: Client,
    name: str,
    package_id: str,
    namespace: str | None,
    adapter: str | None,
    values_file: Path | None,
    wait: bool,
    timeout: float,
) -> None:
    """Create a deployment: prints it and its operation id, or with --wait the final operation."""
    body: dict[str, Any] = {"name": name, "packageId": package_id, "values": _values(values_file)}
    if namespace:
        body["namespace"] = namespace
    if adapter:
        body["adapter"] = adapter
    response = client.request("POST", f"{API}/nfDeployments", json=body)
    operation_id = _operation_of(response)
    if wait and operation_id:
        _finish(client, wait_for(client, operation_id, timeout))
        return
    show(client, response.json(), DEPLOYMENT_COLUMNS)
    if operation_id and client.output == "table":
        click.echo(f"operation: {operation_id}", err=True)


@deployments.command("get")
@click.argument("deployment_id")
@with_client
def deployment_get(client: Client, deployment_id: str) -> None:
    """One deployment."""
    show(client, client.json("GET", f"{API}/nfDeployments/{deployment_id}"), DEPLOYMENT_COLUMNS)


@deployments.command("status")
@click.argument("deployment_id")
@with_client
def deployment_status(client: Client, deployment_id: str) -> None:
    """The backend's status report of a deployment."""
    body = client.json("GET", f"{API}/nfDeployments/{deployment_id}/status")
    if client.output == "table":
        click.echo(f"{body.get('status')}  {body.get('message') or ''}".rstrip())
        resources = body.get("resources") or []
        if resources:
            show(client, resources, ["kind", "name", "namespace", "ready", "message"])
        return
    show(client, body, [])


@deployments.command("history")
@click.argument("deployment_id")
@with_client
def deployment_history(client: Client, deployment_id: str) -> None:
    """A deployment's revisions."""
    body = client.json("GET", f"{API}/nfDeployments/{deployment_id}/history")
    columns = ["revision", "status", "packageVersion", "deployedAt", "description"]
    show(client, body["revisions"] if client.output == "table" else body, columns)


@deployments.command("delete")
@click.argument("deployment_id")
@click.option("--wait", "wait", is_flag=True, help="Follow the operation until it is final.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@with_client
def deployment_delete(client: Client, deployment_id: str, wait: bool, timeout: float) -> None:
    """Delete a deployment (an operation)."""
    response = client.request("DELETE", f"{API}/nfDeployments/{deployment_id}")
    operation_id = _operation_of(response)
    if wait and operation_id:
        _finish(client, wait_for(client, operation_id, timeout))
    elif operation_id:
        click.echo(operation_id)


def _log_lines(client: Client, path: str, params: dict[str, Any]) -> Iterator[str]:
    try:
        with client.http.stream("GET", path, params=params, timeout=STREAM_TIMEOUT) as response:
            check(response)
            yield from response.iter_lines()
    except httpx.HTTPError as exc:
        _die(f"log stream from {client.url} ended: {exc}", EXIT_SERVER)


@deployments.command("logs")
@click.argument("deployment_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option("--tail", "tail_lines", type=click.IntRange(0, 100_000), default=None)
@click.option("--container", default=None)
@with_client
def deployment_logs(
    client: Client, deployment_id: str, follow: bool, tail_lines: int | None, container: str | None
) -> None:
    """Print (or follow) a deployment's logs."""
    params: dict[str, Any] = {"follow": "true" if follow else "false"}
    if tail_lines is not None:
        params["tailLines"] = tail_lines
    if container:
        params["container"] = container
    try:
        for line in _log_lines(client, f"{API}/nfDeployments/{deployment_id}/logs", params):
            click.echo(line)
    except KeyboardInterrupt:  # Ctrl-C ends a follow quietly
        pass


#: The groups, each also under its singular name (``netweave package upload``).
CLIENT_GROUPS: tuple[click.Group, ...] = (packages, deployments, operations)

__all__ = ["CLIENT_GROUPS", "Client", "ProgressReader", "chart_identity"]
