"""Object storage servers on loopback for the tests: moto's S3 server (pip ``moto[server]``),
Azurite's Blob service (npm ``azurite``, installed by ``.ci/run`` under ``.nox/azurite``), and a
TCP relay a test can cut to make a store unreachable mid-call (optionally terminating TLS, to
put a store behind a certificate)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netweave.testing import require_backend
from servers import free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Azurite's documented development account (public, in Microsoft's docs; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class S3Server:
    endpoint: str
    access_key_id: str = "netweave-test"
    secret_access_key: str = "netweave-test-secret"

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)


@contextlib.contextmanager
def _process(
    args: list[str], port: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[None]:
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env if env is not None else dict(os.environ),
        cwd=cwd,
    )
    try:
        wait_for_port(port, timeout=60)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def run_moto(*, enforce_auth: bool = False) -> Iterator[S3Server]:
    """moto's S3 in server mode on a free loopback port; with ``enforce_auth`` it checks
    access keys against its (empty) IAM, so any key is refused as unknown."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        require_backend("moto[server] is not installed (the [testing] extra)")
    port = free_port()
    env = dict(os.environ)
    if enforce_auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _process(args, port, env):
        yield S3Server(f"http://127.0.0.1:{port}")


def azurite_binary() -> str | None:
    configured = os.environ.get("NETWEAVE_AZURITE")
    if configured:
        return configured
    local = REPO_ROOT / ".nox" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if local.is_file():
        return str(local)
    return shutil.which("azurite-blob")


@dataclass
class AzureServer:
    endpoint: str
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY

    def create_container(self, name: str) -> None:
        """``Create Container`` signed with the account key (SharedKey), as the SDKs do."""
        date = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
        canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        resource = f"/{self.account}/{self.account}/{name}\nrestype:container"
        signed = "PUT\n\n\n\n\napplication/octet-stream\n\n\n\n\n\n\n" + canonical + resource
        digest = hmac.new(base64.b64decode(self.key), signed.encode(), hashlib.sha256).digest()
        headers["Content-Type"] = "application/octet-stream"
        headers["Authorization"] = f"SharedKey {self.account}:{base64.b64encode(digest).decode()}"
        request = urllib.request.Request(
            f"{self.endpoint}/{name}?restype=container", data=b"", method="PUT", headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201


@contextlib.contextmanager
def run_azurite(workdir: Path) -> Iterator[AzureServer]:
    binary = azurite_binary()
    if binary is None:
        require_backend(
            "Azurite is not installed (npm install --prefix .nox/azurite azurite, as .ci/run "
            "does; or NETWEAVE_AZURITE=<path of azurite-blob>)"
        )
    port = free_port()
    args = [
        binary,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
        # Loopback only: Azurite otherwise sends usage telemetry to a cloud endpoint.
        "--disableTelemetry",
    ]
    # In memory: nothing to clean (AZURITE_DB, if set, would ask for SQL metadata instead).
    env = {k: v for k, v in os.environ.items() if k != "AZURITE_DB"}
    with _process(args, port, env, cwd=workdir):
        yield AzureServer(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")


class Relay:
    """A TCP relay to ``target_port`` on loopback that a test can cut (every connection closed,
    no new ones taken) after ``cut_after`` bytes went upstream, or at once, and restore."""

    def __init__(self, target_port: int, tls: ssl.SSLContext | None = None) -> None:
        self.target_port = target_port
        self.tls = tls
        self.port = free_port()
        self.cut_after: int | None = None
        self.upstream_bytes = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.cut_event = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self.cut_event.clear()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client.settimeout(5)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.settimeout(None)
        except OSError:  # a refused handshake (an untrusting client) included
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counts: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if counts:
                    with self._lock:
                        self.upstream_bytes += len(data)
                        over = self.cut_after is not None and self.upstream_bytes > self.cut_after
                    if over:
                        threading.Thread(target=self.cut, daemon=True).start()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """The store becomes unreachable: connections reset, nothing listens on the port."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        if listener is not None:
            # close() alone leaves the thread blocked in accept() able to take one more
            # connection; shutdown wakes it first, so nothing is accepted after the cut.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                # Linger 0: a reset, as a store that went away mid-transfer gives.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.close()
        self.cut_event.set()

    def restore(self) -> None:
        self.cut_after = None
        self.start()

    def close(self) -> None:
        self.cut()
