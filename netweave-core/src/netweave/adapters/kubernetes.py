"""Kubernetes access shared by the adapters that talk to a cluster (Helm, Flux).

Three things every such adapter needs, written once so they behave the same everywhere:

* **kubeconfig loading** (:func:`cluster_source`, :func:`require_cluster`,
  :func:`new_api_client`): an inline kubeconfig, a kubeconfig path, ``KUBECONFIG`` /
  ``~/.kube/config``, or the in-cluster service account, in that order; no source, a missing
  file or an unreadable kubeconfig is ``ClusterNotConfigured`` (503) with the adapter's hint;
* **one error table** (:func:`kube_error_class`, :func:`kube_error`, :func:`map_kube_exception`)
  for the Kubernetes API's answers, whichever client made the call;
* **pod logs** (:func:`stream_pod_logs`), read once or followed (``LogOptions.follow``).

The ``kubernetes`` client is imported only when a function here is called: netweave-core does
not depend on it (the adapters that use this module do), so a plain install imports this module
without it.

The error table differs from :func:`netweave.errors.status_error_class` (the table for REST
backends) in one row: the Kubernetes API server's **500** (``InternalError``) is
``BackendUnavailable``, not ``BackendError``. The API server answers 500 when its storage
(etcd: "leader changed", a request timeout) or an admission webhook it calls fails — conditions
that pass on their own — not for a bug in what the gateway asked. ``BackendUnavailable`` is
retried by the operation runner and reported as ``UNKNOWN`` by status reads.

========================  =====================================================
Kubernetes API answer     netweave error (HTTP the gateway answers)
========================  =====================================================
404                       ``NotFound`` (404)
409 reason AlreadyExists  ``AlreadyExists`` (409)
409 otherwise             ``Conflict`` (409): a stale resourceVersion
400, 422                  ``InvalidInput`` (400): schema or admission refused it
401, 403                  ``BackendError`` (502): the gateway's credentials
429, 500, 502, 503, 504   ``BackendUnavailable`` (503): retried
no answer (transport)     ``BackendUnavailable`` (503): retried
any other status          ``BackendError`` (502)
========================  =====================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr

from netweave.adapters.kubewatch import raw_get
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    ClusterNotConfigured,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import LogOptions

_T = TypeVar("_T")

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
IN_CLUSTER = "in-cluster service account"
#: Lines buffered per followed stream before its reader thread waits for the consumer.
_QUEUE_LINES = 1000
#: Statuses of the Kubernetes API that are the cluster being unavailable now (retried).
UNAVAILABLE_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
#: At most how often a client's credentials refresh hook runs (seconds); see
#: :func:`_refresh_at_most_every`.
AUTH_REFRESH_SECONDS = 1.0


class KubeconfigSettings(Protocol):
    """Where an adapter's cluster is: the fields its ``cluster`` config section carries."""

    @property
    def kubeconfig(self) -> Path | None: ...

    @property
    def kubeconfig_content(self) -> SecretStr | None: ...

    @property
    def context(self) -> str | None: ...


# -- kubeconfig ---------------------------------------------------------------------------------


def cluster_source(settings: KubeconfigSettings) -> str | None:
    """A description of the configured cluster source, or ``None`` when there is none."""
    if settings.kubeconfig_content is not None:
        return "inline kubeconfig (cluster.kubeconfigContent)"
    if settings.kubeconfig is not None:
        return f"kubeconfig {settings.kubeconfig}"
    env = os.environ.get("KUBECONFIG")
    if env and any(Path(p).is_file() for p in env.split(os.pathsep) if p):
        return "KUBECONFIG"
    if (Path.home() / ".kube" / "config").is_file():
        return "~/.kube/config"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and IN_CLUSTER_TOKEN.is_file():
        return IN_CLUSTER
    return None


def require_cluster(settings: KubeconfigSettings, adapter: str, how_to_configure: str) -> str:
    """The cluster source; ``ClusterNotConfigured`` (naming ``adapter`` and telling
    ``how_to_configure``) when there is none or the configured kubeconfig file is missing."""
    source = cluster_source(settings)
    if source is None:
        raise ClusterNotConfigured(
            f"adapter {adapter!r} has no Kubernetes cluster: {how_to_configure}",
            details={"adapter": adapter},
        )
    if settings.kubeconfig is not None and not settings.kubeconfig.is_file():
        raise ClusterNotConfigured(
            f"adapter {adapter!r}: kubeconfig {settings.kubeconfig} does not exist; "
            f"{how_to_configure}",
            details={"adapter": adapter},
        )
    return source


