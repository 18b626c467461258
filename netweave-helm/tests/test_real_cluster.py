"""Against a real Kubernetes cluster, when ``KUBECONFIG`` points at one (marked ``real_cluster``).

No cluster can run on the project's machines, so these tests skip unless ``KUBECONFIG`` names
an existing kubeconfig file (the product spec makes a real cluster optional, unlike the other
components, which ``NETWEAVE_REQUIRE_BACKENDS=1`` turns from skips into failures). They install
the tiny hello-world chart into a fresh namespace ``netweave-test-<random>`` and remove it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from conftest import AdapterFactory, upload_of
from netweave.adapters import DeploymentChange, DeploymentSpec, OperationContext
from netweave.errors import NotFound
from netweave.models import DeploymentStatus

KUBECONFIG = os.environ.get("KUBECONFIG", "")

pytestmark = [
    pytest.mark.real_cluster,
    pytest.mark.skipif(
        not (KUBECONFIG and Path(KUBECONFIG.split(os.pathsep)[0]).is_file()),
        reason="no real cluster: KUBECONFIG does not name a kubeconfig file (optional)",
    ),
]


async def test_hello_world_lifecycle_on_a_real_cluster(
    adapter_factory: AdapterFactory, charts_dir: Path
) -> None:
    namespace = f"netweave-test-{secrets.token_hex(4)}"
    adapter = await adapter_factory(
        {"cluster": {"kubeconfig": KUBECONFIG.split(os.pathsep)[0], "wait": "watcher"}}
    )
    package = await adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
    created = await adapter.create_deployment(
        DeploymentSpec("real", "hello", namespace, package), OperationContext("op1", "k1")
    )
    try:
        assert created.status is DeploymentStatus.DEPLOYED, created.message
        upgraded = await adapter.update_deployment(
            created.backend_ref,
            DeploymentChange(values={"replicaCount": 2}),
            OperationContext("op2", "k2"),
        )
        assert upgraded.revision == 2
        rolled = await adapter.rollback_deployment(
            created.backend_ref, 0, OperationContext("op3", "k3")
        )
        assert rolled.values == {}
    finally:
        await adapter.delete_deployment(created.backend_ref, OperationContext("op4", "k4"))
    with pytest.raises(NotFound):
        await adapter.get_deployment(created.backend_ref)
