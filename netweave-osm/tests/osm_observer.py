"""The kit's view of the OSM NBI emulator: the NS instance named like the deployment, its
deployed KDU records (namespace, chart) and the Helm values of each KDU's latest revision, read
from the emulator's own records."""

from __future__ import annotations

import copy
from typing import Any

from netweave.adapters import DeploymentSpec
from netweave.testing.kit import Observation, ObservedObject
from osm_emulator import OsmNbiEmulator


class OsmObserver:
    def __init__(self, emulator: OsmNbiEmulator, replicas_key: str = "replicaCount") -> None:
        self.emulator = emulator
        self.replicas_key = replicas_key

    async def observe(self, spec: DeploymentSpec) -> Observation:
        with self.emulator.lock:
            found = [n for n in self.emulator.nsrs.values() if n.get("name") == spec.name]
            if not found:
                return Observation()
            nsr = copy.deepcopy(found[0])
            helm = copy.deepcopy(self.emulator.helm.get(nsr["_id"], {}))
        state = nsr["_admin"].get("nsState")
        if state == "NOT_INSTANTIATED":
            # Terminated but not removed: the record stays, nothing runs.
            return Observation(present=True, detail=f"nsState {state}")
        records = nsr["_admin"].get("deployed", {}).get("K8s") or []
        objects = []
        values: dict[str, Any] = {}
        revision = 0
        for kdu in records:
            revisions = helm.get(f"{kdu['member-vnf-index']}/{kdu['kdu-name']}") or [{}]
            current = revisions[-1]
            values.update(current)
            revision = max(revision, len(revisions))
            objects.append(
                ObservedObject(
                    kind="KDU",
                    name=f"{spec.name}-{kdu['member-vnf-index']}-{kdu['kdu-name']}",
                    namespace=kdu.get("namespace"),
                    replicas=int(current.get(self.replicas_key, 1)),
                    ready=nsr.get("operational-status") == "running",
                    images=(str(kdu.get("kdu-model")),),
                    version=str(len(revisions)),
                )
            )
        return Observation(
            present=True,
            objects=tuple(objects),
            values=values,
            revision=revision,
            detail=f"nsState {state}, operational-status {nsr.get('operational-status')}",
        )