def new_api_client(
    settings: KubeconfigSettings,
    adapter: str,
    how_to_configure: str,
    *,
    retries: int | None = None,
) -> Any:
    """A new ``kubernetes.client.ApiClient`` for the configured cluster and context (the caller
    closes it). ``retries``: client-side retries of a failed connection (the client's default
    when ``None``). An unusable kubeconfig is ``ClusterNotConfigured``."""
    import yaml
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    source = require_cluster(settings, adapter, how_to_configure)
    configuration = k8s_client.Configuration()
    try:
        if settings.kubeconfig_content is not None:
            loaded = yaml.safe_load(settings.kubeconfig_content.get_secret_value())
            k8s_config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
                loaded, context=settings.context, client_configuration=configuration
            )
        elif settings.kubeconfig is not None:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                str(settings.kubeconfig),
                context=settings.context,
                client_configuration=configuration,
            )
        elif source == IN_CLUSTER:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                context=settings.context, client_configuration=configuration
            )
    except ConfigException as exc:
        raise ClusterNotConfigured(
            f"adapter {adapter!r}: {how_to_configure} ({exc})", details={"adapter": adapter}
        ) from exc
    except (OSError, yaml.YAMLError, TypeError, AttributeError) as exc:
        # A kubeconfig that is not YAML, or YAML that is not a kubeconfig document.
        raise ClusterNotConfigured(
            f"adapter {adapter!r}: unreadable kubeconfig; {how_to_configure}",
            details={"adapter": adapter},
        ) from exc
    if retries is not None:
        configuration.retries = retries
    hook = configuration.refresh_api_key_hook
    if hook is not None:
        configuration.refresh_api_key_hook = _refresh_at_most_every(AUTH_REFRESH_SECONDS, hook)
    return k8s_client.ApiClient(configuration)


