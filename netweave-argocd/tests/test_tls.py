"""TLS to argocd-server: the configured CA is trusted, an unknown one is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argo_emulator import ArgoEmulator, Served
from conftest import make_config
from netweave.errors import BackendUnavailable
from netweave.testing.tls import make_pki
from netweave_argocd.adapter import ArgoCDAdapter


@pytest.fixture
def https_argo(tmp_path: Path) -> Iterator[tuple[ArgoEmulator, Path]]:
    pki = make_pki(tmp_path)
    ca, cert, key = pki.ca, pki.server_cert, pki.server_key
    emulator = ArgoEmulator()
    served = Served(emulator, tls=(cert, key))
    served.start()
    try:
        yield emulator, ca
    finally:
        served.stop()
    assert emulator.violations == []


async def test_configured_ca_is_trusted(https_argo: tuple[ArgoEmulator, Path]) -> None:
    argo, ca = https_argo
    assert argo.url.startswith("https://127.0.0.1:")
    adapter = ArgoCDAdapter("argo", make_config(argo, http={"tls": {"caFile": str(ca)}}))
    try:
        health = await adapter.health()
        assert health.healthy, health.message
    finally:
        await adapter.stop()


async def test_unknown_ca_is_refused_as_unavailable(https_argo: tuple[ArgoEmulator, Path]) -> None:
    argo, _ = https_argo
    adapter = ArgoCDAdapter("argo", make_config(argo, http={"retries": 0}))
    try:
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await adapter.get_deployment("argocd/web")
        assert argo.requests == []  # the handshake failed: nothing reached the API
    finally:
        await adapter.stop()


async def test_verification_can_be_switched_off(https_argo: tuple[ArgoEmulator, Path]) -> None:
    argo, _ = https_argo
    adapter = ArgoCDAdapter("argo", make_config(argo, http={"tls": {"verify": False}}))
    try:
        assert (await adapter.health()).healthy
    finally:
        await adapter.stop()
