"""``netweave.fetching.Fetcher``, the one client for fetches a client's content causes, against
a loopback listener that counts what reaches it: redirects are bounded and checked hop by hop
(a ``file:`` target reads nothing), credentials stay with their origin, a download over its
limit or not matching its digest leaves no file, and no error carries the server's words."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from netweave.config import FetchSettings
from netweave.errors import InvalidInput, Unprocessable
from netweave.fetching import MAX_REDIRECTS, Fetcher, FetchPolicy

BODY = b"chart bytes " * 1000
SECRET = b"internal: do not tell"


class _Listener(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]]
    other = ""  # another origin (same address, other port)

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/loop/"):
            self._redirect(f"/loop/{int(self.path.rsplit('/', 1)[1]) + 1}")
        elif self.path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif self.path == "/same":
            self._redirect("/body")
        elif self.path == "/away":
            self._redirect(f"{self.other}/body")
        elif self.path == "/body":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        else:
            self.send_response(500)
            self.send_header("Content-Length", str(len(SECRET)))
            self.end_headers()
            self.wfile.write(SECRET)


def _serve(seen: list[tuple[str, str | None]], other: str = "") -> http.server.HTTPServer:
    handler = type("Handler", (_Listener,), {"seen": seen, "other": other})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[str, list[tuple[str, str | None]], list[tuple[str, str | None]]]]:
    far_seen: list[tuple[str, str | None]] = []
    far = _serve(far_seen)
    near_seen: list[tuple[str, str | None]] = []
    near = _serve(near_seen, other=f"http://127.0.0.1:{far.server_address[1]}")
    try:
        yield f"http://127.0.0.1:{near.server_address[1]}", near_seen, far_seen
    finally:
        for server in (near, far):
            server.shutdown()
            server.server_close()


def fetcher() -> Fetcher:
    policy = FetchPolicy.from_settings(FetchSettings(allowedCidrs=["127.0.0.0/8"]))
    return Fetcher(policy, timeout=10, field="packageUri", subject="packageUri 'x'")


async def test_redirects_are_bounded(servers: tuple[str, list, list]) -> None:
    base, seen, _ = servers
    async with fetcher() as fetch:
        with pytest.raises(InvalidInput, match=f"redirects more than {MAX_REDIRECTS} times"):
            await fetch.read(f"{base}/loop/0", limit=1000)
    assert len(seen) == MAX_REDIRECTS + 1


async def test_a_redirect_to_a_file_url_reads_nothing(servers: tuple[str, list, list]) -> None:
    base, seen, _ = servers
    async with fetcher() as fetch:
        with pytest.raises(Unprocessable) as caught:
            await fetch.read(f"{base}/to-file", limit=1000)
    assert "absolute http(s) URL" in caught.value.message
    assert "root:" not in caught.value.message
    assert seen == [("/to-file", None)]


async def test_credentials_stay_with_their_origin(servers: tuple[str, list, list]) -> None:
    base, near, far = servers
    headers = {"Authorization": "Bearer t0k3n"}
    async with fetcher() as fetch:
        assert (await fetch.read(f"{base}/same", limit=1 << 20, headers=headers)).body == BODY
        assert (await fetch.read(f"{base}/away", limit=1 << 20, headers=headers)).body == BODY
    assert near == [
        ("/same", "Bearer t0k3n"),
        ("/body", "Bearer t0k3n"),
        ("/away", "Bearer t0k3n"),
    ]
    assert far == [("/body", None)]


async def test_downloads_over_their_limit_or_digest_leave_nothing(
    servers: tuple[str, list, list], tmp_path: Path
) -> None:
    base, _, _ = servers
    target = tmp_path / "chart.tgz"
    good = f"sha256:{hashlib.sha256(BODY).hexdigest()}"
    async with fetcher() as fetch:
        with pytest.raises(InvalidInput, match="larger than 100 bytes"):
            await fetch.to_file(f"{base}/body", target, limit=100)
        with pytest.raises(InvalidInput, match="does not match its digest"):
            await fetch.to_file(f"{base}/body", target, limit=1 << 20, digest="sha256:" + "0" * 64)
        assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a test directory
        assert await fetch.to_file(f"{base}/body", target, limit=1 << 20, digest=good) == target
    assert target.read_bytes() == BODY
    assert list(tmp_path.iterdir()) == [target]  # noqa: ASYNC240


async def test_errors_do_not_echo_the_server(
    servers: tuple[str, list, list], tmp_path: Path
) -> None:
    base, _, _ = servers
    async with fetcher() as fetch:
        with pytest.raises(InvalidInput) as caught:
            await fetch.to_file(f"{base}/internal", tmp_path / "x", limit=1000)
    assert caught.value.message == "packageUri 'x' answered HTTP 500"
    assert "internal" not in str(caught.value.details)
