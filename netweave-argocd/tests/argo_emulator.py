"""An Argo CD v3.5 API emulator for the adapter's tests, served over loopback HTTP.

Every request it receives and every response it sends is validated against Argo CD's published
``swagger.json`` (strict: unknown fields and undeclared query parameters fail), and every
Application it stores against ``application-crd.yaml``'s schema. A violation is recorded and
answered with 400, and the ``argo`` fixture fails the test at teardown if any was recorded.

It behaves like argocd-server plus the application controller:

- auth: static API tokens, or ``POST /api/v1/session`` logins issuing expiring JWT-shaped
  tokens; an expired or revoked token answers 401 (gRPC Unauthenticated, 16);
- errors are grpc-gateway ``runtimeError`` bodies with gRPC codes (5 NotFound → 404,
  3 InvalidArgument → 400, 9 FailedPrecondition → 400, 7 PermissionDenied → 403 …);
- a GET/sync/rollback/delete of a missing app *without* ``project`` answers 403 "permission
  denied" (Argo CD hides existence), with ``project`` a real 404;
- the controller is stepped explicitly (``tick``/``settle``) or on every app GET or list
  (``auto_tick``): first reconciliation (OutOfSync/Missing), a requested operation starts
  (Running, health Progressing), then ends as scripted (``script``: succeed, fail, error,
  degraded, hang), history grows, auto-sync starts operations by itself (once per target;
  again for the same target only with ``selfHeal``), cascading deletes remove the app after
  its finalizer ran.

The contract quirks it works around are the documented ones (``runtimeRawExtension`` carries
a plain JSON object; ``v1alpha1ResourceNode`` inlines ``ResourceRef``'s fields).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from netweave.testing.contracts import ContractValidator, ContractViolation, validate_against_crd
from netweave.testing.emulators import StrictContract
from netweave.testing.k8s.errors import ApiError
from netweave.testing.k8s.patches import json_patch, merge_patch

SHARED = Path(
    os.environ.get("NETWEAVE_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared")
)
SWAGGER = SHARED / "contracts" / "argocd" / "swagger.json"
CRD = SHARED / "contracts" / "argocd" / "application-crd.yaml"

FINALIZER = "resources-finalizer.argocd.argoproj.io"
HISTORY_LIMIT = 10
_HTTP = {2: 500, 3: 400, 5: 404, 6: 409, 7: 403, 9: 400, 13: 500, 14: 503, 16: 401}

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@functools.lru_cache(maxsize=1)
def contract() -> ContractValidator:
    """Argo CD's swagger.json, strict, with its two documented quirks patched."""
    document = json.loads(SWAGGER.read_text())
    definitions = document["definitions"]
    node = copy.deepcopy(definitions["v1alpha1ResourceNode"])
    # ResourceNode embeds ResourceRef inline (Go struct embedding): the JSON carries its fields.
    node["properties"].update(definitions["v1alpha1ResourceRef"]["properties"])
    return ContractValidator(
        document,
        uri=SWAGGER.resolve().as_uri(),
        strict=True,
        overrides={
            # RawExtension is sent as the raw JSON object, not {raw: <bytes>}.
            "#/definitions/runtimeRawExtension": {"type": "object"},
            "#/definitions/v1alpha1ResourceNode": node,
        },
    )


class ArgoError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return _HTTP.get(self.code, 500)

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "message": self.message}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Controlled:
    """Emulator-side state of one Application (never sent to clients)."""

    #: Results for the next operations, in order: succeed, fail, error, degraded, hang.
    outcomes: list[str] = field(default_factory=list)
    #: The source the cluster currently runs (what the last successful sync applied).
    deployed: dict[str, Any] | None = None
    #: Health the app settles on after its current Progressing phase.
    settle_health: str = "Healthy"
    #: Set when the running operation started inside ``ArgoEmulator.failing``: it fails so.
    failing: str | None = None
    #: Changes made in the cluster behind Argo CD's back (``kubectl edit``/``delete``): fields
    #: merged over a live object, by (kind, name); objects deleted. A sync undoes both.
    live_edits: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    operation_id: str | None


