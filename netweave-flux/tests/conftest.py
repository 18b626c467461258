"""Shared fixtures: the K8s emulator with the real Flux CRDs, the simulated Flux, adapters."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from netweave.config import Settings
from netweave.testing import require_backend
from netweave.testing.gateway import instance_settings
from netweave.testing.k8s import KubernetesEmulator

sys.path.insert(0, str(Path(__file__).parent))

from flux_sim import FluxSimulator
from netweave_flux.adapter import FluxAdapter
from netweave_flux.config import FluxConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("NETWEAVE_SHARED_DIR") or REPO_ROOT.parent / "shared")


def flux_crds() -> list[Path]:
    contracts = shared_dir() / "contracts" / "flux"
    files = sorted(contracts.glob("*.yaml")) if contracts.is_dir() else []
    if not files:
        require_backend(f"the Flux CRDs are missing: no {contracts}/*.yaml (NETWEAVE_SHARED_DIR)")
    return files


@pytest.fixture(scope="session")
def crd_files() -> list[Path]:
    return flux_crds()


@pytest.fixture
def emulator(crd_files: list[Path]) -> Iterator[KubernetesEmulator]:
    with KubernetesEmulator() as emu:
        for path in crd_files:
            emu.install_crd(path)
        for ns in ("flux-system", "apps"):
            emu.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        yield emu


@pytest.fixture
def flux(emulator: KubernetesEmulator) -> FluxSimulator:
    return FluxSimulator(emulator)


@pytest.fixture
def kubeconfig(emulator: KubernetesEmulator, tmp_path: Path) -> Path:
    return emulator.write_kubeconfig(tmp_path / "kubeconfig")


def flux_config(kubeconfig: Path, **overrides: Any) -> dict[str, Any]:
    """The Flux adapter's config for the emulator at ``kubeconfig`` (cluster mode)."""
    raw: dict[str, Any] = {
        "mode": "cluster",
        "cluster": {"kubeconfig": str(kubeconfig), "connectRetries": 0},
        "timeouts": {"read": 10, "write": 30},
    }
    raw.update(overrides)
    return raw


def flux_gateway_settings(tmp_path: Path, kubeconfig: Path, **overrides: Any) -> Settings:
    """Gateway settings with one Flux instance (named ``flux``, the default)."""
    return instance_settings(tmp_path, "flux", flux_config(kubeconfig, **overrides))


def make_adapter(kubeconfig: Path, **overrides: Any) -> FluxAdapter:
    return FluxAdapter("flux-test", FluxConfig.model_validate(flux_config(kubeconfig, **overrides)))


@pytest_asyncio.fixture
async def adapter(kubeconfig: Path, flux: FluxSimulator) -> AsyncIterator[FluxAdapter]:
    a = make_adapter(kubeconfig)
    await a.start()
    try:
        yield a
    finally:
        await a.stop()
