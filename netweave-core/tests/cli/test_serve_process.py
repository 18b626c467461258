"""``netweave serve`` as a real process: start, announce, answer /healthz, stop on SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from netweave.testing import processes

START_TIMEOUT = 60.0


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)  # end of stream


def _drain(lines: queue.Queue[str | None], timeout: float = 30.0) -> list[str]:
    """Every line up to the end of the stream (bounded by ``timeout``)."""
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            return out
        out.append(line)
    raise AssertionError(f"stream did not end within {timeout} s")


@pytest.fixture
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], str, queue.Queue[str | None]]]:
    cfg = tmp_path / "gw.yaml"
    # ``@pytest.mark.parametrize("served", [...], indirect=True)`` adds configuration lines.
    cfg.write_text("plugins: {dms: []}\nlogFormat: json\n" + getattr(request, "param", ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env["NETWEAVE_API_TOKEN"] = "serve-test-token-123456"
    process = subprocess.Popen(
        [sys.executable, "-m", "netweave", "serve", "--host", "127.0.0.1", "--port", "0",
         "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, out), daemon=True).start()
    threading.Thread(target=_pump, args=(process.stderr, err), daemon=True).start()
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while url is None and time.monotonic() < deadline and process.poll() is None:
        try:
            line = out.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is not None and line.startswith("netweave listening on "):
            url = line.removeprefix("netweave listening on ").strip()
    try:
        assert url is not None, f"no 'listening' line; exit code {process.poll()}"
        yield process, url, err
    finally:
        processes.stop(process)


def test_serve_answers_healthz_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], str, queue.Queue[str | None]], tmp_path: Path
) -> None:
    process, url, err = served
    assert url.startswith("http://127.0.0.1:")
    health = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "serve-test-1"}, timeout=10)
    assert health.status_code == 200
    info = httpx.get(
        f"{url}/o2dms/v1",
        headers={"Authorization": "Bearer serve-test-token-123456"},
        timeout=10,
    )
    assert info.status_code == 200
    # The store was created in the data directory given on the command line.
    assert (tmp_path / "data" / "netweave.db").is_file()

    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    # uvicorn shuts down, then re-raises the signal it captured: killed-by-SIGTERM or 0.
    assert code in (0, -signal.SIGTERM)

    events = [json.loads(line) for line in _drain(err) if line.startswith("{")]
    # Structured JSON lines, the access line carrying the client's request id, no token.
    assert any(
        e.get("logger") == "netweave.access"
        and e.get("requestId") == "serve-test-1"
        and (e.get("method"), e.get("path"), e.get("status")) == ("GET", "/healthz", 200)
        and isinstance(e.get("durationMs"), float)
        and e.get("level") == "info"
        and e.get("timestamp", "").endswith("Z")
        for e in events
    ), events
    # One access line per request: uvicorn's own is off.
    assert not any(e.get("logger") == "uvicorn.access" for e in events), events
    assert all("serve-test-token-123456" not in json.dumps(e) for e in events)
    assert any(e.get("event") == "Application shutdown complete." for e in events)


def _loaded_uvloop(pid: int) -> bool:
    """Whether uvloop's extension module is mapped into the process (Linux /proc)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return any("uvloop" in line for line in maps.splitlines())


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps")
@pytest.mark.parametrize(
    ("served", "uses_uvloop"),
    [("", False), ("server: {loop: asyncio}\n", False), ("server: {loop: uvloop}\n", True)],
    indirect=["served"],
)
def test_serve_runs_on_the_configured_event_loop(
    served: tuple[subprocess.Popen[str], str, queue.Queue[str | None]], uses_uvloop: bool
) -> None:
    """``server.loop``: the standard library's loop by default (requests answered in arrival
    order under load); uvloop only when asked for. Checked from outside: whether the running
    server has uvloop's extension module mapped."""
    process, url, _ = served
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert _loaded_uvloop(process.pid) is uses_uvloop


def test_serve_refuses_an_unknown_event_loop(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("plugins: {dms: []}\nserver: {loop: tokio}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    result = subprocess.run(
        [sys.executable, "-m", "netweave", "serve", "--port", "0", "--config", str(cfg),
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "server.loop" in result.stderr and "asyncio" in result.stderr, result.stderr
