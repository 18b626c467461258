"""Releases left ``pending-*`` the way a killed Helm client leaves them.

A child process runs the real Helm SDK against the Kubernetes API emulator; the emulator holds
the release's Deployment apply unanswered (a ``hang`` fault), and the child is SIGKILLed once
Helm has recorded the pending revision in its release storage. What stays behind is exactly
what ``kill -9`` of ``helm`` (or of a gateway) mid-install leaves: no test-made storage records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from netweave.testing.k8s import KubernetesEmulator

_CHILD = """
import json, sys
import helm_python
kubeconfig, action, namespace, name, chart, options = sys.argv[1:7]
options = json.loads(options)
config = helm_python.Config(kubeconfig_path=kubeconfig, namespace=namespace)
if action == "install":
    config.install(chart, name, options.get("values") or {}, namespace=namespace,
                   create_namespace=True, labels=options.get("labels"))
elif action == "upgrade":
    config.upgrade(chart, name, options.get("values") or {}, namespace=namespace,
                   labels=options.get("labels"))
else:
    config.rollback(name, version=options.get("revision"))
"""

_PENDING = {
    "install": "pending-install",
    "upgrade": "pending-upgrade",
    "rollback": "pending-rollback",
}


def release_records(
    emulator: KubernetesEmulator, name: str, namespace: str
) -> list[tuple[int, str]]:
    """(revision, status) of each revision Helm stores for release ``name``, oldest first."""
    secrets = emulator.list("v1", "Secret", namespace, label_selector=f"owner=helm,name={name}")
    return sorted(
        (int(s["metadata"]["labels"]["version"]), s["metadata"]["labels"]["status"])
        for s in secrets
    )


def leave_pending(
    emulator: KubernetesEmulator,
    kubeconfig: Path,
    action: str,
    name: str,
    namespace: str,
    *,
    chart: Path | None = None,
    values: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    revision: int | None = None,
) -> None:
    """Run ``helm <action>`` in a child and SIGKILL it mid-way: the release stays pending."""
    wanted = _PENDING[action]
    before = len(release_records(emulator, name, namespace))
    hang = emulator.faults.hang(
        path=f"/apis/apps/v1/namespaces/{namespace}/deployments*", method="PATCH"
    )
    options = {"values": values, "labels": labels, "revision": revision}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(kubeconfig), action, namespace, name,
         str(chart or ""), json.dumps(options)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = release_records(emulator, name, namespace)
            if len(records) > before and records[-1][1] == wanted:
                break
            if child.poll() is not None:
                error = child.stderr.read().decode() if child.stderr is not None else ""
                raise AssertionError(f"helm {action} ended on its own: {error}")
            time.sleep(0.02)
        else:
            raise AssertionError(f"helm {action} never left {name} {wanted}")
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stderr is not None:
            child.stderr.close()
        hang.remove()
    assert release_records(emulator, name, namespace)[-1][1] == wanted
