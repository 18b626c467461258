"""Reading descriptors in both OSM formats (SOL006 and the older OSM IM catalogs)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml
from netweave.errors import InvalidInput
from netweave_osm.descriptors import (
    inspect_archive,
    member_vnfs,
    package_extensions,
    vnfd_kdus,
    vnfd_scaling_aspects,
)
from osm_packages import archive, knf_vnfd, nsd


def test_osm_im_catalog_format() -> None:
    old_nsd = {
        "id": "old_ns",
        "name": "old_ns",
        "constituent-vnfd": [
            {"member-vnf-index": 1, "vnfd-id-ref": "old_vnf"},
            {"member-vnf-index": "2", "vnfd-id-ref": "old_vnf"},
        ],
    }
    assert member_vnfs(old_nsd) == [("1", "old_vnf"), ("2", "old_vnf")]
    old_vnfd = {
        "id": "old_vnf",
        "kdu": [{"name": "mongo", "juju-bundle": "cs:mongodb"}],
        "scaling-group-descriptor": [{"name": "scale_vdu", "max-instance-count": 10}],
    }
    assert vnfd_kdus(old_vnfd) == [("mongo", None, "cs:mongodb")]
    assert vnfd_scaling_aspects(old_vnfd) == [("scale_vdu", 10)]
    ext = package_extensions("vnfd", old_vnfd)
    assert ext["helmBased"] is False, "a juju bundle is not a Helm-based KNF"


def test_sol006_records() -> None:
    record = nsd("n", {"a": "v1", "b": "v2"})["nsd"]["nsd"][0]
    assert member_vnfs(record) == [("a", "v1"), ("b", "v2")]
    vnfd = knf_vnfd("k", {"x": "repo/x:1", "y": "repo/y:2"})["vnfd"]
    assert vnfd_kdus(vnfd) == [("x", "repo/x:1", None), ("y", "repo/y:2", None)]
    assert package_extensions("vnfd", vnfd)["helmBased"] is True


def test_inspect_archive_reads_type_and_checksum(tmp_path: Path) -> None:
    tgz = archive(tmp_path, knf_vnfd("k", {"x": "repo/x:1"}))
    facts = inspect_archive(tgz, None)
    assert (facts.content_type, facts.package_type, facts.descriptor_id) == (
        "application/gzip",
        "vnfd",
        "k",
    )
    assert facts.filename == "k.tar.gz"
    assert facts.md5 == hashlib.md5(tgz.read_bytes(), usedforsecurity=False).hexdigest()
    zipped = archive(tmp_path, nsd("n", {"1": "k"}), fmt="zip")
    facts = inspect_archive(zipped, "nsd")
    assert (facts.content_type, facts.package_type, facts.descriptor_id) == (
        "application/zip",
        "nsd",
        "n",
    )


def test_inspect_archive_old_catalog_and_top_level_descriptor_first(tmp_path: Path) -> None:
    path = tmp_path / "old.tar.gz"
    files = {
        "old/charts/sub/values.yaml": yaml.safe_dump({"vnfd": {"id": "decoy"}}),
        "old/old_nsd.yaml": yaml.safe_dump(
            {"nsd:nsd-catalog": {"nsd": [{"id": "old_ns", "constituent-vnfd": []}]}}
        ),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    facts = inspect_archive(path, None)
    assert (facts.package_type, facts.descriptor_id) == ("nsd", "old_ns")
    with pytest.raises(InvalidInput, match="does not match"):
        inspect_archive(path, "vnfd")
