"""The SMO's side of SOL003 LCM notifications, for tests: a callback endpoint on 127.0.0.1 and
the notification contracts.

:class:`CallbackSink` answers the VNFM's test GET (204 by default) and records every POSTed
notification with its headers; it can be stopped and started again on the same port (a callback
endpoint that is down for a while) and can answer POSTs with an error status.

:func:`notification_validator` checks a notification body against the contract of its version:
v2 against the SOL003 V3.7.1 notification interface (``VNFLifecycleManagementNotification``),
v1 against the NFV-TST 010 v2.6.1 JSON Schemas, strictly (an attribute the standard does not
define fails; ProblemDetails stays open, as SOL013 allows).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import TST010_V1_SCHEMAS, _open_problem_details

VNFLCM_NOTIFICATIONS_V2 = Path(
    "contracts/etsi/nfv-sol002-sol003/SOL003/VNFLifecycleManagementNotification/"
    "VNFLifecycleManagementNotification.yaml"
)
#: Notification type → its TST 010 v2.6.1 schema file (v1).
_V1_SCHEMAS = {
    "VnfLcmOperationOccurrenceNotification": "VnfLcmOperationOccurrenceNotification.schema.json",
    "VnfIdentifierCreationNotification": "VnfIdentifierCreationNotification.schema.json",
    "VnfIdentifierDeletionNotification": "vnfIdentifierDeletionNotification.schema.json",
}
_V2_PATH = "/URI_is_provided_by_the_client_when_creating_the_subscription-"


def notification_validator(shared: Path, major: int) -> Callable[[dict[str, Any]], None]:
    """A function raising ``ContractViolation`` for a notification ``major`` does not define."""
    if major == 2:
        contract = ContractValidator.from_file(shared / VNFLCM_NOTIFICATIONS_V2, strict=True)

        def check_v2(body: dict[str, Any]) -> None:
            contract.validate_request(
                "POST", _V2_PATH + str(body.get("notificationType")), body=body
            )

        return check_v2
    schemas = (shared / TST010_V1_SCHEMAS).resolve()
    document = {
        "swagger": "2.0",
        "info": {"title": "TST 010 v2.6.1 LCM notifications", "version": "1.3.0"},
        "paths": {},
        "definitions": {name: _v1_schema(schemas / f) for name, f in _V1_SCHEMAS.items()},
    }
    v1 = ContractValidator(document, uri=schemas.as_uri() + "/", strict=True)

    def check_v1(body: dict[str, Any]) -> None:
        kind = str(body.get("notificationType"))
        if kind not in _V1_SCHEMAS:
            raise AssertionError(f"v1 defines no notification type {kind!r}")
        v1.validate_schema(kind, body)

    return check_v1


def _v1_schema(path: Path) -> Any:
    # VnfLcmOperationOccurrenceNotification.schema.json holds one cp1252 byte (in a
    # description, kept as found upstream): decode leniently.
    schema = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    schema.pop("$schema", None)
    _open_problem_details(schema)
    return schema


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    status: int
    #: The client certificate's common name, on a sink serving mutually authenticated TLS.
    peer: str | None = None


def _peer_name(connection: Any) -> str | None:
    """The common name of the client certificate a TLS connection presented, if any."""
    getpeercert = getattr(connection, "getpeercert", None)
    cert = getpeercert() if getpeercert is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@dataclass
class CallbackSink:
    """A notification endpoint on 127.0.0.1 (see the module docstring). Thread-safe reads."""

    #: What the test GET answers (SOL003: 204 means the endpoint works).
    get_status: int = 204
    #: What POSTed notifications answer (e.g. 503 while "broken").
    post_status: int = 204
    received: list[Received] = field(default_factory=list)
    gets: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    #: Serve HTTPS with this context (e.g. ``verify_mode = CERT_REQUIRED`` for mutual TLS);
    #: each request's client certificate name is then kept (``Received.peer``, ``peers``).
    tls: ssl.SSLContext | None = None
    #: Client certificate names of the test GETs, in arrival order (None: none presented).
    peers: list[str | None] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/callback"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass  # keep test output clean

            def do_GET(self) -> None:
                with sink._lock:
                    sink.gets.append(dict(self.headers.items()))
                    sink.peers.append(_peer_name(self.connection))
                self.send_response(sink.get_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 10_000_000))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_unparsable": raw.decode(errors="replace")}
                status = sink.post_status
                with sink._lock:
                    sink.received.append(
                        Received(
                            body, dict(self.headers.items()), status, _peer_name(self.connection)
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            # A failed handshake (a client without an accepted certificate) ends in accept():
            # socketserver drops that connection and keeps serving.
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: connections to the port are refused until :meth:`start` (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def accepted(self) -> list[dict[str, Any]]:
        """Bodies answered 2xx, in arrival order."""
        with self._lock:
            return [r.body for r in self.received if 200 <= r.status < 300]

    def unique(self) -> list[dict[str, Any]]:
        """What an SMO de-duplicating by ``id`` keeps (per subscription: one event has the
        same id for every subscriber), in arrival order."""
        seen: set[tuple[str, str]] = set()
        out = []
        for body in self.accepted():
            key = (str(body.get("subscriptionId")), str(body.get("id")))
            if key not in seen:
                seen.add(key)
                out.append(body)
        return out

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], seconds: float = 20.0
    ) -> list[dict[str, Any]]:
        """The de-duplicated notifications once ``predicate`` holds (bounded wait)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            bodies = self.unique()
            if predicate(bodies):
                return bodies
            await asyncio.sleep(0.05)
        summary = [(b.get("notificationType"), b.get("operationState")) for b in self.unique()]
        raise AssertionError(f"the callback got {summary}")


@contextmanager
def callback_sink(**settings: Any) -> Iterator[CallbackSink]:
    sink = CallbackSink(**settings)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def occurrence_story(bodies: list[dict[str, Any]], op_occ_id: str) -> list[str]:
    """``STATUS:STATE`` of one occurrence's notifications, in arrival order."""
    return [
        f"{b['notificationStatus']}:{b['operationState']}"
        for b in bodies
        if b.get("vnfLcmOpOccId") == op_occ_id
    ]


__all__ = [
    "VNFLCM_NOTIFICATIONS_V2",
    "CallbackSink",
    "Received",
    "callback_sink",
    "notification_validator",
    "occurrence_story",
]
