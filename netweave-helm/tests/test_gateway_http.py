"""End to end through the gateway's HTTP API (real app under uvicorn on loopback) with the Helm
adapter loaded through its entry point: uploads, problem bodies, and the local repository served
at ``/charts`` that the real Helm SDK consumes like any Helm HTTP repository."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chartkit import build_chart
from conftest import REAL_CHARTS
from netweave.testing.k8s import KubernetesEmulator
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


def _wait(
    client: httpx.Client, url: str, wanted: set[str], field: str = "status", timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(url)
        if response.status_code == 404 and "GONE" in wanted:
            return {}
        body = response.json()
        if body.get(field) in wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} did not reach {wanted}: {body}")


def test_deployment_lifecycle_through_the_api(
    tmp_path: Path, charts_dir: Path, k8s_emulator: KubernetesEmulator, k8s_kubeconfig: Path
) -> None:
    from netweave.api.app import create_app

    config = {"storage": {"kind": "local"}, "cluster": {"kubeconfig": str(k8s_kubeconfig)}}
    app = create_app(_settings(tmp_path / "data", config))
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        uploaded = _upload(base, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0")
        assert uploaded.status_code == 201, uploaded.text
        package_id = uploaded.json()["packageId"]
        request = {"name": "hw", "namespace": "e2e", "packageId": package_id}

        preview = client.post("/o2dms/v1/nfDeployments", json={**request, "dryRun": True})
        assert preview.status_code == 200, preview.text
        assert "hello-world/templates/deployment.yaml" in preview.json()["manifests"]

        created = client.post(
            "/o2dms/v1/nfDeployments", json={**request, "values": {"replicaCount": 2}}
        )
        assert created.status_code == 201, created.text
        url = created.headers["Location"]
        deployed = _wait(client, url, {"DEPLOYED", "FAILED"})
        assert deployed["status"] == "DEPLOYED", deployed
        obj = k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", "e2e")
        assert obj is not None and obj["spec"]["replicas"] == 2

        scaled = client.post(url + "/scale", json={"replicas": 3})
        assert scaled.status_code == 202, scaled.text
        _wait(client, scaled.headers["Location"], {"COMPLETED", "FAILED"}, field="state")
        obj = k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", "e2e")
        assert obj is not None and obj["spec"]["replicas"] == 3

        preview_update = client.patch(url, json={"values": {"replicaCount": 9}, "dryRun": True})
        assert preview_update.status_code == 200, preview_update.text
        rendered = preview_update.json()["manifests"]["hello-world/templates/deployment.yaml"]
        assert "replicas: 9" in rendered
        assert client.get(url).json()["revision"] == 2  # nothing changed

        rolled = client.post(url + "/rollback", json={"revision": 0})
        assert rolled.status_code == 202
        _wait(client, rolled.headers["Location"], {"COMPLETED", "FAILED"}, field="state")
        history = client.get(url + "/history").json()["revisions"]
        assert [h["status"] for h in history] == ["SUPERSEDED", "SUPERSEDED", "DEPLOYED"]

        assert k8s_emulator.wait_idle()
        logs = client.get(url + "/logs", params={"tailLines": 1})
        assert logs.status_code == 200
        assert "hello-world" in logs.text

        # The package is in use: deleting it is refused while the release exists.
        in_use = client.delete(f"{PACKAGES}/{package_id}")
        assert in_use.status_code == 409, in_use.text

        deleted = client.delete(url)
        assert deleted.status_code == 202
        _wait(client, url, {"GONE"})
        assert k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", "e2e") is None


def test_deployments_without_a_cluster_answer_503_with_how_to(
    tmp_path: Path, charts_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapter's validation hook refuses the create before the core accepts it; the
    package side and previews keep working."""
    from netweave.api.app import create_app

    monkeypatch.delenv("KUBECONFIG", raising=False)
    app = create_app(_settings(tmp_path / "data", {"storage": {"kind": "local"}}))
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        uploaded = _upload(base, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0")
        assert uploaded.status_code == 201
        request = {"name": "hw", "namespace": "e2e", "packageId": uploaded.json()["packageId"]}
        preview = client.post("/o2dms/v1/nfDeployments", json={**request, "dryRun": True})
        assert preview.status_code == 200, preview.text  # rendering needs no cluster

        response = client.post("/o2dms/v1/nfDeployments", json=request)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert "ClusterNotConfigured" in (problem.get("error"), problem.get("code"))
        assert "kubeconfig" in problem["detail"] and "KUBECONFIG" in problem["detail"]
        assert client.get("/o2dms/v1/nfDeployments").json()["total"] == 0


def test_two_local_repositories_are_served_side_by_side(tmp_path: Path, charts_dir: Path) -> None:
    from netweave.api.app import create_app
    from netweave.config import Settings

    settings = Settings.model_validate(
        {
            "dataDir": str(tmp_path / "data"),
            "api": {"token": TOKEN},
            "plugins": {
                "dms": [
                    {
                        "name": "helm-a",
                        "type": "helm",
                        "default": True,
                        "config": {"storage": {"kind": "local"}},
                    },
                    {
                        "name": "helm-b",
                        "type": "helm",
                        "config": {"storage": {"kind": "local", "servePath": "/charts"}},
                    },
                ]
            },
        }
    )
    app = create_app(settings)
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        with (charts_dir / "hello-world-0.1.0.tgz").open("rb") as handle:
            response = client.post(
                PACKAGES,
                data={"name": "hello-world", "artifactVersion": "0.1.0", "adapter": "helm-a"},
                files={"chart": ("hello-world-0.1.0.tgz", handle, "application/gzip")},
            )
        assert response.status_code == 201, response.text
        # helm-b asked for /charts explicitly, so the default instance moved aside.
        served_b = yaml.safe_load(client.get("/charts/index.yaml").text)
        served_a = yaml.safe_load(client.get("/charts/helm-a/index.yaml").text)
        assert served_b["entries"] == {}
        assert list(served_a["entries"]) == ["hello-world"]
        assert client.get("/charts/helm-a/hello-world-0.1.0.tgz").status_code == 200


def test_embedded_default_offers_helm_on_the_local_repository(
    tmp_path: Path, charts_dir: Path
) -> None:
    """``netweave serve`` with no configuration: the core's embedded defaults load this
    adapter as ``helm-local`` with local storage under the data directory, served at /charts."""
    from netweave.api.app import create_app
    from netweave.config import load_settings

    data_dir = tmp_path / "fresh"
    settings = load_settings(data_dir=data_dir, env={"NETWEAVE_API_TOKEN": TOKEN})
    app = create_app(settings)
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        adapters = client.get("/o2dms/v1/adapters").json()
        items = adapters["items"] if isinstance(adapters, dict) else adapters
        assert [(a["name"], a["type"]) for a in items] == [("helm-local", "helm")]
        response = _upload(base, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0")
        assert response.status_code == 201, response.text
        index = yaml.safe_load(client.get("/charts/index.yaml").text)
        assert list(index["entries"]) == ["hello-world"]
    stored = list(data_dir.rglob("hello-world-0.1.0.tgz"))
    assert len(stored) == 1 and stored[0].parent.name == "charts"
