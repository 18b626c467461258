"""End to end through the gateway's HTTP API (real app under uvicorn on loopback) with the Helm
adapter loaded through its entry point: uploads, problem bodies, and the local repository served
at ``/charts`` that the real Helm SDK consumes like any Helm HTTP repository."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chartkit import build_chart
from conftest import REAL_CHARTS
from servers import serve_asgi

TOKEN = "helm-e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


def _settings(data_dir: Path, config: dict[str, Any]) -> Any:
    from netweave.config import Settings

    return Settings.model_validate(
        {
            "dataDir": str(data_dir),
            "api": {"token": TOKEN},
            "plugins": {
                "dms": [{"name": "helm-local", "type": "helm", "default": True, "config": config}]
            },
        }
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    from netweave.api.app import create_app

    app = create_app(_settings(tmp_path / "data", {"storage": {"kind": "local"}}))
    with serve_asgi(app) as base:
        yield base


def _upload(base: str, archive: Path, name: str, version: str) -> httpx.Response:
    with archive.open("rb") as handle:
        return httpx.post(
            base + PACKAGES,
            headers=AUTH,
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
            timeout=60,
        )


def test_upload_then_helm_consumes_the_served_repository(
    gateway: str, charts_dir: Path, tmp_path: Path
) -> None:
    import helm_python

    response = _upload(gateway, charts_dir / "nginx-21.1.23.tgz", "nginx", "21.1.23")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "nginx"
    assert body["extensions"]["dependencies"][0]["name"] == "common"
    assert response.headers["Location"].endswith(body["packageId"])

    index = yaml.safe_load(httpx.get(gateway + "/charts/index.yaml").text)
    assert index["entries"]["nginx"][0]["digest"] == REAL_CHARTS["nginx-21.1.23.tgz"]

    # The real Helm SDK as a client of the served repository.
    parsed = helm_python.repo_index(gateway + "/charts")
    assert [v["version"] for v in parsed["entries"]["nginx"]] == ["21.1.23"]
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    helm_python.pull("nginx", repo_url=gateway + "/charts", destination=pulled)
    data = (pulled / "nginx-21.1.23.tgz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == REAL_CHARTS["nginx-21.1.23.tgz"]

    for bad in ("/charts/nope-1.0.0.tgz", "/charts/..%2findex.yaml", "/charts/.lock"):
        assert httpx.get(gateway + bad).status_code == 404, bad


def test_hostile_and_duplicate_uploads_are_problem_responses(
    gateway: str, charts_dir: Path, tmp_path: Path
) -> None:
    zipped = tmp_path / "evil-1.0.0.tgz"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    response = _upload(gateway, zipped, "evil", "1.0.0")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "zip" in response.json()["detail"]

    chart = build_chart(tmp_path / "c", "twice", "1.0.0")
    assert _upload(gateway, chart, "twice", "1.0.0").status_code == 201
    response = _upload(gateway, chart, "twice", "1.0.0")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")

    listed = httpx.get(gateway + PACKAGES, headers=AUTH).json()
    assert [p["name"] for p in listed["items"]] == ["twice"]
