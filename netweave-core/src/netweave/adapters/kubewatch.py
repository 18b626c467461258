"""Which deployments changed, from a Kubernetes cluster's own change feed: list+watch, not a
poll per deployment. Shared by the Kubernetes-backed adapters (Helm, Flux).

An adapter names the collections to watch (:class:`Collection`: an API path, a label selector,
and how an object maps to a deployment's ``backend_ref``); :func:`watch_collections` runs one
thread per collection. Each starts with a list (its ``resourceVersion``), then watches from
there with ``allowWatchBookmarks`` so an idle watch resumes where the cluster's clock is; a
``410 Gone`` (the version expired) or a broken stream relists, and the relist is reported as a
resync (anything may have changed meanwhile). Errors are retried with back-off, never raised.

The ``kubernetes`` client is the adapter's (core does not depend on it): it is imported only
when a watch runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netweave.adapters.types import BackendChanges
from netweave.errors import BackendUnavailable

_log = logging.getLogger("netweave.adapters.kubewatch")
#: How long one watch request lasts before it is renewed from its last resourceVersion.
WATCH_SECONDS = 240


def raw_get(
    client: Any,
    path: str,
    query: list[tuple[str, str]],
    timeout: float | tuple[float, float],
    *,
    stream: bool = False,
) -> tuple[int, Any]:
    """A GET through the ``kubernetes`` client's transport (its kubeconfig, TLS and auth):
    ``(status, body bytes)``, or with ``stream`` the open urllib3 response to read lines from.
    Any transport failure is ``BackendUnavailable``."""
    try:
        method, url, headers, body, post = client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = client.call_api(method, url, headers, body, post, _request_timeout=timeout)
    except Exception as exc:  # urllib3's connection errors and timeouts
        raise BackendUnavailable(
            f"reading {path}: the Kubernetes API is unreachable ({type(exc).__name__})"
        ) from exc
    if stream:
        return int(response.status), response.response
    try:
        return int(response.status), response.read()
    except Exception as exc:
        raise BackendUnavailable(
            f"reading {path}: the Kubernetes API connection broke ({type(exc).__name__})"
        ) from exc


@dataclass(frozen=True)
class Collection:
    """One watched collection: ``path`` (e.g. ``/apis/apps/v1/deployments``, all namespaces),
    a ``selector`` (label selector), and ``ref_of``: the ``backend_ref`` an object belongs to
    (None: not a deployment's)."""

    path: str
    selector: str
    ref_of: Callable[[Mapping[str, Any]], str | None]


class _Feed:
    """One collection's list+watch loop on a thread; changes go to ``emit``."""

    def __init__(
        self,
        client: Any,
        collection: Collection,
        emit: Callable[[BackendChanges], None],
        stop: threading.Event,
    ) -> None:
        self.client = client
        self.path = collection.path
        self.selector = collection.selector
        self.ref_of = collection.ref_of
        self.emit = emit
        self.stop = stop
        self.response: Any = None

    def _get(self, query: list[tuple[str, str]], *, stream: bool) -> Any:
        timeout = (10.0, float(WATCH_SECONDS + 30)) if stream else 60.0
        status, body = raw_get(self.client, self.path, query, timeout, stream=stream)
        if status >= 400:
            if stream:
                with contextlib.suppress(Exception):
                    body.release_conn()
            raise RuntimeError(f"HTTP {status}")
        return body if stream else json.loads(body or b"{}")

    def run(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                version: str | None = self._list()
                delay = 0.5
                while version is not None and not self.stop.is_set():
                    version = self._watch(version)  # None: expired, list again
            except Exception as exc:
                if self.stop.is_set():
                    return
                _log.info(
                    "watching %s: %s; retrying in %.1f s", self.path, type(exc).__name__, delay
                )
                self.stop.wait(delay * (0.5 + random.random()))  # noqa: S311 (jitter, not secrets)
                delay = min(delay * 2, 30.0)

    def _list(self) -> str:
        answer = self._get([("labelSelector", self.selector)], stream=False) or {}
        refs = {self.ref_of(item) for item in answer.get("items") or []}
        self.emit(BackendChanges(refs=frozenset(r for r in refs if r), resync=True))
        return str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, version: str) -> str | None:
        """Watch from ``version``; the version to go on from, or None to relist."""
        from kubernetes.watch.watch import iter_resp_lines

        query = [
            ("watch", "true"),
            ("labelSelector", self.selector),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
        ]
        if version:
            query.append(("resourceVersion", version))
        self.response = response = self._get(query, stream=True)
        try:
            lines: Iterator[str] = iter_resp_lines(response)  # type: ignore[no-untyped-call]
            for line in lines:
                if self.stop.is_set():
                    return version
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if int(obj.get("code") or 0) == 410:
                        return None
                    raise RuntimeError(f"watch error {obj.get('code')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                ref = self.ref_of(obj)
                if ref:
                    self.emit(BackendChanges(refs=frozenset({ref})))
        finally:
            with contextlib.suppress(Exception):
                response.release_conn()
            self.response = None
        return version

    def close(self) -> None:
        response = self.response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown() if hasattr(response, "shutdown") else response.close()


async def watch_collections(
    new_client: Callable[[], Any], collections: Sequence[Collection], *, name: str
) -> AsyncIterator[BackendChanges]:
    """Batches of ``backend_ref``s that may have changed, until cancelled. ``new_client``
    makes a ``kubernetes`` ApiClient of the watch's own (closed here): the streams stay open and
    must not hold the connections the adapter's reads use."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[BackendChanges] = asyncio.Queue()
    stop = threading.Event()

    def emit(changes: BackendChanges) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, changes)

    client = await asyncio.to_thread(new_client)
    feeds = [_Feed(client, collection, emit, stop) for collection in collections]
    threads = [
        threading.Thread(target=f.run, name=f"netweave-{name}-watch{f.path}", daemon=True)
        for f in feeds
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            first = await queue.get()
            refs, resync = set(first.refs), first.resync
            while not queue.empty():  # coalesce what arrived meanwhile
                more = queue.get_nowait()
                refs |= more.refs
                resync = resync or more.resync
            yield BackendChanges(refs=frozenset(refs), resync=resync)
    finally:
        stop.set()
        for feed in feeds:
            feed.close()
        with contextlib.suppress(Exception):
            client.close()


__all__ = ["WATCH_SECONDS", "Collection", "raw_get", "watch_collections"]
