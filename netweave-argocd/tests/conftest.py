"""Fixtures for the Argo CD adapter's tests: the emulator on loopback and an adapter bound to it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from argo_emulator import SWAGGER, ArgoEmulator, Served
from netweave.adapters import DeploymentSpec, OperationContext, PackageInfo, PackageUpload
from netweave.testing.emulators import failing_at_teardown
from netweave_argocd.adapter import ArgoCDAdapter
from netweave_argocd.config import ArgoCDConfig

CHARTS = "https://charts.example.test/stable"
GIT = "https://git.example.test/nf/web.git"
_ids = itertools.count(1)


@pytest.fixture
async def argo() -> AsyncIterator[ArgoEmulator]:
    if not SWAGGER.exists():
        pytest.fail(f"Argo CD contract missing at {SWAGGER}: set NETWEAVE_SHARED_DIR")
    emulator = ArgoEmulator()
    emulator.add_helm_repo(CHARTS, {"web": ["1.0.0", "1.1.0", "2.0.0"], "db": ["0.3.1"]})
    emulator.add_git_repo(GIT, branches=["main", "release-1"], tags=["v1.0.0", "v1.1.0"])
    served = Served(emulator)
    served.start()
    try:
        # Every exchange of every test is checked against swagger.json and the CRD.
        with failing_at_teardown(emulator.strict):
            yield emulator
    finally:
        served.stop()
    assert emulator.unscoped_app_calls() == [], "app calls without a project"


def make_config(argo: ArgoEmulator, **overrides: Any) -> ArgoCDConfig:
    raw: dict[str, Any] = {
        "serverUrl": argo.url,
        "authToken": "static-token",
        "http": {"backoff": 0, "retries": 2},
    }
    raw.update(overrides)
    if "username" in overrides:
        raw.pop("authToken")
    return ArgoCDConfig.model_validate(raw)


@pytest.fixture
async def adapter(argo: ArgoEmulator) -> AsyncIterator[ArgoCDAdapter]:
    instance = ArgoCDAdapter("argo", make_config(argo))
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def auto_adapter(argo: ArgoEmulator) -> AsyncIterator[ArgoCDAdapter]:
    """An instance whose Applications sync automatically (prune + selfHeal)."""
    instance = ArgoCDAdapter(
        "argo-auto",
        make_config(argo, syncPolicy={"automated": True, "prune": True, "selfHeal": True}),
    )
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


def ctx(attempt: int = 1) -> OperationContext:
    n = next(_ids)
    return OperationContext(operation_id=f"op-{n}", idempotency_key=f"op-{n}:x", attempt=attempt)


def helm_upload(version: str = "1.0.0", **source: str) -> PackageUpload:
    return PackageUpload(
        name="web",
        version=version,
        package_type="helm",
        package_uri=CHARTS,
        source={"chart": "web", **source},
    )


def git_upload(version: str = "1.0.0", **source: str) -> PackageUpload:
    return PackageUpload(
        name="web-git",
        version=version,
        package_type="git-repo",
        package_uri=GIT,
        source={"path": "deploy/web", "targetRevision": "v1.0.0", **source},
    )


def spec(
    package: PackageInfo, name: str = "web", values: dict[str, Any] | None = None
) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}",
        name=name,
        namespace="ran",
        package=package,
        values=values or {},
    )
