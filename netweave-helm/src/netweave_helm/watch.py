"""Which releases changed, from the cluster's own change feed: list+watch, not a poll per
release.

One thread per watched collection, all namespaces:

* Helm's release storage (Secrets or ConfigMaps labelled ``owner=helm``): a release installed,
  upgraded, rolled back or uninstalled by anyone (``helm`` itself included);
* the workload-bearing kinds Helm labels ``app.kubernetes.io/managed-by=Helm``
  (Deployments, StatefulSets, DaemonSets, Jobs, Services, PersistentVolumeClaims, ConfigMaps):
  an object deleted or edited, and every status change a controller writes (a Deployment whose
  Pods stop being ready changes its own status), mapped to its release by Helm's
  ``meta.helm.sh/release-name`` / ``release-namespace`` annotations.

Each starts with a list (its ``resourceVersion``), then watches from there with
``allowWatchBookmarks`` so an idle watch resumes where the cluster's clock is; a ``410 Gone``
(the version expired) or a broken stream relists, and the relist is reported as a resync
(anything may have changed meanwhile). Errors are retried with back-off, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from netweave.adapters import BackendChanges

from netweave_helm.cluster import ClusterAccess
from netweave_helm.live import raw_get

_log = logging.getLogger("netweave_helm.watch")
MANAGED = "app.kubernetes.io/managed-by=Helm"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
#: How long one watch request lasts before it is renewed from its last resourceVersion.
WATCH_SECONDS = 240
_OBJECTS = (
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
    "/apis/batch/v1/jobs",
    "/api/v1/services",
    "/api/v1/persistentvolumeclaims",
    "/api/v1/configmaps",
)


def _release_of_storage(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    name, namespace = labels.get("name"), meta.get("namespace")
    return f"{namespace}/{name}" if name and namespace else None


def _release_of_object(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    name = annotations.get(RELEASE_NAME)
    namespace = annotations.get(RELEASE_NAMESPACE) or meta.get("namespace")
    return f"{namespace}/{name}" if name and namespace else None


class _Feed:
    """One collection's list+watch loop on a thread; changes go to ``emit``."""

    def __init__(
        self,
        client: Any,
        path: str,
        selector: str,
        storage: bool,
        emit: Any,
        stop: threading.Event,
    ) -> None:
        self.client = client
        self.path = path
        self.selector = selector
        self.release_of = _release_of_storage if storage else _release_of_object
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
        refs = {self.release_of(item) for item in answer.get("items") or []}
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
                ref = self.release_of(obj)
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


async def watch_releases(
    cluster: ClusterAccess, storage_driver: str
) -> AsyncIterator[BackendChanges]:
    """Batches of releases (``namespace/name``) that may have changed, until cancelled."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[BackendChanges] = asyncio.Queue()
    stop = threading.Event()

    def emit(changes: BackendChanges) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, changes)

    # Its own connections: the watch streams stay open and must not take the shared client's.
    client = await asyncio.to_thread(cluster.separate_kube_client)
    storage = "/api/v1/configmaps" if storage_driver == "configmap" else "/api/v1/secrets"
    feeds = [_Feed(client, storage, "owner=helm", True, emit, stop)]
    feeds += [_Feed(client, path, MANAGED, False, emit, stop) for path in _OBJECTS]
    threads = [
        threading.Thread(target=f.run, name=f"netweave-helm-watch{f.path}", daemon=True)
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


__all__ = ["MANAGED", "watch_releases"]
