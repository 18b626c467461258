"""Untrusted chart content through the gateway's HTTP API (real app under uvicorn on loopback,
the Helm adapter loaded through its entry point): nothing a chart holds can turn into a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chartkit import build_chart
from servers import serve_asgi

TOKEN = "untrusted-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


def settings(data_dir: Path, config: dict[str, Any] | None = None) -> Any:
    from netweave.config import Settings

    return Settings.model_validate(
        {
            "dataDir": str(data_dir),
            "api": {"token": TOKEN},
            "plugins": {
                "dms": [
                    {
                        "name": "helm-local",
                        "type": "helm",
                        "default": True,
                        "config": {"storage": {"kind": "local"}, **(config or {})},
                    }
                ]
            },
        }
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    from netweave.api.app import create_app

    with serve_asgi(create_app(settings(tmp_path / "data"))) as base:
        yield base


def upload(
    base: str, archive: Path, name: str, version: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    with archive.open("rb") as handle:
        return httpx.post(
            base + PACKAGES,
            headers={**AUTH, **(headers or {})},
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
            timeout=60,
        )


def test_a_non_ascii_lint_warning_is_an_ascii_warning_header(gateway: str, tmp_path: Path) -> None:
    """``templates/€.yaml`` makes Helm lint warn with the file's name: the upload answers 201
    with the warning escaped, a replay answers the same, the package is there once."""
    archive = build_chart(tmp_path / "src", "euro", "1.0.0", templates={"€.yaml": "x: 1\n"})
    key = {"Idempotency-Key": "euro-upload-1"}
    first = upload(gateway, archive, "euro", "1.0.0", key)
    assert first.status_code == 201, first.text
    warning = {k.lower(): v for k, v in first.headers.raw}[b"warning"]
    warning.decode("ascii")  # ASCII only, whatever the chart held
    assert b"templates/\\\\u20ac.yaml" in warning, warning
    assert b"\r" not in warning and b"\n" not in warning
    assert first.json()["name"] == "euro"

    replay = upload(gateway, archive, "euro", "1.0.0", key)
    assert replay.status_code == 201, replay.text
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.headers["warning"] == first.headers["warning"]

    got = httpx.get(f"{gateway}{PACKAGES}/euro-1.0.0", headers=AUTH, timeout=30)
    assert got.status_code == 200
    again = upload(gateway, archive, "euro", "1.0.0")
    assert again.status_code == 409  # stored once, by the request that answered 201
