"""The kit's view of the Argo CD emulator: the Application named like the deployment and the
source its cluster last ran (what a successful sync applied), read from the emulator itself."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from argo_emulator import ArgoEmulator
from netweave.adapters import DeploymentSpec
from netweave.testing.kit import Observation, ObservedObject


def _values(source: dict[str, Any]) -> dict[str, Any]:
    helm = source.get("helm") or {}
    if isinstance(helm.get("valuesObject"), dict):
        return copy.deepcopy(helm["valuesObject"])
    if isinstance(helm.get("values"), str) and helm["values"].strip():
        loaded = yaml.safe_load(helm["values"])
        return loaded if isinstance(loaded, dict) else {}
    return {}


class ArgoObserver:
    def __init__(self, argo: ArgoEmulator) -> None:
        self.argo = argo

    async def observe(self, spec: DeploymentSpec) -> Observation:
        with self.argo.lock:
            found = [(key, app) for key, app in self.argo.apps.items() if key[1] == spec.name]
            if not found:
                return Observation()
            key, app = found[0]
            control = self.argo.control.get(key)
            deployed = copy.deepcopy(control.deployed) if control else None
            health = ((app.get("status") or {}).get("health") or {}).get("status")
            history = (app.get("status") or {}).get("history") or []
            destination = app["spec"]["destination"].get("namespace")
        if deployed is None:
            return Observation(present=True, namespace=destination, detail=f"health {health}")
        values = _values(deployed)
        # The emulator's cluster runs one Deployment (and Service) per synced Application.
        objects = (
            ObservedObject(
                kind="Deployment",
                name=spec.name,
                namespace=destination,
                replicas=int(values.get("replicaCount", 1)),
                ready=health == "Healthy",
            ),
            ObservedObject(kind="Service", name=spec.name, namespace=destination),
        )
        return Observation(
            present=True,
            objects=objects,
            values=values,
            package_version=str(deployed.get("targetRevision")),
            revision=len(history),
            namespace=destination,
            detail=f"health {health}",
        )