class ArgoEmulator:
    def __init__(self) -> None:
        self.contract = contract()
        #: core's strict emulator base: both directions, failed at teardown by the fixture.
        self.strict = StrictContract(self.contract)
        self.namespace = "argocd"
        self.projects = {"default", "nf"}
        self.tokens = {"static-token"}
        self.users = {"admin": "s3cret"}
        self.session_ttl = 3600.0
        self.sessions: dict[str, float] = {}
        self.logins = 0
        self.git_repos: dict[str, dict[str, list[str]]] = {}
        self.helm_repos: dict[str, dict[str, list[str]]] = {}
        self.apps: dict[tuple[str, str], dict[str, Any]] = {}
        self.control: dict[tuple[str, str], Controlled] = {}
        self.logs: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.log_error: dict[str, Any] | None = None
        self.auto_tick = False
        #: While set, every call answers 503 Unavailable (an outage of argocd-server).
        self.down = False
        #: KitFaults: operations started meanwhile fail with this message (``failing``); every
        #: change request loses its connection before an answer (``crashing``).
        self.failing_message: str | None = None
        self.crashing_requests = False
        #: Seconds every answer is held back (a slow or hung argocd-server).
        self.stall = 0.0
        #: Helm charts (name, version) whose Deployment the cluster refuses: every sync of them
        #: fails (a package whose apply fails).
        self.failing_charts: set[tuple[str, str]] = set()
        self.lock = threading.RLock()
        #: Operations that ignore the project they are given (as older servers did for some).
        self.project_blind: set[str] = set()
        self._current: str | None = None
        self.violations: list[str] = self.strict.violations
        self.requests: list[Request] = []
        #: Injected failures for the next requests: (HTTP status, gRPC code, Retry-After).
        self.faults: list[tuple[int, int, str | None]] = []
        #: Injected failures for the next calls of one operation (by operationId).
        self.operation_faults: dict[str, list[tuple[int, int, str | None]]] = {}
        self._resource_version = 1000
        self._token_counter = 0
        self.url = ""

    # -- test controls ---------------------------------------------------------------------

    def add_git_repo(self, url: str, branches: list[str], tags: list[str]) -> None:
        self.git_repos[url] = {"branches": branches, "tags": tags}

    def add_helm_repo(self, url: str, charts: dict[str, list[str]]) -> None:
        self.helm_repos[url] = charts

    def script(self, name: str, *outcomes: str, namespace: str = "argocd") -> None:
        self.control.setdefault((namespace, name), Controlled()).outcomes.extend(outcomes)

    def app(self, name: str, namespace: str = "argocd") -> dict[str, Any]:
        return self.apps[(namespace, name)]

    def fail_next(
        self, count: int, status: int = 503, code: int = 14, retry_after: str | None = None
    ) -> None:
        self.faults.extend([(status, code, retry_after)] * count)

    def fail_operation(
        self, operation_id: str, count: int, status: int = 503, code: int = 14
    ) -> None:
        self.operation_faults.setdefault(operation_id, []).extend([(status, code, None)] * count)

    @contextmanager
    def failing(self, message: str) -> Iterator[None]:
        """Every sync or rollback operation started in the block fails applying its resources,
        ``operationState.message`` carrying ``message`` (the kit's KitFaults)."""
        with self.lock:
            self.failing_message = message
        try:
            yield
        finally:
            with self.lock:
                self.failing_message = None

    @contextmanager
    def crashing(self) -> Iterator[None]:
        """argocd-server dies while serving every change request (any method but GET, logins
        aside): the connection closes before an answer, nothing is done (the kit's KitFaults)."""
        self.crashing_requests = True
        try:
            yield
        finally:
            self.crashing_requests = False

    def edit_live(self, name: str, kind: str, obj: str, fields: dict[str, Any]) -> None:
        """Someone edits a live object of the app with ``kubectl``: the controller's next
        comparison finds it OutOfSync."""
        with self.lock:
            app = self.apps[(self.namespace, name)]
            self.control[(self.namespace, name)].live_edits[(kind, obj)] = fields
            self._compare(app)
            self._store(app)

    def delete_live(self, name: str, kind: str, obj: str) -> None:
        """Someone deletes a live object of the app: OutOfSync, its health Missing."""
        with self.lock:
            app = self.apps[(self.namespace, name)]
            self.control[(self.namespace, name)].deleted.add((kind, obj))
            self._compare(app)
            self._store(app)

    def degrade(
        self, name: str, message: str = "Deployment has minimum availability issues"
    ) -> None:
        """The app's workload stops being available (pods crash): health Degraded."""
        with self.lock:
            app = self.apps[(self.namespace, name)]
            app["status"]["health"] = {"status": "Degraded", "message": message}
            self._compare(app)
            self._store(app)

    def expire_sessions(self) -> None:
        """Revoke every session server-side (as a restart with a new signing key would)."""
        self.sessions = {token: 0.0 for token in self.sessions}

    def tick(self, name: str, namespace: str = "argocd") -> None:
        """One reconciliation of the application controller."""
        with self.lock:
            self._tick(name, namespace)

    def _tick(self, name: str, namespace: str) -> None:
        key = (namespace, name)
        app = self.apps.get(key)
        if app is None:
            return
        before = json.dumps(app, sort_keys=True)
        ctl = self.control.setdefault(key, Controlled())
        status = app.setdefault("status", {})
        spec = app["spec"]
        if app["metadata"].get("deletionTimestamp"):
            # The finalizer deleted the resources; the Application goes.
            del self.apps[key]
            self.control.pop(key, None)
            return
        if "sync" not in status:
            status.update(
                {
                    "sync": {"status": "OutOfSync", "comparedTo": self._compared(app)},
                    "health": {"status": "Missing"},
                    "reconciledAt": now(),
                    "sourceType": "Helm"
                    if spec["source"].get("chart") or spec["source"].get("helm")
                    else "Directory",
                    "controllerNamespace": self.namespace,
                }
            )
        elif app.get("operation"):
            operation = app.pop("operation")
            status["operationState"] = {
                "operation": operation,
                "phase": "Running",
                "message": "waiting for healthy state of apps/Deployment",
                "startedAt": now(),
            }
            status["health"] = {"status": "Progressing"}
            ctl.failing = self.failing_message
        elif (status.get("operationState") or {}).get("phase") == "Running":
            self._finish_operation(app, ctl)
        elif status["health"]["status"] == "Progressing":
            status["health"] = {"status": ctl.settle_health}
            if ctl.settle_health == "Degraded":
                status["health"]["message"] = "Deployment has minimum availability issues"
            if ctl.deployed is not None:
                self._compare(app)
        elif self._auto_sync_due(app):
            app["operation"] = {
                "sync": {"revision": spec["source"].get("targetRevision", "HEAD")},
                "initiatedBy": {"automated": True},
                "retry": {"limit": 5},
            }
        if json.dumps(app, sort_keys=True) != before:
            self._store(app)

    def settle(self, name: str, namespace: str = "argocd", limit: int = 20) -> None:
        """Tick until nothing changes (bounded)."""
        with self.lock:
            for _ in range(limit):
                before = json.dumps(self.apps.get((namespace, name)), sort_keys=True)
                self._tick(name, namespace)
                if json.dumps(self.apps.get((namespace, name)), sort_keys=True) == before:
                    return

    def unscoped_app_calls(self) -> list[str]:
        """App-scoped requests that named no project (the adapter must always name it)."""
        missing = []
        for request in self.requests:
            if (
                request.operation_id is None
                or not request.operation_id.startswith("ApplicationService_")
                or request.operation_id in ("ApplicationService_List", "ApplicationService_Create")
            ):
                continue
            names = {k for k, _ in request.query}
            if isinstance(request.body, dict):
                names |= {k for k, v in request.body.items() if v}
            if "project" not in names:
                missing.append(f"{request.method} {request.path}")
        return missing

    # -- controller internals ----------------------------------------------------------------

    @staticmethod
    def _automated(app: dict[str, Any]) -> bool:
        automated = (app["spec"].get("syncPolicy") or {}).get("automated")
        return isinstance(automated, dict) and automated.get("enabled", True) is not False

    def _auto_sync_due(self, app: dict[str, Any]) -> bool:
        """Argo CD's automated sync: once per target (the resolved revision and the source
        without its targetRevision) for an OutOfSync app; again for the same target only with
        ``selfHeal`` (an edit in the cluster alone is left as it is)."""
        status = app["status"]
        if not self._automated(app) or status["sync"]["status"] != "OutOfSync":
            return False
        if app["spec"]["syncPolicy"]["automated"].get("selfHeal"):
            return True
        result = (status.get("operationState") or {}).get("syncResult")
        if result is None:
            return True

        def sans(source: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in source.items() if k != "targetRevision"}

        attempted = result["revision"] == status["sync"].get("revision") and sans(
            result["source"]
        ) == sans(app["spec"]["source"])
        return not attempted

    @staticmethod
    def _compared(app: dict[str, Any]) -> dict[str, Any]:
        return {
            "source": copy.deepcopy(app["spec"]["source"]),
            "destination": copy.deepcopy(app["spec"]["destination"]),
        }

    @staticmethod
    def _resolve(source: dict[str, Any]) -> str:
        if source.get("chart"):
            return str(source.get("targetRevision"))
        digest = hashlib.sha1(  # a fake commit id
            f"{source.get('repoURL')}@{source.get('targetRevision')}".encode()
        )
        return digest.hexdigest()

    @staticmethod
    def _manifests(app: dict[str, Any], source: dict[str, Any]) -> list[dict[str, Any]]:
        """What a source renders to (the chart's Deployment and Service)."""
        name = app["metadata"]["name"]
        namespace = app["spec"]["destination"].get("namespace", "default")
        values = (source.get("helm") or {}).get("valuesObject") or {}
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
        replicas = values.get("replicaCount", 1)
        meta = {"name": name, "namespace": namespace, "labels": labels}
        return [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": dict(meta),
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": dict(meta),
                "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        ]

    def _states(self, app: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(target, live) per object of the app: target from its source, live as the last
        sync applied it with the changes made behind Argo CD's back."""
        ctl = self.control[(app["metadata"]["namespace"], app["metadata"]["name"])]
        live: dict[tuple[str, str], dict[str, Any]] = {}
        if ctl.deployed is not None:
            for obj in self._manifests(app, ctl.deployed):
                key = (obj["kind"], obj["metadata"]["name"])
                if key in ctl.deleted:
                    continue
                live[key] = merge_patch(obj, ctl.live_edits[key]) if key in ctl.live_edits else obj
        return [
            (obj, live.get((obj["kind"], obj["metadata"]["name"])))
            for obj in self._manifests(app, app["spec"]["source"])
        ]

    def _compare(self, app: dict[str, Any]) -> None:
        """The controller's comparison: ``status.resources`` and the sync status."""
        status = app.setdefault("status", {})
        if "sync" not in status:
            return
        health = (status.get("health") or {}).get("status") or "Healthy"
        resources = []
        for target, live in self._states(app):
            if live is None:
                res_health = {"status": "Missing"}
            elif target["kind"] == "Deployment":
                res_health = {"status": health}
            else:
                res_health = {"status": "Healthy"}
            group = target["apiVersion"].rpartition("/")[0]
            resources.append(
                {
                    **({"group": group} if group else {}),
                    "version": target["apiVersion"].rpartition("/")[2],
                    "kind": target["kind"],
                    "namespace": target["metadata"]["namespace"],
                    "name": target["metadata"]["name"],
                    "status": "Synced" if live == target else "OutOfSync",
                    "health": res_health,
                }
            )
        status["resources"] = resources
        deployed = self.control[(app["metadata"]["namespace"], app["metadata"]["name"])].deployed
        # A source that renders the same objects (values the chart ignores) is still another
        # source: Argo CD compares it OutOfSync.
        in_sync = deployed == app["spec"]["source"] and all(
            r["status"] == "Synced" for r in resources
        )
        status["sync"]["status"] = "Synced" if in_sync else "OutOfSync"
        status["sync"]["comparedTo"] = self._compared(app)
        # The revision the source resolves to now (what it was compared with).
        status["sync"]["revision"] = self._resolve(app["spec"]["source"])

    def _finish_operation(self, app: dict[str, Any], ctl: Controlled) -> None:
        status = app["status"]
        state = status["operationState"]
        outcome = ctl.outcomes.pop(0) if ctl.outcomes else "succeed"
        failing, ctl.failing = ctl.failing, None
        target = (state["operation"].get("sync") or {}).get("source") or app["spec"]["source"]
        chart = (str(target.get("chart") or ""), str(target.get("targetRevision") or ""))
        if failing is None and chart in self.failing_charts:
            failing = (
                f'Deployment.apps "{app["metadata"]["name"]}" is invalid: spec.replicas: '
                'Invalid value: "three": spec.replicas in body must be of type integer'
            )
        if failing is not None and outcome == "succeed":
            outcome = "fail"
        if outcome == "hang":
            ctl.outcomes.insert(0, "hang")
            return
        state["finishedAt"] = now()
        if outcome in ("fail", "error"):
            state["phase"] = "Failed" if outcome == "fail" else "Error"
            reason = failing or 'Deployment.apps "web" is invalid'
            state["message"] = (
                f"one or more objects failed to apply, reason: {reason}"
                if outcome == "fail"
                else "rpc error: code = Unknown desc = helm template failed"
            )
            status["health"] = {"status": "Missing" if ctl.deployed is None else "Healthy"}
            return
        sync = state["operation"].get("sync") or {}
        used = copy.deepcopy(sync.get("source") or app["spec"]["source"])
        revision = self._resolve(used)
        state["phase"] = "Succeeded"
        state["message"] = "successfully synced (all tasks run)"
        state["syncResult"] = {"revision": revision, "source": used, "resources": []}
        history = status.setdefault("history", [])
        next_id = (max((h["id"] for h in history), default=-1) + 1) if history else 0
        history.append(
            {
                "id": next_id,
                "revision": revision,
                "source": used,
                "deployedAt": now(),
                "deployStartedAt": state["startedAt"],
                "initiatedBy": state["operation"].get("initiatedBy") or {},
            }
        )
        del history[: max(0, len(history) - HISTORY_LIMIT)]
        ctl.deployed = used
        name = app["metadata"]["name"]
        key = (app["metadata"]["namespace"], name)
        # The new pods' first words, unless a test scripted the logs.
        self.logs.setdefault(key, [])
        for pod in (f"{name}-0", f"{name}-1"):
            self.logs[key].append(
                {"podName": pod, "container": "app", "content": f"serving revision {revision}"}
            )
        ctl.settle_health = "Degraded" if outcome == "degraded" else "Healthy"
        status["health"] = {"status": "Progressing"}
        status["sync"] = {
            "status": "Synced" if used == app["spec"]["source"] else "OutOfSync",
            "revision": revision,
            "comparedTo": self._compared(app),
        }
        # The sync applied every object again: edits and deletions behind its back are undone.
        ctl.live_edits.clear()
        ctl.deleted.clear()
        self._compare(app)

    def _store(self, app: dict[str, Any]) -> None:
        self._resource_version += 1
        app["metadata"]["resourceVersion"] = str(self._resource_version)
        self._check_crd(app)

    def _check_crd(self, app: dict[str, Any]) -> None:
        try:
            # The REST API carries no apiVersion/kind (swagger's Application has none); the
            # resource the server stores is the CRD's kind.
            validate_against_crd(
                {**app, "apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}, CRD
            )
        except ContractViolation as exc:
            self.strict.record(f"stored Application violates the CRD: {exc}")
            raise ArgoError(3, f"application spec is invalid: {exc.field}: {exc.reason}") from exc

    # -- HTTP ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?")[0]
        query = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method = scope["method"]
        if self.stall:
            await asyncio.sleep(self.stall)
        if self.crashing_requests and method != "GET" and not path.endswith("/session"):
            # Died mid-request: the status line went out, the answer never does (ASGI cannot
            # close a connection before it; the client sees the connection drop either way).
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
                }
            )
            return
        # The server runs in its own thread: tests step the controller from theirs.
        with self.lock:
            outcome = self._handle(method, path, query, headers, raw)
        if isinstance(outcome, tuple):
            status, data, extra = outcome
            await self._send(send, status, data, extra)
        else:
            await self._stream(send, method, path, outcome)

    def _handle(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | AsyncIterator[dict[str, Any]]:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, b'{"error": "bad json", "code": 3, "message": "bad json"}', []
        try:
            op = self.strict.request(method, path, query, body, headers)
        except ContractViolation as exc:
            self.requests.append(Request(method, path, query, body, None))
            error = ArgoError(3, f"contract violation: {exc}")
            return 400, json.dumps(error.body()).encode(), []
        self.requests.append(Request(method, path, query, body, op.operation_id))
        queued = self.operation_faults.get(op.operation_id)
        if self.down:
            queued = [(503, 14, None)]
        if self.faults or queued:
            status, code, retry_after = queued.pop(0) if queued else self.faults.pop(0)
            extra = [(b"retry-after", retry_after.encode())] if retry_after else []
            fault = ArgoError(code, "injected fault")
            self._check_response(method, path, status, fault.body())
            return status, json.dumps(fault.body()).encode(), extra
        try:
            self._authenticate(op.operation_id, headers)
            self._current = op.operation_id
            handler = getattr(self, f"_op_{op.operation_id}", None)
            if handler is None:
                raise ArgoError(12, f"emulator does not implement {op.operation_id}")
            if op.operation_id == "ApplicationService_PodLogs2":
                chunks: AsyncIterator[dict[str, Any]] = handler(op.path_params, dict(query))
                return chunks
            status, answer = 200, handler(op.path_params, _query_dict(query), body)
        except ArgoError as exc:
            status, answer = exc.http_status, exc.body()
        self._check_response(method, path, status, answer)
        return status, json.dumps(answer).encode(), []

    def _check_response(self, method: str, path: str, status: int, body: Any) -> None:
        self.strict.response(method, path, status, body)

    @staticmethod
    async def _send(
        send: Send, status: int, data: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *(extra or [])],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _stream(
        self, send: Send, method: str, path: str, chunks: AsyncIterator[dict[str, Any]]
    ) -> None:
        started = False
        try:
            async for chunk in chunks:
                with self.lock:
                    self._check_response(method, path, 200, chunk)
                if not started:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    started = True
                line = json.dumps(chunk).encode() + b"\n"
                await send({"type": "http.response.body", "body": line, "more_body": True})
        except ArgoError as exc:
            if not started:
                with self.lock:
                    self._check_response(method, path, exc.http_status, exc.body())
                await self._send(send, exc.http_status, json.dumps(exc.body()).encode())
                return
        if not started:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
        await send({"type": "http.response.body", "body": b""})

    # -- auth -------------------------------------------------------------------------------

    def _authenticate(self, operation_id: str, headers: dict[str, str]) -> None:
        if operation_id in ("SessionService_Create", "VersionService_Version"):
            return
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if token in self.tokens:
            return
        if token in self.sessions and self.sessions[token] > time.time():
            return
        raise ArgoError(16, "invalid session: token has invalid claims: token is expired")

    def _op_SessionService_Create(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        if self.users.get(body.get("username", "")) != body.get("password"):
            raise ArgoError(16, "Invalid username or password")
        self.logins += 1
        self._token_counter += 1
        expires = time.time() + self.session_ttl
        token = jwt({"sub": body["username"], "exp": int(expires), "jti": str(self._token_counter)})
        self.sessions[token] = expires
        return {"token": token}

    def _op_SessionService_GetUserInfo(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        return {"loggedIn": True, "username": "admin", "iss": "argocd"}

    def _op_VersionService_Version(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        return {"Version": "v3.5.1+109ca7c", "GitTag": "v3.5.1", "Platform": "linux/amd64"}

    # -- repositories ------------------------------------------------------------------------

    def _op_RepositoryService_ListRefs(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        repo = params["repo"]
        if repo not in self.git_repos:
            raise ArgoError(2, f"rpc error: code = Unknown desc = repository not found: {repo}")
        return self.git_repos[repo]

    def _op_RepositoryService_GetHelmCharts(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        repo = params["repo"]
        if repo not in self.helm_repos:
            raise ArgoError(2, f"rpc error: code = Unknown desc = failed to get index: 404 {repo}")
        charts = self.helm_repos[repo]
        return {"items": [{"name": n, "versions": v} for n, v in sorted(charts.items())]}

    # -- applications -------------------------------------------------------------------------

    def _lookup(self, name: str, namespace: str | None, project: str | None) -> dict[str, Any]:
        app = self.apps.get((namespace or self.namespace, name))
        if self._current in self.project_blind:
            project = None
        if app is None:
            if not project:
                # Argo CD does not say whether an app it cannot scope exists.
                raise ArgoError(7, "permission denied")
            raise ArgoError(5, f'applications.argoproj.io "{name}" not found')
        if project and app["spec"]["project"] != project:
            raise ArgoError(7, "permission denied")
        return app

    def _op_ApplicationService_Create(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        app = copy.deepcopy(body)
        metadata = app.setdefault("metadata", {})
        name = metadata.get("name", "")
        namespace = metadata.setdefault("namespace", self.namespace)
        spec = app.get("spec") or {}
        if spec.get("project") not in self.projects:
            raise ArgoError(
                3, f"application references project {spec.get('project')} which does not exist"
            )
        destination = spec.get("destination") or {}
        if bool(destination.get("server")) == bool(destination.get("name")):
            raise ArgoError(3, "application destination can't have both name and server defined")
        if query.get("validate", "true") == "true":
            self._validate_source(spec.get("source") or {})
        key = (namespace, name)
        existing = self.apps.get(key)
        if existing is not None:
            same = (
                all(
                    existing["metadata"].get(k) == metadata.get(k)
                    for k in ("labels", "annotations", "finalizers")
                )
                and existing["spec"] == spec
            )
            if same:
                return existing
            if query.get("upsert") != "true":
                raise ArgoError(
                    3, "existing application spec is different, use upsert flag to force update"
                )
        metadata.update(
            {
                "uid": hashlib.md5(name.encode()).hexdigest(),
                "creationTimestamp": now(),
                "generation": 1,
            }
        )
        self._check_crd(app)
        self._store(app)
        self.apps[key] = app
        self.control.setdefault(key, Controlled())
        return app

    def _validate_source(self, source: dict[str, Any]) -> None:
        repo = source.get("repoURL", "")
        revision = source.get("targetRevision", "HEAD")
        if source.get("chart"):
            versions = self.helm_repos.get(repo, {}).get(source["chart"])
            if versions is None or revision not in versions:
                raise ArgoError(
                    3,
                    "application spec for web is invalid: InvalidSpecError: Unable to generate "
                    f"manifests: chart {source['chart']} {revision} not found in {repo}",
                )
            return
        refs = self.git_repos.get(repo)
        if refs is None:
            raise ArgoError(
                3,
                "application spec for web is invalid: InvalidSpecError: repository not "
                f"accessible: {repo}",
            )

    def _op_ApplicationService_List(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        projects = set(_as_list(query.get("projects")) + _as_list(query.get("project")))
        selector = dict(
            part.split("=", 1) for part in (query.get("selector") or "").split(",") if "=" in part
        )
        namespace = query.get("appNamespace")
        if self.auto_tick:  # the controller steps the listed apps as it does on a GET
            for ns, name in sorted(self.apps):
                if not namespace or ns == namespace:
                    self._tick(name, ns)
        items = []
        for (ns, _), app in sorted(self.apps.items()):
            if namespace and ns != namespace:
                continue
            if projects and app["spec"]["project"] not in projects:
                continue
            labels = app["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            items.append(app)
        return {"items": items, "metadata": {"resourceVersion": str(self._resource_version)}}

    def _op_ApplicationService_Get(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        project = _first(query.get("project"))
        app = self._lookup(params["name"], query.get("appNamespace"), project)
        if self.auto_tick:
            self._tick(params["name"], app["metadata"]["namespace"])
            return self._lookup(params["name"], query.get("appNamespace"), project)
        return app

    def _op_ApplicationService_Patch(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        app = self._lookup(params["name"], body.get("appNamespace"), body.get("project"))
        kind = body.get("patchType") or "json"
        try:
            patch = json.loads(body.get("patch") or "null")
            if kind == "json":
                patched = json_patch(app, patch)
            elif kind == "merge":
                patched = merge_patch(app, patch)
            else:
                raise ArgoError(3, f"Patch type '{kind}' is not supported")
        except (ValueError, ApiError) as exc:
            raise ArgoError(3, f"error applying patch: {exc}") from exc
        if patched["metadata"].get("name") != app["metadata"]["name"]:
            raise ArgoError(3, "the name of an application cannot change")
        self._check_crd(patched)
        if patched["spec"] != app["spec"]:
            patched["metadata"]["generation"] = app["metadata"].get("generation", 1) + 1
        key = (app["metadata"]["namespace"], app["metadata"]["name"])
        sync = (patched.get("status") or {}).get("sync")
        if sync:
            deployed = self.control[key].deployed
            sync["status"] = "Synced" if deployed == patched["spec"]["source"] else "OutOfSync"
            sync["comparedTo"] = self._compared(patched)
            if deployed is not None:
                self._compare(patched)
        self._store(patched)
        self.apps[key] = patched
        return patched

    def _busy(self, app: dict[str, Any]) -> bool:
        phase = ((app.get("status") or {}).get("operationState") or {}).get("phase")
        return bool(app.get("operation")) or phase in ("Running", "Terminating")

    def _op_ApplicationService_Sync(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        app = self._lookup(params["name"], body.get("appNamespace"), body.get("project"))
        if app["metadata"].get("deletionTimestamp"):
            raise ArgoError(9, "application is deleting")
        if self._busy(app):
            raise ArgoError(9, "another operation is already in progress")
        target = app["spec"]["source"].get("targetRevision", "HEAD")
        revision = body.get("revision") or target
        if self._automated(app) and revision != target:
            raise ArgoError(9, f"Cannot sync to {revision}: auto-sync currently set to {target}")
        operation: dict[str, Any] = {
            "sync": {"revision": revision, "prune": bool(body.get("prune"))},
            "initiatedBy": {"username": "admin"},
        }
        options = (app["spec"].get("syncPolicy") or {}).get("syncOptions")
        if options:
            operation["sync"]["syncOptions"] = options
        app["operation"] = operation
        self._store(app)
        return app

    def _op_ApplicationService_Rollback(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        app = self._lookup(params["name"], body.get("appNamespace"), body.get("project"))
        if self._automated(app):
            raise ArgoError(9, "rollback cannot be initiated when auto-sync is enabled")
        if app["metadata"].get("deletionTimestamp"):
            raise ArgoError(9, "application is deleting")
        if self._busy(app):
            raise ArgoError(9, "another operation is already in progress")
        wanted = int(body.get("id") or 0)
        entry = next(
            (h for h in (app.get("status") or {}).get("history") or () if h["id"] == wanted), None
        )
        if entry is None:
            raise ArgoError(
                3, f"application {params['name']} does not have deployment with id {wanted}"
            )
        app["operation"] = {
            "sync": {
                "revision": entry["revision"],
                "source": copy.deepcopy(entry["source"]),
                "prune": bool(body.get("prune")),
            },
            "initiatedBy": {"username": "admin"},
        }
        self._store(app)
        return app

    def _op_ApplicationService_Delete(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        cascade = query.get("cascade", "true") == "true"
        policy = query.get("propagationPolicy")
        if not cascade and policy:
            raise ArgoError(3, "cannot set propagation policy when cascading is disabled")
        if policy not in (None, "foreground", "background"):
            raise ArgoError(3, f"invalid propagation policy: {policy}")
        app = self._lookup(params["name"], query.get("appNamespace"), query.get("project"))
        key = (app["metadata"]["namespace"], app["metadata"]["name"])
        if not cascade:
            del self.apps[key]
            return {}
        finalizers = [
            f for f in app["metadata"].get("finalizers") or () if "resources-finalizer" not in f
        ]
        finalizers.append(FINALIZER if policy != "background" else f"{FINALIZER}/background")
        app["metadata"]["finalizers"] = finalizers
        app["metadata"]["deletionTimestamp"] = now()
        self._store(app)
        return {}

    def _op_ApplicationService_ResourceTree(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        app = self._lookup(
            params["applicationName"], query.get("appNamespace"), query.get("project")
        )
        key = (app["metadata"]["namespace"], app["metadata"]["name"])
        if self.control[key].deployed is None:
            raise ArgoError(5, f"resource tree for {params['applicationName']} not found")
        name = app["metadata"]["name"]
        namespace = app["spec"]["destination"].get("namespace", "default")
        health = app["status"]["health"]
        nodes = [
            {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": namespace,
                "name": name,
                "uid": f"{name}-deploy",
                "health": dict(health),
                "resourceVersion": "1",
            },
            {
                "version": "v1",
                "kind": "Service",
                "namespace": namespace,
                "name": name,
                "uid": f"{name}-svc",
                "health": {"status": "Healthy"},
                "resourceVersion": "1",
            },
            {
                "version": "v1",
                "kind": "Pod",
                "namespace": namespace,
                "name": f"{name}-0",
                "uid": f"{name}-pod",
                "health": dict(health),
                "resourceVersion": "1",
                "parentRefs": [
                    {"group": "apps", "kind": "ReplicaSet", "namespace": namespace, "name": name}
                ],
            },
        ]
        return {"nodes": nodes, "hosts": []}

    def _op_ApplicationService_ManagedResources(
        self, params: dict[str, str], query: dict[str, Any], body: Any
    ) -> Any:
        app = self._lookup(
            params["applicationName"], query.get("appNamespace"), query.get("project")
        )
        items = []
        for target, live in self._states(app):
            group = target["apiVersion"].rpartition("/")[0]
            live_json = json.dumps(live) if live is not None else "null"
            items.append(
                {
                    **({"group": group} if group else {}),
                    "kind": target["kind"],
                    "namespace": target["metadata"]["namespace"],
                    "name": target["metadata"]["name"],
                    "targetState": json.dumps(target),
                    "liveState": live_json,
                    "normalizedLiveState": live_json,
                    "predictedLiveState": json.dumps(target),
                    "modified": live != target,
                    "hook": False,
                }
            )
        return {"items": items}

    def _op_ApplicationService_PodLogs2(
        self, params: dict[str, str], query: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        async def chunks() -> AsyncIterator[dict[str, Any]]:
            with self.lock:
                app = self._lookup(params["name"], query.get("appNamespace"), query.get("project"))
                key = (app["metadata"]["namespace"], app["metadata"]["name"])
                lines = [
                    entry
                    for entry in self.logs.get(key, [])
                    if not query.get("container") or entry["container"] == query["container"]
                ]
            if query.get("tailLines"):
                lines = lines[-int(query["tailLines"]) :]
            for entry in lines:
                yield {
                    "result": {
                        "content": entry["content"],
                        "podName": entry["podName"],
                        "timeStamp": now(),
                        "timeStampStr": now(),
                    }
                }
                await asyncio.sleep(0)
            if self.log_error is not None:
                yield {"error": self.log_error}
                return
            yield {"result": {"last": True, "content": "", "timeStampStr": now()}}

        return chunks()


def _query_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            out[key] = [*_as_list(out[key]), value]
        else:
            out[key] = value
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _first(value: Any) -> str | None:
    values = _as_list(value)
    return values[0] if values else None


class Served:
    """The emulator on a loopback port, run by uvicorn in its own thread and event loop.

    Its own thread, so that it answers whatever the test's event loop is doing (the gateway's
    test client blocks that loop while the app runs).
    """

    def __init__(self, emulator: ArgoEmulator, tls: tuple[Path, Path] | None = None) -> None:
        self.emulator = emulator
        #: (certificate, key) to serve HTTPS instead of HTTP.
        self.tls = tls
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without, Nagle + delayed ACK add 40 ms per call.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.emulator,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=str(self.tls[0]) if self.tls else None,
            ssl_keyfile=str(self.tls[1]) if self.tls else None,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        for _ in range(500):  # bounded wait for start-up
            if server.started:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("the Argo CD emulator did not start")
        scheme = "https" if self.tls else "http"
        self.emulator.url = f"{scheme}://127.0.0.1:{port}"
        return self.emulator.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
