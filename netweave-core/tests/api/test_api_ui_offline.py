"""The API UI renders with no network beyond loopback (a real headless Chromium), and ``GET /``
points to it and to the API root."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from netweave.testing import processes, require_backend

START_TIMEOUT = 60.0
TOKEN = "ui-offline-test-token-123456"
#: Chromium without a network beyond loopback: every name but 127.0.0.1 fails to resolve, and
#: anything not on loopback goes to a proxy port nobody listens on.
OFFLINE_FLAGS = [
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def _pump(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``netweave serve`` as a real process on a loopback port."""
    tmp_path = tmp_path_factory.mktemp("ui")
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("plugins: {dms: []}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env["NETWEAVE_API_TOKEN"] = TOKEN
    process = subprocess.Popen(
        [sys.executable, "-m", "netweave", "serve", "--host", "127.0.0.1", "--port", "0",
         "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, out), daemon=True).start()
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while url is None and time.monotonic() < deadline and process.poll() is None:
        try:
            line = out.get(timeout=0.2)
        except queue.Empty:
            continue
        if line.startswith("netweave listening on "):
            url = line.removeprefix("netweave listening on ").strip()
    try:
        assert url is not None, f"no 'listening' line; exit code {process.poll()}"
        yield url
    finally:
        processes.stop(process)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    require_backend("chromium is not installed (Debian package chromium)")


def _headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", *OFFLINE_FLAGS,
         # Virtual time: the page's scripts run to idle before the DOM is dumped.
         "--virtual-time-budget=15000", "--window-size=1280,2000", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )  # fmt: skip


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
def test_ui_renders_the_operations_offline(gateway_url: str, tmp_path: Path, path: str) -> None:
    page = httpx.get(f"{gateway_url}{path}", timeout=10)
    assert page.status_code == 200
    # Nothing the page loads comes from elsewhere: every src/href is a path on the gateway.
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert references, "the page loads no assets at all?"
    assert all(ref.startswith("/") for ref in references), references

    if path == "/schema":  # a picture for whoever looks at the test's files (one is enough)
        shot = tmp_path / "ui.png"
        result = _headless(tmp_path, f"--screenshot={shot}", f"{gateway_url}{path}")
        assert shot.is_file(), result.stderr[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dom = _headless(tmp_path, "--dump-dom", f"{gateway_url}{path}").stdout
    # Swagger UI's JavaScript builds one element per operation, id "operations-{tag}-{opId}";
    # the served HTML has none of them (the spec is inline JSON), so these prove the UI ran.
    rendered = set(re.findall(r'id="operations-[A-Za-z]+-([A-Za-z]+)"', dom))
    expected = {
        "ListNfDeploymentDescriptors",
        "CreateNfDeploymentDescriptor",
        "ListNfDeployments",
        "CreateNfDeployment",
        "GetOperation",
        "GetHealth",
    }
    assert expected <= rendered, sorted(rendered)
    assert 'id="operations-' not in page.text


def test_ui_assets_are_the_packaged_swagger_ui(gateway_url: str) -> None:
    script = httpx.get(f"{gateway_url}/schema/assets/swagger-ui/swagger-ui-bundle.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content
    licence = httpx.get(f"{gateway_url}/schema/assets/swagger-ui/LICENSE", timeout=10)
    assert licence.status_code == 200
    assert "Apache License" in licence.text
    missing = httpx.get(f"{gateway_url}/schema/assets/swagger-ui/nope.js", timeout=10)
    assert missing.status_code == 404


def test_root_points_to_the_ui_and_the_api(gateway_url: str) -> None:
    root = httpx.get(f"{gateway_url}/", timeout=10)
    assert root.status_code == 200
    body = root.json()
    assert body["ui"] == f"{gateway_url}/schema"
    assert body["api"] == f"{gateway_url}/o2dms/v1"
    # Each pointer answers: the UI openly, the API root with the token.
    assert httpx.get(body["ui"], timeout=10).status_code == 200
    assert httpx.get(body["openapi"], timeout=10).status_code == 200
    api = httpx.get(body["api"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert api.status_code == 200
