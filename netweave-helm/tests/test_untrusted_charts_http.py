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


#: 251 bytes that render 20 million characters: the lint child would grow to ~600 MB.
LINT_BOMB = "{{- range until 20000000 }}x{{- end }}\n"
#: A clean template whose cost the values decide.
VALUES_LOOP = 'data:\n  v: "{{ range until (int .Values.n) }}x{{ end }}"\n'
#: Little memory, much time: 10^8 iterations writing nothing.
CPU_BOMB = "{{- range until 10000 }}{{- range until 10000 }}{{- end }}{{- end }}\n"


def _capped(tmp_path: Path, render: dict[str, Any]) -> Iterator[str]:
    from netweave.api.app import create_app

    with serve_asgi(create_app(settings(tmp_path / "data", {"render": render}))) as base:
        yield base


@pytest.fixture
def capped_gateway(tmp_path: Path) -> Iterator[str]:
    yield from _capped(tmp_path, {"timeSeconds": 3, "maxOutputBytes": 1024 * 1024})


SETTINGS = {"memory": "memoryBytes", "time": "timeSeconds", "output": "maxOutputBytes"}


def _problem(response: httpx.Response, cap: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["details"]["cap"] == cap, problem
    assert f"render.{SETTINGS[cap]}" in problem["detail"]
    return problem


def test_render_bombs_are_refused_within_the_caps(capped_gateway: str, tmp_path: Path) -> None:
    base = capped_gateway
    memory = build_chart(tmp_path / "m", "mbomb", "1.0.0", templates={"b.yaml": LINT_BOMB})
    _problem(upload(base, memory, "mbomb", "1.0.0"), "memory")
    cpu = build_chart(tmp_path / "c", "cbomb", "1.0.0", templates={"b.yaml": CPU_BOMB})
    _problem(upload(base, cpu, "cbomb", "1.0.0"), "time")
    listed = httpx.get(base + PACKAGES, headers=AUTH, timeout=30).json()
    assert listed["items"] == []

    loop = build_chart(
        tmp_path / "l",
        "loop",
        "1.0.0",
        values={"n": 1},
        templates={
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loop\n" + VALUES_LOOP
        },
    )
    assert upload(base, loop, "loop", "1.0.0").status_code == 201
    request = {"name": "l1", "namespace": "e2e", "packageId": "loop-1.0.0", "dryRun": True}
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        fine = client.post("/o2dms/v1/nfDeployments", json={**request, "values": {"n": 1000}})
        assert fine.status_code == 200, fine.text
        assert "x" * 1000 in fine.json()["manifests"]["loop/templates/cm.yaml"]
        big = client.post("/o2dms/v1/nfDeployments", json={**request, "values": {"n": 2_000_000}})
        _problem(big, "output")
        huge = client.post("/o2dms/v1/nfDeployments", json={**request, "values": {"n": 20_000_000}})
        _problem(huge, "memory")