def _refresh_at_most_every(seconds: float, hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """``hook`` (a loader's ``refresh_api_key_hook``) run at most once per ``seconds``.

    The client runs the hook before every request. The kubeconfig loader's hook reloads the
    credentials when they expire (within 5 minutes of an exec/OIDC token's ``expiry``) and then
    re-assigns every setting, ``host`` included, whose setter reads the proxy variables by
    scanning the whole environment: ~0.2 ms of CPU per request with 35 variables, more in a
    larger environment, for values that do not change.
    The in-cluster loader's re-reads the token file once a minute. Both decide by the clock at
    a granularity of minutes, so running them once a second keeps them working, a second late at
    most. A request that comes while a refresh runs waits for its token."""
    lock = threading.Lock()
    due = 0.0  # the first request runs it
    inner = hook

    def refresh(configuration: Any) -> None:
        nonlocal due, inner
        if time.monotonic() < due:
            return
        with lock:
            if time.monotonic() < due:  # another thread refreshed meanwhile
                return
            inner(configuration)
            due = time.monotonic() + seconds
            # Both loaders' hooks install themselves again (a new closure) as they run.
            installed = configuration.refresh_api_key_hook
            if installed is not None and installed is not refresh:
                inner = installed
                configuration.refresh_api_key_hook = refresh

    return refresh


# -- the error table ----------------------------------------------------------------------------


def kube_error_class(status: int, reason: str | None = None) -> type[NetweaveError]:
    """The error for the Kubernetes API answering HTTP ``status`` (``0``: no answer) with the
    Status ``reason`` (the module's table)."""
    if status == 404:
        return NotFound
    if status == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if status in (400, 422):
        return InvalidInput
    if status in UNAVAILABLE_STATUSES:
        return BackendUnavailable
    return BackendError


def status_of(body: bytes | str | None) -> tuple[str, str | None]:
    """``(message, reason)`` of a Kubernetes ``Status`` body; empty when it is not one."""
    try:
        answer = json.loads(body or "{}")
    except ValueError:
        return "", None
    if not isinstance(answer, dict):
        return "", None
    reason = answer.get("reason")
    return str(answer.get("message") or ""), str(reason) if reason else None


def kube_error(
    status: int, what: str, message: str = "", reason: str | None = None
) -> NetweaveError:
    """The error for ``what`` answered HTTP ``status`` by the Kubernetes API, its text saying
    so ("<what>: the Kubernetes API answered HTTP <status>: <message>")."""
    kind = kube_error_class(status, reason)
    if kind is NotFound:
        return NotFound(f"{what}: not found", details={"reason": message} if message else None)
    if kind is AlreadyExists:
        return AlreadyExists(f"{what}: already exists")
    if status in (401, 403):
        text = f"{what}: the cluster refused netweave's credentials (HTTP {status})"
    elif kind is InvalidInput:
        # The API server refused what was written (CRD schema, admission): the content.
        text = f"{what}: the cluster refused it (the Kubernetes API answered HTTP {status})"
    else:
        text = f"{what}: the Kubernetes API answered HTTP {status}"
    if message:
        text += f": {message}"
    return kind(text[:500])


def map_kube_exception(exc: BaseException, what: str) -> NetweaveError:
    """The error for an exception the ``kubernetes`` client raised while doing ``what``: its
    ``ApiException`` through the table, a netweave error as it is, anything else (urllib3's
    connection errors, a broken stream) ``BackendUnavailable``."""
    if isinstance(exc, NetweaveError):
        return exc
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status:
        message, reason = status_of(exc.body)
        return kube_error(int(exc.status), what, message or str(exc.reason or ""), reason)
    return BackendUnavailable(f"{what}: the Kubernetes API is unreachable ({type(exc).__name__})")


async def kube_call(what: str, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``func(*args, **kwargs)`` (a blocking ``kubernetes`` client call) in a thread, its
    failure mapped by :func:`map_kube_exception`."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except Exception as exc:
        raise map_kube_exception(exc, what) from exc


# -- pod logs -----------------------------------------------------------------------------------


async def stream_pod_logs(
    api_client: Any,
    targets: Sequence[tuple[str, str, str]],
    options: LogOptions,
    *,
    read_timeout: float | None = None,
) -> AsyncIterator[str]:
    """Lines of the containers ``targets`` (``(namespace, pod, container)``), in that order, or
    with ``options.follow`` merged as they come until every stream ends or the consumer stops
    (which closes them all). With more than one target each line is prefixed
    ``[<pod>/<container>] ``. ``read_timeout`` bounds each read of a log that is not followed."""
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api_client)
    prefix = len(targets) > 1
    kwargs: dict[str, Any] = {}
    if options.tail_lines is not None:
        kwargs["tail_lines"] = options.tail_lines
    if options.since_seconds is not None:
        kwargs["since_seconds"] = options.since_seconds
    if options.follow:
        async for line in _follow(core, targets, prefix, kwargs):
            yield line
        return
    if read_timeout is not None:
        kwargs["_request_timeout"] = read_timeout
    for namespace, pod, container in targets:
        response: Any = await kube_call(
            f"reading logs of pod {namespace}/{pod}",
            core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            _preload_content=False,
            **kwargs,
        )
        try:
            text = response.data.decode("utf-8", errors="replace")
        finally:
            response.release_conn()
        for line in text.splitlines():
            yield f"[{pod}/{container}] {line}" if prefix else line


async def _follow(
    core: Any,
    targets: Sequence[tuple[str, str, str]],
    prefix: bool,
    kwargs: dict[str, Any],
) -> AsyncIterator[str]:
    """Merge followed log streams of several containers; close them all when we stop."""
    if not targets:
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue(_QUEUE_LINES)
    responses: list[Any] = []
    stop = threading.Event()

    def put(item: str | BaseException | None) -> None:
        # Blocks the reader thread (bounded buffer) until the consumer takes lines.
        if not stop.is_set():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def read(namespace: str, pod: str, container: str) -> None:
        try:
            response = core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                follow=True,
                _preload_content=False,
                **kwargs,
            )
            responses.append(response)
            if stop.is_set():  # the consumer left while this stream was being opened
                _shut(response)
                _close(response)
                return
            for raw in response.stream(decode_content=True):
                if stop.is_set():
                    break
                for line in raw.decode("utf-8", errors="replace").splitlines():
                    put(f"[{pod}/{container}] {line}" if prefix else line)
        except Exception as exc:
            if not stop.is_set():
                put(map_kube_exception(exc, f"following logs of pod {namespace}/{pod}"))
        finally:
            put(None)

    threads = [
        threading.Thread(target=read, args=target, daemon=True, name="netweave-pod-logs")
        for target in targets
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(threads):
            item = await queue.get()
            if item is None:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        # close() waits for the lock a reader thread holds while it sits in a read of a quiet
        # stream, which blocked the whole event loop when a client left a followed stream:
        # shut the sockets down (that ends the reads) and close them off the loop.
        for response in list(responses):
            _shut(response)
        threading.Thread(
            target=_close_all, args=(list(responses),), daemon=True, name="netweave-pod-logs"
        ).start()
        # Unblock readers waiting on a full queue.
        while not queue.empty():
            queue.get_nowait()


class ObjectReader:
    """Blocking GETs of objects (or lists) by API path through a ``kubernetes.client``
    ``ApiClient`` (its kubeconfig, TLS and auth): what an adapter needs to compare a manifest
    with the live cluster. Call it off the event loop (``asyncio.to_thread``)."""

    def __init__(self, api_client: Any, timeout: float) -> None:
        self._client = api_client
        self._timeout = timeout

    def get(self, path: str, **query: str) -> dict[str, Any] | None:
        """The object (or list) at ``path``; ``None`` when the server has none (404). Another
        error answer is mapped by the one table (``kube_error``), with the server's message."""
        status, body = raw_get(self._client, path, list(query.items()), self._timeout)
        if status == 404:
            return None
        if status >= 400:
            message, reason = status_of(body)
            raise kube_error(status, f"reading {path}", message, reason)
        answer = json.loads(body or b"{}")
        return answer if isinstance(answer, dict) else None


def _shut(response: Any) -> None:
    # urllib3 >= 2.3: shuts the socket down without the reader's lock.
    shutdown = getattr(response, "shutdown", None)
    if callable(shutdown):
        with contextlib.suppress(Exception):
            shutdown()


def _close(response: Any) -> None:
    with contextlib.suppress(Exception):
        response.close()


def _close_all(responses: list[Any]) -> None:
    for response in responses:
        _close(response)


__all__ = [
    "AUTH_REFRESH_SECONDS",
    "IN_CLUSTER",
    "UNAVAILABLE_STATUSES",
    "KubeconfigSettings",
    "ObjectReader",
    "cluster_source",
    "kube_call",
    "kube_error",
    "kube_error_class",
    "map_kube_exception",
    "new_api_client",
    "require_cluster",
    "status_of",
    "stream_pod_logs",
]
