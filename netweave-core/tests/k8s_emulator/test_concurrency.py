"""Many Helm lifecycles at once against one emulator: correctness, not timing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import helm_python as hp
from netweave.testing.k8s import KubernetesEmulator

from .test_helm import _chart

RELEASES = 24


def test_concurrent_helm_lifecycles(
    helm_home: Path, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    chart_dir = _chart(tmp_path)
    chart = hp.Chart.load(str(chart_dir))
    # One shared Config handles different releases concurrently (helm-python-sdk docs).
    # One Config per namespace, shared by all threads: it handles different releases
    # concurrently (helm-python-sdk docs); upgrade refuses another namespace.
    configs = {ns: k8s_emulator.helm_config(namespace=ns) for ns in ("default", "spread")}
    cfg = configs["default"]

    def lifecycle(i: int) -> dict[str, Any]:
        name = f"r{i}"
        ns = "default" if i % 2 else "spread"
        c = configs[ns]
        c.install(
            chart, name, {"greeting": f"v1-{i}"}, create_namespace=True, wait="watcher", timeout=60
        )
        c.upgrade(
            chart, name, {"greeting": f"v2-{i}", "replicaCount": 2}, wait="watcher", timeout=60
        )
        settings_after_upgrade = k8s_emulator.get("v1", "ConfigMap", f"{name}-settings", ns)
        if ns == "default":
            c.rollback(name, version=1, wait="watcher", timeout=60)
        return {"name": name, "ns": ns, "upgraded": settings_after_upgrade}

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lifecycle, range(RELEASES)))
        listed = {(r["name"], r["namespace"]) for r in cfg.list(all_namespaces=True)}
        assert listed == {(r["name"], r["ns"]) for r in results}
        for r in results:
            i = int(r["name"][1:])
            assert r["upgraded"]["data"] == {"greeting": f"v2-{i}"}
            current = k8s_emulator.get("v1", "ConfigMap", f"{r['name']}-settings", r["ns"])
            if r["ns"] == "default":
                assert current["data"] == {"greeting": f"v1-{i}"}  # rolled back
            else:
                assert current["data"] == {"greeting": f"v2-{i}"}
            dep = k8s_emulator.get("apps/v1", "Deployment", f"{r['name']}-demo", r["ns"])
            assert dep["status"]["readyReplicas"] == dep["spec"]["replicas"]
        histories: dict[str, list[tuple[int, str]]] = {}
        for r in results:
            ns_cfg = k8s_emulator.helm_config(namespace=r["ns"])
            try:
                histories[r["name"]] = [
                    (h["revision"], h["status"]) for h in ns_cfg.history(r["name"])
                ]
            finally:
                ns_cfg.close()
        for r in results:
            if r["ns"] == "default":
                assert histories[r["name"]] == [
                    (1, "superseded"),
                    (2, "superseded"),
                    (3, "deployed"),
                ]
            else:
                assert histories[r["name"]] == [(1, "superseded"), (2, "deployed")]

        def uninstall(r: dict[str, Any]) -> None:
            configs[r["ns"]].uninstall(r["name"], wait="watcher", timeout=60)

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(uninstall, results))
        assert cfg.list(all_namespaces=True, all_states=True) == []
        assert k8s_emulator.list("apps/v1", "Deployment") == []
        assert k8s_emulator.list("v1", "Secret", label_selector="owner=helm") == []
        assert k8s_emulator.controllers.errors == []
    finally:
        chart.close()
        for c in configs.values():
            c.close()
