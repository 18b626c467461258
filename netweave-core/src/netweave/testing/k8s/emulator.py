"""The public entry point: :class:`KubernetesEmulator`."""

from __future__ import annotations

import builtins
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from netweave.testing.k8s.api import ApiCore, ListOptions, WriteOptions
from netweave.testing.k8s.controllers import BehaviorRule, ControllerManager, Reconciler
from netweave.testing.k8s.errors import ApiError
from netweave.testing.k8s.faults import FaultInjector
from netweave.testing.k8s.resources import Resource
from netweave.testing.k8s.server import EmulatorHTTPServer, RequestRecord
from netweave.testing.k8s.util import JSONDict, clone_obj

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KubernetesEmulator:
    """An in-process Kubernetes API server on ``127.0.0.1`` for tests.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with KubernetesEmulator() as k8s:
            k8s.write_kubeconfig(tmp_path / "kubeconfig")
            ...

    Args:
        kubernetes_version: the version reported by ``/version`` and used to
            pick the built-in schemas (``"1.35"`` → ``v1.35.0``).
        controllers: run the default workload controllers (Deployments become
            ready, Jobs complete, ...).
        validate: validate built-in kinds against their OpenAPI schemas.
        follow_logs: serve ``pods/log?follow=true`` like a kubelet: stream new lines
            until the container exits, the Pod goes or the client disconnects. Off by
            default: the request then returns the lines so far and ends, which clients
            that cannot interrupt a blocking read rely on (see the docs).
        host, port: where to listen (default: loopback, a free port).
    """

    def __init__(
        self,
        *,
        kubernetes_version: str = "1.35",
        controllers: bool = True,
        validate: bool = True,
        follow_logs: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._address = (host, port)
        major, minor = kubernetes_version.split(".")[:2]
        self.kubernetes_version = f"{major}.{minor}"
        self.core = ApiCore(self.kubernetes_version, validate_builtin=validate)
        self.faults = FaultInjector()
        self.controllers = ControllerManager(self.core, defaults=controllers)
        self._server: EmulatorHTTPServer | None = None
        self._follow_logs = follow_logs
        self._thread: threading.Thread | None = None
        self.version_info: JSONDict = {
            "major": major,
            "minor": minor,
            "emulationMajor": major,
            "emulationMinor": minor,
            "minCompatibilityMajor": major,
            "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
            "gitVersion": f"v{major}.{minor}.0",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> KubernetesEmulator:
        if self._server is not None:
            return self
        self._server = EmulatorHTTPServer(self.core, self.faults, self.version_info, self._address)
        self._server.follow_logs = self._follow_logs
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits up to one interval
            name="k8s-emulator-http",
            daemon=True,
        )
        self._thread.start()
        self.controllers.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.stopping.set()
        self.core.store.close()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.controllers.stop()
        self._server = None

    def __enter__(self) -> KubernetesEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (for ``Config(kube_apiserver=...)``)."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far (method, path, query, content type, status...)."""
        if self._server is None:
            return []
        return list(self._server.records)

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of requests the emulator failed on (its own bugs, answered 500)."""
        return [] if self._server is None else list(self._server.internal_errors)

    def clear_requests(self) -> None:
        if self._server is not None:
            self._server.records.clear()

    def set_watch_bookmark_interval(self, seconds: float) -> None:
        """How often idle watches with ``allowWatchBookmarks`` get a BOOKMARK."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        self._server.watch_bookmark_interval = seconds

    # --- client configuration ---------------------------------------------------------------

    def kubeconfig(self, *, namespace: str = "default", context: str = "emulator") -> str:
        """A kubeconfig (YAML text) pointing at this emulator."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        return yaml.safe_dump(doc, sort_keys=False)

    def write_kubeconfig(self, path: str | os.PathLike[str], *, namespace: str = "default") -> Path:
        """Write :meth:`kubeconfig` to ``path`` (mode 0600) and return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.kubeconfig(namespace=namespace), encoding="utf-8")
        p.chmod(0o600)
        return p

    def kubernetes_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this emulator (needs ``kubernetes``)."""
        from kubernetes import client  # imported lazily: an optional dependency

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": "emulator-token"}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)

    def helm_config(self, **kwargs: Any) -> Any:
        """A ``helm_python.Config`` for this emulator with throttling disabled.

        Without ``qps``/``burst_limit`` client-go waits ~100 ms per request after a
        short burst; extra keyword arguments are passed through.
        """
        from helm_python import Config  # imported lazily: an optional dependency

        kwargs.setdefault("qps", 1000.0)
        kwargs.setdefault("burst_limit", 2000)
        kwargs.setdefault("namespace", "default")
        return Config(kube_apiserver=self.url, **kwargs)

    # --- controllers and behaviours -----------------------------------------------------------

    def register_controller(
        self, kind: str, reconcile: Reconciler, *, group: str = "", replace: bool = True
    ) -> None:
        """Run ``reconcile(ctx, obj)`` on every change of ``kind`` (see controllers.py)."""
        self.controllers.register(kind, reconcile, group=group, replace=replace)

    def set_behavior(
        self,
        name: str,
        behavior: str,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        ready_after: float = 0.0,
    ) -> BehaviorRule:
        """Make workloads named like the glob ``name`` ``ready``/``unready``/``fail``/``hang``."""
        return self.controllers.set_behavior(
            name, behavior, kind=kind, namespace=namespace, ready_after=ready_after
        )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the controllers have nothing queued."""
        return self.controllers.wait_idle(timeout)

    # --- objects ----------------------------------------------------------------------------------

    def _res(self, api_version: str, kind: str) -> Resource:
        return self.core.resource_for(api_version, kind)

    def create(self, obj: JSONDict, *, validate: bool = True) -> JSONDict:
        """Create an object directly (no HTTP); validation as for a client unless disabled."""
        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        ns = str((obj.get("metadata") or {}).get("namespace") or "")
        return clone_obj(self.core.create(res, ns, obj, WriteOptions(internal=not validate)))

    def apply(self, obj: JSONDict, *, field_manager: str = "k8s-emulator") -> JSONDict:
        """Server-side apply an object (creating it when missing)."""
        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        m = obj.get("metadata") or {}
        raw = json.dumps(obj).encode()
        out, _ = self.core.patch(
            res,
            str(m.get("namespace") or ""),
            str(m.get("name")),
            "application/apply-patch+yaml",
            raw,
            WriteOptions(field_manager=field_manager),
        )
        return clone_obj(out)

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> JSONDict | None:
        """The stored object, or None."""
        # A copy: callers may mutate it; the stored object must not change.
        found = self.core.try_get(self._res(api_version, kind), namespace, name)
        return None if found is None else clone_obj(found)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[JSONDict]:
        out = self.core.list(
            self._res(api_version, kind), namespace, ListOptions(label_selector=label_selector)
        )
        return [clone_obj(o) for o in out["items"]]

    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> None:
        try:
            self.core.delete(self._res(api_version, kind), namespace, name)
        except ApiError as err:
            if err.code != 404:
                raise

    def set_status(self, obj: JSONDict, status: JSONDict) -> JSONDict:
        """Replace an object's status (as a controller would)."""
        return self.controllers.ctx.set_status(obj, status)

    def install_crd(
        self, source: JSONDict | str | os.PathLike[str] | Iterable[JSONDict]
    ) -> builtins.list[str]:
        """Create CRDs from a dict, a list of dicts, or a YAML file (multi-document allowed).

        Returns the names of the CRDs created; existing ones are replaced.
        """
        docs: list[JSONDict]
        if isinstance(source, dict):
            docs = [source]
        elif isinstance(source, (str, os.PathLike)):
            text = Path(source).read_text(encoding="utf-8")
            docs = [d for d in yaml.load_all(text, Loader=_LOADER) if isinstance(d, dict)]
        else:
            docs = list(source)
        res = self.core.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        names = []
        for doc in docs:
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            name = str(doc["metadata"]["name"])
            cur = self.core.try_get(res, "", name)
            if cur is None:
                self.core.create(res, "", doc, WriteOptions())
            else:
                body = dict(doc)
                body["metadata"] = dict(doc["metadata"])
                self.core.update(res, "", name, body, WriteOptions())
            names.append(name)
        return names

    def append_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Add a line to a container's log (served by ``pods/log``)."""
        self.core.append_log(namespace, pod, container, line)
