"""Through the gateway's HTTP API (real app under uvicorn on loopback, the Helm adapter from its
entry point): a chart inspected by the core while it arrived is not read again by the adapter
when their limits agree, is read again when they do not, and a bomb the core could not judge
while it arrived (no Content-Length) is still refused."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netweave.adapters.charts import ArchiveFacts, ArchiveLimits
from netweave.testing.archives import NAME, VERSION, gzip_bomb, valid_chart
from netweave_helm import validation
from servers import serve_asgi
from test_untrusted_charts_http import AUTH, PACKAGES, settings, upload


def _count_inspections(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    original = validation.inspect_archive

    def counting(path: Path, limits: ArchiveLimits) -> ArchiveFacts:
        seen.append(path)
        return original(path, limits)

    monkeypatch.setattr(validation, "inspect_archive", counting)
    return seen


def _gateway(tmp_path: Path, config: dict[str, Any] | None = None) -> Iterator[str]:
    from netweave.api.app import create_app

    with serve_asgi(create_app(settings(tmp_path / "data", config))) as base:
        yield base


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    yield from _gateway(tmp_path)


@pytest.fixture
def other_limits_gateway(tmp_path: Path) -> Iterator[str]:
    yield from _gateway(tmp_path, {"limits": {"maxEntries": 5000}})


def test_a_chart_inspected_as_it_arrived_is_not_read_again(
    gateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _count_inspections(monkeypatch)
    archive = valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    answer = upload(gateway, archive, NAME, VERSION)
    assert answer.status_code == 201, answer.text
    assert seen == []
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert digest in answer.json()["checksum"]
    got = httpx.get(f"{gateway}{PACKAGES}/{NAME}-{VERSION}", headers=AUTH, timeout=30)
    assert got.status_code == 200 and got.json()["name"] == NAME


def test_other_limits_read_it_again(
    other_limits_gateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _count_inspections(monkeypatch)
    archive = valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    answer = upload(other_limits_gateway, archive, NAME, VERSION)
    assert answer.status_code == 201, answer.text
    assert len(seen) == 1


def test_a_bomb_sent_without_content_length_is_refused(
    gateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunked: while it arrives the ratio rule has only the upload limit as a bound of the
    archive's size, so the core does not vouch for it and the adapter refuses it."""
    seen = _count_inspections(monkeypatch)
    archive = gzip_bomb(tmp_path / f"{NAME}-{VERSION}.tgz")
    request = httpx.Request(
        "POST",
        gateway + PACKAGES,
        data={"name": NAME, "artifactVersion": VERSION},
        files={"chart": (archive.name, archive.read_bytes(), "application/gzip")},
    )
    body = request.read()
    headers = {**AUTH, "Content-Type": request.headers["Content-Type"]}

    def chunks() -> Iterator[bytes]:  # a generator: sent chunked, without Content-Length
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    answer = httpx.post(gateway + PACKAGES, headers=headers, content=chunks(), timeout=60)
    assert answer.status_code == 400, answer.text
    assert "expands more than" in answer.json()["detail"]
    assert len(seen) == 1
    listed = httpx.get(gateway + PACKAGES, headers=AUTH, timeout=30).json()
    assert listed["items"] == []
    assert list((tmp_path / "data").rglob("*.tgz")) == []
