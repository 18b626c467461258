from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from netweave.adapters import PackageUpload
from netweave.testing.emulators import failing_at_teardown
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_helpers import make_config
from osm_packages import archive, knf_vnfd, nsd

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("NETWEAVE_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def contract_path() -> Path:
    path = shared_dir() / "contracts" / "osm" / "osm-openapi.yaml"
    if not path.exists():
        pytest.fail(f"OSM NBI contract not found at {path} (set NETWEAVE_SHARED_DIR)")
    return path


@pytest.fixture
def emulator(contract_path: Path) -> Iterator[OsmNbiEmulator]:
    nbi = OsmNbiEmulator(contract_path, op_duration=0.05)
    nbi.start()
    try:
        with failing_at_teardown(nbi.strict):
            yield nbi
    finally:
        nbi.stop()


@pytest.fixture
async def adapter(emulator: OsmNbiEmulator) -> AsyncIterator[OsmAdapter]:
    instance = OsmAdapter("osm-test", make_config(emulator))
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
def knf_upload(tmp_path: Path) -> PackageUpload:
    path = archive(tmp_path, knf_vnfd("ldap-knf", {"ldap": "bitnami/openldap:1.2.7"}))
    return PackageUpload(name="ldap-knf", version="1.0", package_type="vnfd", archive=path)


@pytest.fixture
def ns_upload(tmp_path: Path) -> PackageUpload:
    path = archive(tmp_path, nsd("ldap-ns", {"ldap": "ldap-knf"}), fmt="zip")
    return PackageUpload(name="ldap-ns", version="1.0", archive=path)
