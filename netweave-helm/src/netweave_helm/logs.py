"""Logs of a release's pods (label ``app.kubernetes.io/instance=<release>``) through the
``kubernetes`` client, which is blocking: calls run in threads, followed streams feed a queue.

With more than one pod/container every line is prefixed ``[<pod>/<container>] ``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from netweave.errors import BackendUnavailable, InvalidInput, NotFound, status_error_class
from netweave.models import LogOptions

_T = TypeVar("_T")
INSTANCE_LABEL = "app.kubernetes.io/instance"
#: Lines buffered per followed stream before the reader thread waits for the consumer.
_QUEUE_LINES = 1000


def _map_kube(exc: Exception, what: str) -> Exception:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = exc.status or 0
        if status == 404:
            return NotFound(f"{what}: not found")
        if status == 400:
            return InvalidInput(f"{what}: {(exc.body or exc.reason or '')[:300]}")
        # The core's one mapping, as for Helm's own calls (sdk.map_error): the same failure of
        # the cluster answers the same status on history, status and logs.
        return status_error_class(status)(f"{what}: the Kubernetes API answered HTTP {status}")
    return BackendUnavailable(f"{what}: the Kubernetes API is unreachable ({type(exc).__name__})")


async def _call(what: str, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except Exception as exc:
        raise _map_kube(exc, what) from exc


async def stream_release_logs(
    api_client: Any, namespace: str, release: str, options: LogOptions
) -> AsyncIterator[str]:
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api_client)
    pods: Any = await _call(
        f"listing pods of release {release}",
        core.list_namespaced_pod,
        namespace,
        label_selector=f"{INSTANCE_LABEL}={release}",
    )
    targets: list[tuple[str, str]] = []
    for pod in sorted(pods.items or [], key=lambda p: p.metadata.name):
        containers = [c.name for c in (pod.spec.containers or [])] if pod.spec else []
        if options.container is not None:
            if options.container in containers:
                targets.append((pod.metadata.name, options.container))
        else:
            targets.extend((pod.metadata.name, c) for c in containers)
    if options.container is not None and not targets and pods.items:
        raise NotFound(f"no pod of release {release} has a container {options.container!r}")
    prefix = len(targets) > 1
    kwargs: dict[str, Any] = {}
    if options.tail_lines is not None:
        kwargs["tail_lines"] = options.tail_lines
    if options.since_seconds is not None:
        kwargs["since_seconds"] = options.since_seconds
    if not options.follow:
        for pod_name, container in targets:
            response: Any = await _call(
                f"reading logs of pod {pod_name}",
                core.read_namespaced_pod_log,
                pod_name,
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
                yield f"[{pod_name}/{container}] {line}" if prefix else line
        return
    async for line in _follow(core, namespace, targets, prefix, kwargs):
        yield line


async def _follow(
    core: Any,
    namespace: str,
    targets: list[tuple[str, str]],
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

    def read(pod_name: str, container: str) -> None:
        try:
            response = core.read_namespaced_pod_log(
                pod_name,
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
                    put(f"[{pod_name}/{container}] {line}" if prefix else line)
        except Exception as exc:
            if not stop.is_set():
                put(_map_kube(exc, f"following logs of pod {pod_name}"))
        finally:
            put(None)

    threads = [
        threading.Thread(target=read, args=target, daemon=True, name="netweave-helm-logs")
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
            target=_close_all, args=(list(responses),), daemon=True, name="netweave-helm-logs"
        ).start()
        # Unblock readers waiting on a full queue.
        while not queue.empty():
            queue.get_nowait()


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


__all__ = ["INSTANCE_LABEL", "stream_release_logs"]
