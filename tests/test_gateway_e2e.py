"""An SMO's view: one gateway process, several adapter instances from configuration, real Helm
releases in two emulated clusters, state kept across a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from conftest import start_gateway, stop_gateway
from kubernetes import client as k8s

BASE = "/o2dms/v1"


def helm_instance(name: str, kubeconfig: Path, default: bool = False) -> str:
    return (
        f"    - name: {name}\n      type: helm\n      default: {str(default).lower()}\n"
        f"      config:\n        storage: {{kind: local}}\n"
        f"        cluster: {{kubeconfig: {kubeconfig}, wait: watcher, operationTimeout: 60}}\n"
    )


def upload(c: httpx.Client, chart: Path, adapter: str) -> dict[str, Any]:
    with chart.open("rb") as archive:
        response = c.post(
            f"{BASE}/nfDeploymentDescriptors",
            data={"name": "hello-world", "artifactVersion": "0.1.0", "adapter": adapter},
            files={"chart": (chart.name, archive, "application/gzip")},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def deployments_in(emulator: Any) -> list[str]:
    apps = k8s.AppsV1Api(emulator.kubernetes_client())
    return sorted(d.metadata.name for d in apps.list_deployment_for_all_namespaces().items)


def test_two_clusters_full_lifecycle_and_restart(
    k8s_emulator_factory: Callable[..., Any],
    tmp_path: Path,
    gateway_home: Path,
    chart_path: Path,
) -> None:
    east, west = k8s_emulator_factory(), k8s_emulator_factory()
    config = (
        "plugins:\n  dms:\n"
        + helm_instance("east", east.write_kubeconfig(tmp_path / "east.kubeconfig"), default=True)
        + helm_instance("west", west.write_kubeconfig(tmp_path / "west.kubeconfig"))
    )
    data_dir = tmp_path / "data"
    gateway = start_gateway(data_dir, config, gateway_home)
    try:
        with gateway.client() as c:
            adapters = {a["name"]: a for a in c.get(f"{BASE}/adapters").json()["items"]}
            assert set(adapters) == {"east", "west"}
            assert adapters["east"]["type"] == "helm"
            assert "rollback" in adapters["east"]["capabilities"]

            package = upload(c, chart_path, "west")
            assert package["adapter"] == "west"
            assert package["extensions"]["chartVersion"] == "0.1.0"
            # The west instance's local repository is served for Helm clients.
            index = httpx.get(f"{gateway.url}/charts/west/index.yaml")
            assert index.status_code == 200
            assert "hello-world" in index.text

            created = c.post(
                f"{BASE}/nfDeployments",
                json={
                    "name": "hello",
                    "namespace": "edge",
                    "packageId": package["packageId"],
                    "values": {"replicaCount": 1},
                },
            )
            assert created.status_code == 201, created.text
            operation = gateway.wait_operation(c, created)
            assert operation["state"] == "COMPLETED", operation
            deployment = created.json()
            url = f"{BASE}/nfDeployments/{deployment['deploymentId']}"
            assert deployment["adapter"] == "west"
            # The release landed in the west cluster only.
            assert deployments_in(west) == ["hello-hello-world"]
            assert deployments_in(east) == []
            assert c.get(url).json()["status"] == "DEPLOYED"

            scaled = c.post(f"{url}/scale", json={"replicas": 3})
            assert scaled.status_code == 202, scaled.text
            assert gateway.wait_operation(c, scaled)["state"] == "COMPLETED"
            apps = k8s.AppsV1Api(west.kubernetes_client())
            assert apps.read_namespaced_deployment("hello-hello-world", "edge").spec.replicas == 3

            history = c.get(f"{url}/history").json()["revisions"]
            assert [r["revision"] for r in history] == [1, 2]
            rolled = c.post(f"{url}/rollback", json={"revision": 1})
            assert rolled.status_code == 202, rolled.text
            assert gateway.wait_operation(c, rolled)["state"] == "COMPLETED"
            assert apps.read_namespaced_deployment("hello-hello-world", "edge").spec.replicas == 1
            assert c.get(url).json()["revision"] == 3

            logs = c.get(f"{url}/logs", params={"tailLines": 5})
            assert logs.status_code == 200, logs.text
            assert logs.text.strip()

        # A restart loses nothing: the stored package and deployment come back.
        stop_gateway(gateway)
        gateway = start_gateway(data_dir, config, gateway_home)
        with gateway.client() as c:
            assert (
                c.get(f"{BASE}/nfDeploymentDescriptors/{package['packageId']}").status_code == 200
            )
            again = c.get(url)
            assert again.status_code == 200
            assert (again.json()["status"], again.json()["revision"]) == ("DEPLOYED", 3)

            deleted = c.delete(url)
            assert deleted.status_code == 202, deleted.text
            assert gateway.wait_operation(c, deleted)["state"] == "COMPLETED"
            deadline = time.monotonic() + 30
            while c.get(url).status_code != 404 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.get(url).status_code == 404
            assert deployments_in(west) == []
            # The package is no longer in use and can be deleted.
            gone = c.delete(f"{BASE}/nfDeploymentDescriptors/{package['packageId']}")
            assert gone.status_code == 204, gone.text
    finally:
        stop_gateway(gateway)


def test_every_first_party_adapter_loads_side_by_side(tmp_path: Path, gateway_home: Path) -> None:
    """A platform team's gateway with all five adapters; the backends are down (closed loopback
    ports), yet the gateway starts, lists each with its distribution, and reports health."""
    closed = "http://127.0.0.1:9"  # discard port: nothing listens on loopback here
    kubeconfig = tmp_path / "nowhere.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + closed + "}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    instances = [
        {"name": "helm-a", "type": "helm", "default": True,
         "config": {"cluster": {"kubeconfig": str(kubeconfig)}}},
        {"name": "argo-a", "type": "argocd", "config": {"serverUrl": closed, "authToken": "x"}},
        {"name": "flux-a", "type": "flux",
         "config": {"mode": "cluster", "cluster": {"kubeconfig": str(kubeconfig)}}},
        {"name": "osm-a", "type": "osm",
         "config": {"nbiUrl": closed, "username": "u", "password": "p", "vimAccount": "v"}},
        {"name": "onap-a", "type": "onap",
         "config": {"backend": "k8splugin", "k8sPluginUrl": closed, "cloudRegion": "r"}},
    ]  # fmt: skip
    config = yaml.safe_dump({"plugins": {"dms": instances}})
    gateway = start_gateway(tmp_path / "data", config, gateway_home)
    try:
        with gateway.client() as c:
            listing = c.get(f"{BASE}/adapters")
            assert listing.status_code == 200, listing.text
            adapters = {a["name"]: a for a in listing.json()["items"]}
            assert {n: a["type"] for n, a in adapters.items()} == {
                "helm-a": "helm",
                "argo-a": "argocd",
                "flux-a": "flux",
                "osm-a": "osm",
                "onap-a": "onap",
            }
            for name, adapter in adapters.items():
                assert adapter["capabilities"], name
                if name != "helm-a":
                    assert adapter["health"]["healthy"] is False, (name, adapter["health"])
            # The Helm instance stays healthy for package work (its repository is local) and
            # says its cluster is unreachable.
            assert adapters["helm-a"]["health"]["details"]["clusterReachable"] is False
            # A request for a backend that is down is a 5xx problem, never a hang or a crash.
            response = c.post(
                f"{BASE}/nfDeploymentDescriptors",
                json={
                    "name": "app",
                    "artifactVersion": "1.0.0",
                    "packageUri": "https://github.com/example/app.git",
                    "packageType": "git-repo",
                    "adapter": "argo-a",
                    "source": {"path": "deploy", "targetRevision": "main"},
                },
            )
            assert response.status_code in (502, 503, 504), response.text
            assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        stop_gateway(gateway)
