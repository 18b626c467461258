"""The same failure of the Kubernetes API answers the same status on every route that reads
the cluster (history through the Helm SDK, logs through the Kubernetes client, status, get):
through the gateway's HTTP API, with the emulator answering every request with the fault."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netweave.testing.k8s import KubernetesEmulator
from servers import serve_asgi

TOKEN = "helm-failure-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEPLOYMENTS = "/o2dms/v1/nfDeployments"


def _settings(data_dir: Path, kubeconfig: Path) -> Any:
    from netweave.config import Settings

    config = {
        "storage": {"kind": "local"},
        "cluster": {"kubeconfig": str(kubeconfig)},
        "timeouts": {"read": 10},
    }
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
def deployed(
    tmp_path: Path, charts_dir: Path, k8s_emulator: KubernetesEmulator, k8s_kubeconfig: Path
) -> Iterator[tuple[httpx.Client, str]]:
    from netweave.api.app import create_app

    app = create_app(_settings(tmp_path / "data", k8s_kubeconfig))
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        with (charts_dir / "hello-world-0.1.0.tgz").open("rb") as archive:
            uploaded = client.post(
                "/o2dms/v1/nfDeploymentDescriptors",
                data={"name": "hello-world", "artifactVersion": "0.1.0"},
                files={"chart": ("hello-world-0.1.0.tgz", archive, "application/gzip")},
            )
        assert uploaded.status_code == 201, uploaded.text
        request = {"name": "hw", "namespace": "fail", "packageId": uploaded.json()["packageId"]}
        created = client.post(DEPLOYMENTS, json=request)
        assert created.status_code == 201, created.text
        url = created.headers["Location"]
        deadline = time.monotonic() + 60
        while client.get(url).json()["status"] != "DEPLOYED":
            assert time.monotonic() < deadline, client.get(url).text
            time.sleep(0.1)
        assert k8s_emulator.wait_idle()
        assert client.get(url + "/logs").status_code == 200
        yield client, url


#: The cluster failing as a whole (Helm's reachability check sees it first), or only the calls
#: the routes make (Helm's release storage in Secrets, the pods whose logs are read).
EVERYTHING = ("*",)
THE_CALLS = ("/api/v1/namespaces/*/secrets*", "/api/v1/namespaces/*/pods*")
#: What a Kubernetes API server says with these statuses (its Status message).
API_SERVER_SAYS = {
    500: "Internal error occurred: etcdserver: leader changed",
    503: "the server is currently unable to handle the request",
    429: "Too many requests, please try again later.",
    504: "Timeout: request did not complete within requested timeout",
}


@pytest.mark.parametrize("paths", [EVERYTHING, THE_CALLS], ids=["cluster", "calls"])
@pytest.mark.parametrize(("fault", "expected"), [(500, 503), (503, 503), (429, 503), (504, 503)])
def test_a_cluster_failure_is_one_status_on_every_route(
    deployed: tuple[httpx.Client, str],
    k8s_emulator: KubernetesEmulator,
    paths: tuple[str, ...],
    fault: int,
    expected: int,
) -> None:
    client, url = deployed
    injected = [
        k8s_emulator.faults.error(
            fault, path=path, method="GET", times=None, message=API_SERVER_SAYS[fault]
        )
        for path in paths
    ]
    try:
        answers = {route: client.get(url + route) for route in ("/history", "/logs", "/status")}
    finally:
        for fault_ in injected:
            fault_.remove()
    statuses = {route: response.status_code for route, response in answers.items()}
    assert statuses["/history"] == statuses["/logs"] == expected, {
        route: response.text for route, response in answers.items()
    }
    for response in (answers["/history"], answers["/logs"]):
        assert response.headers["content-type"].startswith("application/problem+json")
        assert f"answered HTTP {fault}" in response.json()["detail"]
    status = answers["/status"]
    # A cluster that is unavailable now (a 500 too: the API server's storage or a webhook it
    # calls failing, which passes) is retried by operations; the core reports the deployment
    # as UNKNOWN (not an error: the record is still served).
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "UNKNOWN"
    assert f"answered HTTP {fault}" in status.json()["message"]
    # and with the cluster back, every route answers again
    assert client.get(url + "/history").status_code == 200
    assert client.get(url + "/logs").status_code == 200
