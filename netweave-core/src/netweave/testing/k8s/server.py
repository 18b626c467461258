"""The HTTP layer: routing Kubernetes API paths onto :class:`ApiCore`."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from netweave.testing.k8s import discovery, protobuf
from netweave.testing.k8s.api import ApiCore, ListOptions, WriteOptions, format_log_line
from netweave.testing.k8s.errors import ApiError, bad_request, status_success
from netweave.testing.k8s.faults import Fault, FaultInjector
from netweave.testing.k8s.resources import Resource
from netweave.testing.k8s.util import JSONDict, parse_rfc3339

MAX_BODY = 64 * 1024 * 1024
MAX_WATCH_SECONDS = 1800.0
_TRUE = ("true", "True", "1", "t", "T", "TRUE")


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator answered, for assertions in tests."""

    method: str
    path: str
    query: str
    content_type: str
    accept: str
    user_agent: str
    body_length: int
    status: int
    watch: bool = False
    duration: float = 0.0  # seconds until the response (or the watch stream) started

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


class _DropConnection(Exception):
    """Abort the response and close the socket (injected faults)."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Python's default listen backlog (5) drops connections under concurrent Helm runs.
    request_queue_size = 256

    def __init__(
        self,
        core: ApiCore,
        faults: FaultInjector,
        version: JSONDict,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        super().__init__(address, _Handler)
        self.core = core
        self.faults = faults
        self.version_info = version
        self.stopping = threading.Event()
        self.records: deque[RequestRecord] = deque(maxlen=100_000)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.watch_bookmark_interval = 15.0
        self.internal_errors: list[str] = []
        # follow=true streams like a kubelet (until the container exits) only when enabled;
        # otherwise it answers the lines so far and ends (see KubernetesEmulator).
        self.follow_logs = False

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(sock)
            else:
                self._conns.discard(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-request (a killed process) is not the emulator's fault:
        # no traceback on stderr for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY every keep-alive response stalls ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer
    _headers_buffer: list[bytes]  # http.server's internal buffer, written in one go
    server_version = "netweave-k8s-emulator"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests record requests in RequestRecord instead of stderr

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # --- plumbing --------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        self._query = parse_qs(parts.query, keep_blank_values=True)
        self._status = 0
        self._warnings: list[str] = []
        self._is_watch = self._param("watch") in _TRUE
        self._recorded = False
        self._started = time.monotonic()
        self._path = path
        self._raw_query = parts.query
        self._body_length = 0
        watch_fault: Fault | None = None
        try:
            body = self._read_body()
            self._body_length = len(body)
            for fault in self.server.faults.take(method, path, self._is_watch):
                if fault.kind == "latency":
                    time.sleep(max(0.0, min(fault.latency, 600.0)))
                elif fault.kind == "hang":
                    self._hold(fault)
                elif fault.kind == "reset":
                    raise _DropConnection
                elif fault.kind == "drop_watch":
                    watch_fault = fault
                elif fault.kind == "error":
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(fault.retry_after)
                    raise ApiError(fault.status, fault.message, headers=headers)
            self._route(method, path, body, watch_fault)
        except ApiError as err:
            self._send_json(err.code, err.status(), err.headers)
        except _DropConnection:
            self.close_connection = True
            self._status = 0
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the emulator: answer like a real server would
            # Kept for the fixture, which fails the test: an emulator bug must not pass
            # for an adapter bug (or be silently retried by a client).
            self.server.internal_errors.append(f"{method} {self.path}\n{traceback.format_exc()}")
            with contextlib.suppress(OSError):
                self._send_json(
                    500, ApiError(500, f"emulator error: {type(exc).__name__}: {exc}").status()
                )
        finally:
            if not self._recorded:
                self._record(self._status)

    def _record(self, status: int) -> None:
        self._recorded = True
        self.server.records.append(
            RequestRecord(
                self.command,
                self._path,
                self._raw_query,
                self.headers.get("Content-Type", ""),
                self.headers.get("Accept", ""),
                self.headers.get("User-Agent", ""),
                self._body_length,
                status,
                self._is_watch,
                time.monotonic() - self._started,
            )
        )

    def _client_gone(self) -> bool:
        """True when the client closed its end (readable socket with no data)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True

    def _hold(self, fault: Fault) -> None:
        """A "hang" fault: wait until it is removed, the server stops or its bound passes."""
        deadline = time.monotonic() + max(0.0, min(fault.latency, 600.0))
        while not self.server.stopping.is_set() and time.monotonic() < deadline:
            if fault.released.wait(0.05):
                return

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "request entity too large")
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            # Bounded by MAX_BODY.
            while total <= MAX_BODY:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                total += size
            return b"".join(chunks)
        return b""

    def _param(self, name: str) -> str | None:
        vals = self._query.get(name)
        return vals[-1] if vals else None

    def _int_param(self, name: str) -> int | None:
        raw = self._param(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise bad_request(f"invalid value for {name}: {raw!r}") from exc

    def _since_seconds(self) -> int | None:
        """``sinceSeconds``, or ``sinceTime`` (RFC 3339) turned into seconds."""
        since = self._int_param("sinceSeconds")
        stamp = self._param("sinceTime")
        if since is None and stamp:
            try:
                since = max(0, int(time.time() - parse_rfc3339(stamp)))
            except ValueError as exc:
                raise bad_request(f"invalid sinceTime: {stamp!r}") from exc
        return since

    def _send_json(
        self,
        code: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self._send_raw(code, data, content_type, headers)

    def _send_raw(
        self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self._status = code
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for w in self._warnings:
            self.send_header("Warning", f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"')
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # Record before answering so a client's next request cannot overtake the record.
        self._record(code)
        # Headers and body in one write: one TCP segment for small answers.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def _decode(self, body: bytes) -> JSONDict:
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype == protobuf.CONTENT_TYPE:
            return protobuf.decode(body)
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                obj = yaml.safe_load(body.decode("utf-8"))
            else:
                obj = json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding request body: {exc}") from exc
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was not a JSON object")
        return obj

    def _write_opts(self) -> WriteOptions:
        dry = self._query.get("dryRun") or []
        for d in dry:
            if d != "All":
                raise bad_request(f'dryRun: Unsupported value: "{d}": supported values: "All"')
        fv = self._param("fieldValidation") or "Warn"
        if fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f'fieldValidation: Unsupported value: "{fv}"')
        return WriteOptions(
            dry_run=bool(dry),
            field_validation=fv,
            field_manager=self._param("fieldManager") or "",
            force=(self._param("force") or "") in _TRUE,
            user_agent=self.headers.get("User-Agent", ""),
        )

    def _list_opts(self) -> ListOptions:
        return ListOptions(
            label_selector=self._param("labelSelector"),
            field_selector=self._param("fieldSelector"),
            limit=self._int_param("limit") or 0,
            continue_token=self._param("continue") or None,
            resource_version=self._param("resourceVersion"),
        )

    # --- routing -------------------------------------------------------------------------

    def _route(self, method: str, path: str, body: bytes, watch_fault: Fault | None) -> None:
        core = self.server.core
        reg = core.registry
        accept = self.headers.get("Accept", "")
        if method in ("GET", "HEAD"):
            if path == "/version":
                return self._send_json(200, self.server.version_info)
            if path in ("/healthz", "/readyz", "/livez"):
                return self._send_raw(200, b"ok", "text/plain; charset=utf-8")
            if path == "/openapi/v2":
                # An empty document: client-go then skips client-side schema validation.
                # octet-stream is a media type Go's mime parser accepts (the protobuf one is not).
                return self._send_raw(200, b"", "application/octet-stream")
            if path == "/api":
                agg = discovery.wants_aggregated(accept)
                if agg:
                    return self._send_json(
                        200, discovery.aggregated(reg, True, agg), content_type=agg
                    )
                port = self.server.server_address[1]
                return self._send_json(200, discovery.api_versions(f"127.0.0.1:{port}"))
            if path == "/apis":
                agg = discovery.wants_aggregated(accept)
                if agg:
                    return self._send_json(
                        200, discovery.aggregated(reg, False, agg), content_type=agg
                    )
                return self._send_json(200, discovery.group_list(reg))
        segs = [s for s in path.split("/") if s]
        if len(segs) >= 2 and segs[0] == "api" and segs[1] == "v1":
            group, version, rest = "", "v1", segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        elif len(segs) == 2 and segs[0] == "apis" and method == "GET":
            doc = discovery.group(reg, segs[1])
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return self._send_json(200, doc)
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            doc = discovery.resource_list(reg, group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return self._send_json(200, doc)
        ns: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (not group and len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            ns = rest[1]
            rest = rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) if len(rest) > 2 else None
        res = reg.get(group, version, plural)
        if res is None or (ns is not None and not res.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        if name is None:
            return self._collection(method, res, ns, body, watch_fault)
        return self._item(method, res, ns or "", name, sub, body, watch_fault)

    def _collection(
        self, method: str, res: Resource, ns: str | None, body: bytes, watch_fault: Fault | None
    ) -> None:
        core = self.server.core
        if method in ("GET", "HEAD"):
            if self._is_watch:
                return self._watch(res, ns, self._list_opts(), watch_fault)
            return self._send_json(200, core.list(res, ns, self._list_opts()))
        if method == "POST":
            if res.namespaced and ns is None:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            if "create" not in res.verbs:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            opts = self._write_opts()
            obj = core.create(res, ns or "", self._decode(body), opts)
            self._warnings = opts.warnings
            return self._send_json(201, obj)
        if method == "DELETE":
            opts = self._write_opts()
            options = self._decode(body) if body else {}
            out = core.delete_collection(res, ns, self._list_opts(), options, opts.dry_run)
            return self._send_json(200, out)
        raise ApiError(405, "the server does not allow this method on the requested resource")

    def _item(
        self,
        method: str,
        res: Resource,
        ns: str,
        name: str,
        sub: str | None,
        body: bytes,
        watch_fault: Fault | None,
    ) -> None:
        core = self.server.core
        if sub is not None:
            return self._subresource(method, res, ns, name, sub, body)
        if method in ("GET", "HEAD"):
            if self._is_watch:
                opts = self._list_opts()
                opts.field_selector = f"metadata.name={name}"
                return self._watch(res, ns if res.namespaced else None, opts, watch_fault)
            return self._send_json(200, core.get(res, ns, name))
        if method == "PUT":
            wopts = self._write_opts()
            obj = core.update(res, ns, name, self._decode(body), wopts)
            self._warnings = wopts.warnings
            return self._send_json(200, obj)
        if method == "PATCH":
            wopts = self._write_opts()
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            obj, created = core.patch(res, ns, name, ctype, body, wopts)
            self._warnings = wopts.warnings
            return self._send_json(201 if created else 200, obj)
        if method == "DELETE":
            wopts = self._write_opts()
            options = self._decode(body) if body else {}
            if self._param("propagationPolicy"):
                options["propagationPolicy"] = self._param("propagationPolicy")
            dry = wopts.dry_run or "All" in (options.get("dryRun") or [])
            return self._send_json(200, core.delete(res, ns, name, options, dry))
        raise ApiError(405, "the server does not allow this method on the requested resource")

    def _subresource(
        self, method: str, res: Resource, ns: str, name: str, sub: str, body: bytes
    ) -> None:
        core = self.server.core
        if (sub == "status" and res.status) or (sub == "finalize" and res.kind == "Namespace"):
            if method == "GET":
                return self._send_json(200, core.get(res, ns, name))
            opts = self._write_opts()
            if method == "PUT":
                return self._send_json(
                    200,
                    core.update(
                        res,
                        ns,
                        name,
                        self._decode(body),
                        opts,
                        subresource=sub,
                    ),
                )
            if method == "PATCH":
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                obj, _ = core.patch(res, ns, name, ctype, body, opts, subresource=sub)
                return self._send_json(200, obj)
        elif sub == "scale" and res.scale is not None:
            opts = self._write_opts()
            if method == "GET":
                return self._send_json(200, core.get_scale(res, ns, name))
            if method == "PUT":
                return self._send_json(
                    200, core.update_scale(res, ns, name, self._decode(body), opts)
                )
            if method == "PATCH":
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                obj, _ = core.patch(res, ns, name, ctype, body, opts, subresource="scale")
                return self._send_json(200, obj)
        elif sub == "log" and res.kind == "Pod" and not res.group and method == "GET":
            if (self._param("follow") or "") in _TRUE and self.server.follow_logs:
                return self._follow_log(ns, name)
            text = core.read_log(
                ns,
                name,
                self._param("container"),
                tail_lines=self._int_param("tailLines"),
                since_seconds=self._since_seconds(),
                timestamps=(self._param("timestamps") or "") in _TRUE,
                limit_bytes=self._int_param("limitBytes"),
            )
            return self._send_raw(200, text.encode(), "text/plain")
        elif sub == "eviction" and res.kind == "Pod" and method == "POST":
            core.delete(res, ns, name)
            return self._send_json(201, status_success())
        raise ApiError(404, "the server could not find the requested resource")

    def _follow_log(self, ns: str, pod: str) -> None:
        """Stream a container's log until it exits, the Pod goes or the client leaves."""
        core = self.server.core
        container = core.log_container(ns, pod, self._param("container"))
        text = core.read_log(
            ns,
            pod,
            container,
            tail_lines=self._int_param("tailLines"),
            since_seconds=self._since_seconds(),
            timestamps=(self._param("timestamps") or "") in _TRUE,
        )
        stamps = (self._param("timestamps") or "") in _TRUE
        sent = len(core.log_entries(ns, pod, container))
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._record(200)

        def chunk(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        chunk(text.encode())
        deadline = time.monotonic() + MAX_WATCH_SECONDS
        store = core.store
        # Bounded by the deadline; each pass waits at most 0.5 s.
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            entries = core.log_entries(ns, pod, container)
            if len(entries) > sent:
                chunk("".join(format_log_line(t, ln, stamps) for t, ln in entries[sent:]).encode())
                sent = len(entries)
                continue
            if core.pod_finished(ns, pod) or self._client_gone():
                break
            with store.cond:
                if len(core.logs.get((ns, pod, container), [])) == sent and not store.closed:
                    store.cond.wait(timeout=0.5)
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        self.close_connection = True

    # --- watch ---------------------------------------------------------------------------

    def _watch(self, res: Resource, ns: str | None, opts: ListOptions, fault: Fault | None) -> None:
        timeout = float(self._int_param("timeoutSeconds") or MAX_WATCH_SECONDS)
        timeout = max(0.0, min(timeout, MAX_WATCH_SECONDS))
        sie = self._param("sendInitialEvents")
        send_initial = None if sie is None else sie in _TRUE
        bookmarks = (self._param("allowWatchBookmarks") or "") in _TRUE
        rv = opts.resource_version or ""
        if rv not in ("", "0") and not rv.isdigit():
            raise bad_request(f'invalid resource version: "{rv}"')
        stream = self.server.core.watch(
            res,
            ns,
            opts,
            send_initial=send_initial,
            allow_bookmarks=bookmarks,
            timeout=timeout,
            stop=self.server.stopping,
            bookmark_interval=self.server.watch_bookmark_interval,
        )
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        self._record(200)  # now, not when the stream ends, so tests see open watches
        sent = 0
        try:
            if fault is not None and fault.after_events <= 0:
                raise _DropConnection
            for ev in stream:
                if ev is None:
                    if self._client_gone():
                        break
                    continue
                line = json.dumps(ev, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                sent += 1
                if fault is not None and sent >= fault.after_events:
                    raise _DropConnection
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            stream.close()
        self.close_connection = True
