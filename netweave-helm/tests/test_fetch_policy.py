"""``packageUri`` fetches go through core's fetch policy: a loopback listener counts the requests
that reach it, so a refused host is proven to have been sent nothing, and an allowed one still
works; an internal server's answer never reaches the client's error."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AdapterFactory
from netweave.adapters import PackageUpload
from netweave.errors import InvalidInput

SECRET = b"internal-only: db password hunter2"


class _Listener(http.server.BaseHTTPRequestHandler):
    chart = b""
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/chart.tgz":
            body, status = self.chart, 200
        elif self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            body, status = SECRET, 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def listener(charts_dir: Path) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    chart = (charts_dir / "hello-world-0.1.0.tgz").read_bytes()
    handler = type("Handler", (_Listener,), {"chart": chart, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def by_uri(uri: str) -> PackageUpload:
    return PackageUpload(name="hello-world", version="0.1.0", package_uri=uri)


async def test_a_host_not_allowed_is_sent_nothing(
    listener: tuple[str, list[str]], adapter_factory: AdapterFactory
) -> None:
    base, seen = listener
    guarded = await adapter_factory(name="guarded")  # allowPrivatePackageUris off
    for uri in (f"{base}/chart.tgz", f"http://localhost:{base.rsplit(':', 1)[1]}/chart.tgz"):
        with pytest.raises(InvalidInput) as caught:
            await guarded.upload_package(by_uri(uri))
        assert caught.value.status == 422, caught.value
        assert "loopback" in caught.value.message
        assert "allowPrivatePackageUris" in caught.value.message
    oci = f"oci://{base.removeprefix('http://')}/charts/hello-world"
    with pytest.raises(InvalidInput):
        await guarded.upload_package(by_uri(oci))
    assert seen == []  # not one request left


async def test_an_allowed_host_works_and_its_errors_do_not_echo(
    listener: tuple[str, list[str]], adapter_factory: AdapterFactory
) -> None:
    base, seen = listener
    adapter = await adapter_factory({"allowPrivatePackageUris": True})
    info = await adapter.upload_package(by_uri(f"{base}/chart.tgz"))
    assert info.backend_ref == "hello-world:0.1.0"
    assert seen == ["/chart.tgz"]

    with pytest.raises(InvalidInput) as caught:
        await adapter.upload_package(by_uri(f"{base}/internal"))
    assert "HTTP 500" in caught.value.message
    assert "hunter2" not in str(caught.value.message) + str(caught.value.details)

    # A redirect to the metadata service is refused before that hop is requested, even with
    # private addresses allowed.
    with pytest.raises(InvalidInput) as caught:
        await adapter.upload_package(by_uri(f"{base}/hop"))
    assert "169.254.169.254" in caught.value.message and "link-local" in caught.value.message
    assert seen == ["/chart.tgz", "/internal", "/hop"]
