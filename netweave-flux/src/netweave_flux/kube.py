"""The Kubernetes side: a small async facade over the ``kubernetes`` client.

The synchronous ``kubernetes`` client runs in ``asyncio.to_thread``: it is the client the project
chose for the field (kubeconfig loading, exec plugins, in-cluster config) and the emulator is
tested against it; ``kubernetes_asyncio`` would be a second client to keep in step. Kubeconfig
loading, the error table and pod logs are core's (:mod:`netweave.adapters.kubernetes`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from netweave.adapters.kubernetes import map_kube_exception, new_api_client
from netweave.errors import BackendError, InvalidInput, NetweaveError

from netweave_flux.config import ClusterSettings
from netweave_flux.manifests import Kind

_log = logging.getLogger("netweave_flux")
_T = TypeVar("_T")

NO_CLUSTER = (
    "configure a cluster for this Flux adapter: set 'cluster.kubeconfig' (a kubeconfig path) or "
    "'cluster.kubeconfigContent' (inline kubeconfig YAML) and optionally 'cluster.context' in its "
    "config block, or start the gateway with KUBECONFIG set, or run it inside the cluster"
)


def map_api_error(exc: ApiException, what: str) -> NetweaveError:
    """Kubernetes ``Status`` answers → the core taxonomy (core's one Kubernetes table)."""
    return map_kube_exception(exc, what)


class Kube:
    """CustomObjectsApi / CoreV1Api calls for one cluster, created lazily."""

    def __init__(self, settings: ClusterSettings, read_timeout: float) -> None:
        self.settings = settings
        self.read_timeout = read_timeout
        self._api: k8s.ApiClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> k8s.ApiClient:
        with self._lock:
            if self._api is None:
                self._api = new_api_client(
                    self.settings, "flux", NO_CLUSTER, retries=self.settings.connect_retries
                )
            return self._api

    def separate_client(self) -> k8s.ApiClient:
        """An ``ApiClient`` of its own (the caller closes it): for long-lived watch streams,
        which must not hold the connections the shared client's reads use."""
        api: k8s.ApiClient = new_api_client(
            self.settings, "flux", NO_CLUSTER, retries=self.settings.connect_retries
        )
        return api

    async def api_client(self) -> k8s.ApiClient:
        """The shared ``ApiClient`` (created on first use, off the event loop)."""
        return await asyncio.to_thread(self._client)

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()  # type: ignore[no-untyped-call]
                self._api = None

    async def call(self, what: str, fn: Callable[[k8s.ApiClient], _T]) -> _T:
        def run() -> _T:
            api = self._client()
            try:
                return fn(api)
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise map_kube_exception(exc, what) from exc

        return await asyncio.to_thread(run)

    @property
    def _timeout(self) -> float:
        return self.read_timeout

    # -- custom objects ---------------------------------------------------------------------

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        def fn(api: k8s.ApiClient) -> dict[str, Any] | None:
            try:
                out = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
                    kind.group,
                    kind.version,
                    namespace,
                    kind.plural,
                    name,
                    _request_timeout=self._timeout,
                )
                return _as_dict(out)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        return await self.call(f"get {kind.kind} {namespace}/{name}", fn)

    async def list_objects(
        self, kind: Kind, namespace: str | None, label_selector: str
    ) -> list[dict[str, Any]]:
        def fn(api: k8s.ApiClient) -> list[dict[str, Any]]:
            custom = k8s.CustomObjectsApi(api)
            items: list[dict[str, Any]] = []
            token: str | None = None
            for _ in range(1000):  # pages of 500; bounded
                kwargs: dict[str, Any] = {
                    "label_selector": label_selector,
                    "limit": 500,
                    "_request_timeout": self._timeout,
                }
                if token:
                    kwargs["_continue"] = token
                if namespace is None:
                    page = custom.list_cluster_custom_object(
                        kind.group, kind.version, kind.plural, **kwargs
                    )
                else:
                    page = custom.list_namespaced_custom_object(
                        kind.group, kind.version, namespace, kind.plural, **kwargs
                    )
                data = _as_dict(page)
                items.extend(data.get("items") or [])
                token = (data.get("metadata") or {}).get("continue")
                if not token:
                    break
            return items

        return await self.call(f"list {kind.kind}", fn)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create with ``fieldValidation=Strict``: a field the CRD does not know is refused
        (400 → InvalidInput) instead of silently pruned."""
        kind = _kind_of(obj)
        meta = obj["metadata"]

        def fn(api: k8s.ApiClient) -> dict[str, Any]:
            out = k8s.CustomObjectsApi(api).create_namespaced_custom_object(
                kind.group,
                kind.version,
                meta["namespace"],
                kind.plural,
                obj,
                field_validation="Strict",
                _request_timeout=self._timeout,
            )
            return _as_dict(out)

        return await self.call(f"create {kind.kind} {meta['namespace']}/{meta['name']}", fn)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT with the object's resourceVersion (optimistic concurrency: 409 → Conflict)."""
        kind = _kind_of(obj)
        meta = obj["metadata"]

        def fn(api: k8s.ApiClient) -> dict[str, Any]:
            out = k8s.CustomObjectsApi(api).replace_namespaced_custom_object(
                kind.group,
                kind.version,
                meta["namespace"],
                kind.plural,
                meta["name"],
                obj,
                field_validation="Strict",
                _request_timeout=self._timeout,
            )
            return _as_dict(out)

        return await self.call(f"update {kind.kind} {meta['namespace']}/{meta['name']}", fn)

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Request deletion; False when it was already gone."""

        def fn(api: k8s.ApiClient) -> bool:
            try:
                k8s.CustomObjectsApi(api).delete_namespaced_custom_object(
                    kind.group,
                    kind.version,
                    namespace,
                    kind.plural,
                    name,
                    propagation_policy="Background",
                    _request_timeout=self._timeout,
                )
                return True
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise

        return await self.call(f"delete {kind.kind} {namespace}/{name}", fn)

    # -- workloads and logs -----------------------------------------------------------------

    async def get_workload(
        self, group: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """A Deployment, StatefulSet, DaemonSet, ReplicaSet or Job as a dict (None: gone)."""
        readers = {
            ("apps", "Deployment"): ("AppsV1Api", "read_namespaced_deployment"),
            ("apps", "StatefulSet"): ("AppsV1Api", "read_namespaced_stateful_set"),
            ("apps", "DaemonSet"): ("AppsV1Api", "read_namespaced_daemon_set"),
            ("apps", "ReplicaSet"): ("AppsV1Api", "read_namespaced_replica_set"),
            ("batch", "Job"): ("BatchV1Api", "read_namespaced_job"),
        }
        reader = readers.get((group, kind))
        if reader is None:
            return None
        api_name, method = reader

        def fn(api: k8s.ApiClient) -> dict[str, Any] | None:
            typed = getattr(k8s, api_name)(api)
            try:
                obj = getattr(typed, method)(name, namespace, _request_timeout=self._timeout)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            out: dict[str, Any] = api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
                obj
            )
            return out

        return await self.call(f"get {kind} {namespace}/{name}", fn)

    async def pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        def fn(api: k8s.ApiClient) -> list[dict[str, Any]]:
            out = k8s.CoreV1Api(api).list_namespaced_pod(
                namespace, label_selector=label_selector, _request_timeout=self._timeout
            )
            return [
                api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
                    p
                )
                for p in out.items
            ]

        return await self.call(f"list pods in {namespace}", fn)

    async def version(self) -> str:
        def fn(api: k8s.ApiClient) -> str:
            info = k8s.VersionApi(api).get_code(_request_timeout=self._timeout)
            return str(info.git_version)

        return await self.call("version", fn)


def _as_dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BackendError("the Kubernetes API answered with something that is not an object")
    return value


def _kind_of(obj: dict[str, Any]) -> Kind:
    from netweave_flux.manifests import DEPLOYMENT_KINDS, SOURCE_KINDS

    kind = {**SOURCE_KINDS, **DEPLOYMENT_KINDS}.get(str(obj.get("kind")))
    if kind is None:
        raise InvalidInput(f"netweave-flux does not write {obj.get('kind')!r} objects")
    return kind


__all__ = ["NO_CLUSTER", "Kube", "map_api_error"]
