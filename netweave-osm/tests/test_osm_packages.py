"""Onboarding, listing, reading and deleting VNF/KNF packages and NS descriptors."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest
from netweave.adapters import PackageUpload
from netweave.errors import AlreadyExists, Conflict, InUse, InvalidInput, NotFound
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_packages import archive, knf_vnfd, nsd, vnf_vnfd


async def test_onboard_knf_and_nsd_list_get_delete(
    adapter: OsmAdapter,
    emulator: OsmNbiEmulator,
    knf_upload: PackageUpload,
    ns_upload: PackageUpload,
) -> None:
    vnf = await adapter.upload_package(knf_upload)
    ns = await adapter.upload_package(ns_upload)

    assert vnf.backend_ref.startswith("vnfd:") and ns.backend_ref.startswith("nsd:")
    assert (vnf.name, vnf.version, vnf.package_type) == ("ldap-knf", "1.0", "vnfd")
    # A Helm-based KNF is recognised and its KDUs described.
    assert vnf.extensions["helmBased"] is True
    assert vnf.extensions["kdus"] == [
        {"name": "ldap", "helmChart": "bitnami/openldap:1.2.7", "jujuBundle": None}
    ]
    assert ns.extensions["memberVnfs"] == [{"memberVnfIndex": "ldap", "vnfdId": "ldap-knf"}]
    assert vnf.checksum and vnf.checksum.startswith("md5:")
    # The tar.gz went up as gzip and the zip as zip, through the package-content endpoints.
    uploads = [(m, p) for m, p, _, s in emulator.log if m == "POST" and s == 201]
    assert ("POST", "/osm/vnfpkgm/v1/vnf_packages_content") in uploads
    assert ("POST", "/osm/nsd/v1/ns_descriptors_content") in uploads

    listed = {p.backend_ref: p for p in await adapter.list_packages()}
    assert set(listed) == {vnf.backend_ref, ns.backend_ref}
    again = await adapter.get_package(ns.backend_ref)
    assert again.name == "ldap-ns" and again.extensions["vnfdIds"] == ["ldap-knf"]

    # The NSD references the VNF package: OSM refuses to delete it (409 → InUse).
    with pytest.raises(InUse):
        await adapter.delete_package(vnf.backend_ref)
    await adapter.delete_package(ns.backend_ref)
    await adapter.delete_package(vnf.backend_ref)
    assert await adapter.list_packages() == []
    with pytest.raises(NotFound):
        await adapter.get_package(vnf.backend_ref)


async def test_package_type_is_read_from_the_archive(adapter: OsmAdapter, tmp_path: Path) -> None:
    path = archive(tmp_path, vnf_vnfd("scaler-vnf"), fmt="zip")
    info = await adapter.upload_package(
        PackageUpload(name="scaler-vnf", version="2.1", archive=path)
    )
    assert info.package_type == "vnfd"
    assert info.extensions["helmBased"] is False
    assert info.extensions["scalingAspects"] == [{"id": "vdu-autoscale", "maxScaleLevel": 3}]


async def test_duplicate_descriptor_is_already_exists(
    adapter: OsmAdapter, knf_upload: PackageUpload
) -> None:
    await adapter.upload_package(knf_upload)
    with pytest.raises(AlreadyExists):
        await adapter.upload_package(knf_upload)


async def test_name_mismatch_is_a_warning(adapter: OsmAdapter, knf_upload: PackageUpload) -> None:
    info = await adapter.upload_package(dataclasses.replace(knf_upload, name="other-name"))
    assert info.name == "ldap-knf"
    assert any("ldap-knf" in w and "other-name" in w for w in info.warnings)


async def test_bad_archives_are_invalid_input(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(InvalidInput, match=r"\.tar\.gz or \.zip"):
        await adapter.upload_package(PackageUpload(name="j", version="1", archive=junk))
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage-after-gzip-magic")
    with pytest.raises(InvalidInput, match="corrupt"):
        await adapter.upload_package(PackageUpload(name="c", version="1", archive=corrupt))
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("pkg/values.yaml", "replicaCount: 1\n")
    with pytest.raises(InvalidInput, match="no VNF or NS descriptor"):
        await adapter.upload_package(PackageUpload(name="p", version="1", archive=plain))
    wrong_type = archive(tmp_path, knf_vnfd("k", {"a": "repo/a:1"}))
    with pytest.raises(InvalidInput, match="packageType"):
        await adapter.upload_package(
            PackageUpload(name="k", version="1", package_type="nsd", archive=wrong_type)
        )
    # Nothing bad reached the NBI.
    assert emulator.count("POST", "_content") == 0


async def test_registration_by_uri_is_refused(adapter: OsmAdapter) -> None:
    with pytest.raises(InvalidInput, match="archives only"):
        await adapter.upload_package(
            PackageUpload(name="a", version="1", package_uri="https://example.invalid/a.tar.gz")
        )


async def test_nsd_with_missing_vnfd_is_a_conflict(adapter: OsmAdapter, tmp_path: Path) -> None:
    path = archive(tmp_path, nsd("lonely-ns", {"1": "missing-vnf"}))
    with pytest.raises(Conflict) as caught:
        # OSM answers 409 for an NSD whose VNF packages are not onboarded.
        await adapter.upload_package(PackageUpload(name="lonely-ns", version="1", archive=path))
    assert not isinstance(caught.value, AlreadyExists)
    assert "missing-vnf" in caught.value.message


async def test_unknown_package_refs_are_not_found(adapter: OsmAdapter) -> None:
    with pytest.raises(NotFound):
        await adapter.get_package("helm:whatever")
    with pytest.raises(NotFound):
        await adapter.get_package("vnfd:6f1b1d2c-0000-4000-8000-000000000000")
    with pytest.raises(NotFound):
        await adapter.delete_package("nsd:6f1b1d2c-0000-4000-8000-000000000000")
