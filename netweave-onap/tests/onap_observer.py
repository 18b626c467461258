"""The kit's view of the ONAP emulators, read from their own records: the k8splugin instance
of the release named like the deployment (namespace, definition version, the values of its
profile and override), and the SO service instance with the values its create request gave
the CNF's vf-module (SO keeps no values of its own)."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import yaml
from netweave.adapters import DeploymentSpec
from netweave.testing.kit import Observation, ObservedObject
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.so import SoEmulator

_K8S_PARAMS = ("k8s-rb-profile-namespace", "k8s-rb-instance-release-name")


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def _profile_values(content: bytes | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if not content:
        return values
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or member.name.endswith("manifest.yaml"):
                continue
            extracted = tar.extractfile(member)
            loaded = yaml.safe_load(extracted.read()) if extracted else None
            if isinstance(loaded, dict):
                values = _merge(values, loaded)
    return values


def _dotted(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


class K8sPluginObserver:
    def __init__(self, emulator: K8sPluginEmulator) -> None:
        self.emulator = emulator

    async def observe(self, spec: DeploymentSpec) -> Observation:
        with self.emulator._lock:
            found = [
                inst.data
                for inst in self.emulator.instances.values()
                if inst.data.get("release-name") == spec.name
            ]
            if not found:
                return Observation()
            data = found[0]
            request = data["request"]
            key = (request["rb-name"], request["rb-version"], request["profile-name"])
            content = self.emulator.profile_contents.get(key)
            status = str(data.get("status"))
            namespace = str(data.get("namespace"))
            resources = list(data.get("resources") or ())
        values = _merge(_profile_values(content), _dotted(request.get("override-values") or {}))
        objects = tuple(
            ObservedObject(
                kind=r["GVK"]["Kind"],
                name=r["Name"],
                namespace=namespace,
                replicas=int(values.get("replicaCount", 1))
                if r["GVK"]["Kind"] == "Deployment"
                else None,
                ready=status == "DONE" if r["GVK"]["Kind"] == "Deployment" else None,
            )
            for r in resources
        )
        return Observation(
            present=True,
            objects=objects,
            values=values,
            package_version=str(request["rb-version"]),
            namespace=namespace,
            detail=f"status {status}",
        )


class SoObserver:
    def __init__(self, emulator: SoEmulator) -> None:
        self.emulator = emulator

    async def observe(self, spec: DeploymentSpec) -> Observation:
        with self.emulator._lock:
            ids = [i for i, name in self.emulator.instances.items() if name == spec.name]
            if not ids:
                return Observation()
            created = [
                r
                for r in self.emulator.requests.values()
                if r.instance_id == ids[0] and r.request_type == "createInstance"
            ]
            details = created[-1].details if created else {}
        try:
            user = details["requestParameters"]["userParams"]
            service = next(p["service"] for p in user if "service" in p)
            params = dict(service["resources"]["vnfs"][0]["vfModules"][0]["instanceParams"][0])
        except (KeyError, IndexError, TypeError, StopIteration):
            params = {}
        values = _dotted({k: v for k, v in params.items() if k not in _K8S_PARAMS})
        return Observation(
            present=True,
            values=values,
            namespace=params.get("k8s-rb-profile-namespace"),
            objects=(
                ObservedObject(
                    kind="ServiceInstance",
                    name=spec.name,
                    namespace=params.get("k8s-rb-profile-namespace"),
                ),
            ),
        )
