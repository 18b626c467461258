"""Fixtures: the ONAP emulators on 127.0.0.1 and adapters configured against them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from netweave.adapters import PackageUpload
from netweave_onap import OnapAdapter, OnapConfig
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.samples import shared_dir
from onap_emulators.server import HttpEmulator
from onap_emulators.so import SoEmulator


@pytest.fixture(scope="session")
def charts() -> Path:
    path = shared_dir() / "charts"
    if not (path / "hello-world-0.1.0.tgz").exists():
        pytest.fail(f"shared charts not found under {path} (set NETWEAVE_SHARED_DIR)")
    return path


@pytest.fixture
def k8s_backend() -> Iterator[K8sPluginEmulator]:
    emulator = K8sPluginEmulator()
    server = HttpEmulator(emulator).start()
    emulator.url = server.url  # type: ignore[attr-defined]
    try:
        yield emulator
    finally:
        server.stop()
    assert not server.errors, f"emulator crashed: {server.errors!r}"


@pytest.fixture
def k8s_violations_allowed() -> list[str]:
    """Tests that send malformed requests on purpose add here the exact violations they
    provoked (whole texts: a violation that only resembles one still fails)."""
    return []


@pytest.fixture
async def k8s_adapter(
    k8s_backend: K8sPluginEmulator, k8s_violations_allowed: list[str]
) -> AsyncIterator[OnapAdapter]:
    config = OnapConfig.model_validate(
        {
            "backend": "k8splugin",
            "k8sPluginUrl": k8s_backend.url,  # type: ignore[attr-defined]
            "cloudRegion": k8s_backend.cloud_region,
            "pollInterval": 0.02,
            "timeouts": {"read": 5, "write": 10},
            "http": {"retries": 1, "backoff": 0.01},
        }
    )
    adapter = OnapAdapter("onap-k8s", config)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()
    # The allow-list is exact: an entry is one violation's whole text.
    unexpected = [v for v in k8s_backend.violations if v not in k8s_violations_allowed]
    assert not unexpected, f"requests the k8s plugin's structs do not allow: {unexpected}"


@pytest.fixture
def hello_chart(charts: Path) -> PackageUpload:
    return PackageUpload(
        name="hello-world",
        version="0.1.0",
        package_type="helm",
        archive=charts / "hello-world-0.1.0.tgz",
        checksum="sha256:test",
    )


@pytest.fixture
def so_violations_allowed() -> list[str]:
    """Violations a test provoked on purpose (whole texts), as for the k8s plugin."""
    return []


@pytest.fixture
def so_backend(so_violations_allowed: list[str]) -> Iterator[SoEmulator]:
    emulator = SoEmulator(shared_dir() / "contracts" / "onap" / "so-swagger.json")
    server = HttpEmulator(emulator).start()
    emulator.url = server.url
    try:
        yield emulator
    finally:
        server.stop()
    assert not server.errors, f"emulator crashed: {server.errors!r}"
    # Requests and answers both: a test through the gateway fails on them too.
    unexpected = [v for v in emulator.violations if v not in so_violations_allowed]
    assert not unexpected, f"SO contract or answer-schema violations: {unexpected}"


@pytest.fixture
async def so_adapter(
    so_backend: SoEmulator, so_violations_allowed: list[str]
) -> AsyncIterator[OnapAdapter]:
    config = OnapConfig.model_validate(
        {
            "backend": "so",
            "soUrl": so_backend.url,
            "username": so_backend.username,
            "password": so_backend.password,
            "cloudOwner": "CloudOwner",
            "cloudRegion": "k8sregionfour",
            "tenantId": "6bbd2981b210461dbc8fe846df1a7808",
            "globalSubscriberId": "basicnf-customer",
            "pollInterval": 0.02,
            "timeouts": {"read": 5, "write": 10},
            "http": {"retries": 1, "backoff": 0.01},
        }
    )
    adapter = OnapAdapter("onap-so", config)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()
    unexpected = [v for v in so_backend.violations if v not in so_violations_allowed]
    assert not unexpected, f"requests the SO contract does not allow: {unexpected}"
