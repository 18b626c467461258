"""Instantiation levels by name when the package's VNFD cannot be had: ``scale_to_level`` by
``instantiationLevelId`` against a backend that cannot describe the package now (the source of
a bare chart's generated VNFD) is a 503 ProblemDetails saying why, with nothing changed, and the
instance stays usable. Through the real app (memory adapter), every exchange validated against
the SOL003 V3.7.1 contract (``StandardSmo``)."""

from __future__ import annotations

import os
from pathlib import Path

from netweave.adapters.types import PackageDescription, Workload
from netweave.errors import BackendUnavailable
from netweave.testing.etsi import StandardSmo, sol003_vnflcm_contract
from support.gateway import running_gateway
from support.memory_adapter import MemoryAdapter

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))


class Describing(MemoryAdapter):
    """Describes each package as one Deployment with 2 replicas on ``replicaCount`` (so its
    generated VNFD's ``default`` level is level 1), or fails while ``down``."""

    down = True

    async def _describe_package(self, backend_ref: str) -> PackageDescription | None:
        if self.down:
            raise BackendUnavailable("the chart repository does not answer")
        workload = Workload("Deployment", "app", 2, "replicaCount", (("app", "example/app:1"),))
        return PackageDescription(workloads=(workload,))


async def test_scale_to_a_level_while_the_vnfd_cannot_be_had_is_503_and_changes_nothing(
    tmp_path: Path,
) -> None:
    adapter = Describing("mem")
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        smo = StandardSmo(gw, sol003_vnflcm_contract(SHARED))
        await gw.register_package("app", "1.0.0")
        created = await smo.call("POST", "/vnf_instances", {"vnfdId": "app-1.0.0"})
        assert created.status_code == 201, created.text
        vnf = created.json()["id"]
        # Instantiate does not need the VNFD: its default aspect on replicaCount, level 0.
        op = await smo.task(
            f"/vnf_instances/{vnf}/instantiate",
            {"flavourId": "default", "additionalParams": {"namespace": "ns1"}},
        )
        assert (await smo.poll(op))["operationState"] == "COMPLETED"
        (release,) = adapter.releases.values()
        assert (release.values["replicaCount"], release.revision) == (1, 1)

        refused = await smo.call(
            "POST", f"/vnf_instances/{vnf}/scale_to_level", {"instantiationLevelId": "default"}
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["status"] == 503
        assert problem["detail"] == (
            "the VNFD of package app-1.0.0 cannot be read (the chart repository does not "
            "answer): its instantiation levels are unknown"
        ), problem
        # Nothing changed: the release as it was, no occurrence.
        assert (release.values["replicaCount"], release.revision) == (1, 1)
        listed = await smo.call("GET", f"/vnf_lcm_op_occs?filter=(eq,vnfInstanceId,{vnf})")
        assert [o["operation"] for o in listed.json()] == ["INSTANTIATE"]

        # Still usable: scale by aspect levels, which need no VNFD.
        op = await smo.task(
            f"/vnf_instances/{vnf}/scale_to_level",
            {"scaleInfo": [{"aspectId": "default", "scaleLevel": 2}]},
        )
        assert (await smo.poll(op))["operationState"] == "COMPLETED"
        assert release.values["replicaCount"] == 3
        # The backend answers again: the same request scales to the VNFD's default level (1).
        adapter.down = False
        op = await smo.task(
            f"/vnf_instances/{vnf}/scale_to_level", {"instantiationLevelId": "default"}
        )
        assert (await smo.poll(op))["operationState"] == "COMPLETED"
        assert release.values["replicaCount"] == 2
