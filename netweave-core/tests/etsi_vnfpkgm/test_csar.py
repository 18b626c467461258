"""SOL004 CSARs and SOL001 VNFDs read by netweave.packaging: good layouts, a Tacker-style
multi-file VNFD, the generated VNFD read back, and every hostile or broken package refused with
a 400 naming what is wrong (nothing is extracted before the checks)."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import io
import random
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from netweave.adapters import PackageDescription, Workload
from netweave.errors import InvalidInput
from netweave.packaging.csar import CsarLimits, CsarStream, chart_identity, inspect_csar
from netweave.packaging.sol001 import read_vnfd
from netweave.packaging.vnfd import generated_vnfd, to_sol001
from netweave.testing.vnfpkgm import build_csar, vnfd_document


def chart(tmp_path: Path, name: str = "web", version: str = "1.2.3") -> Path:
    path = tmp_path / f"{name}-{version}.tgz"
    files = {
        f"{name}/Chart.yaml": yaml.safe_dump(
            {"apiVersion": "v2", "name": name, "version": version}
        ).encode(),
        f"{name}/values.yaml": b"replicaCount: 1\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def refused(path: Path, limits: CsarLimits | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        inspect_csar(path, limits)
    return caught.value.message


@pytest.mark.parametrize("layout", ["tosca-metadata", "manifest-only"])
def test_a_good_csar_is_read(tmp_path: Path, layout: str) -> None:
    csar = build_csar(
        tmp_path / "p.csar", vnfd=vnfd_document("d-1", level=3), chart=chart(tmp_path),
        layout=layout,
    )  # fmt: skip
    info = inspect_csar(csar)
    assert info.layout == ("TOSCA-Metadata" if layout == "tosca-metadata" else "manifest-only")
    vnfd = info.vnfd
    assert (vnfd.vnfd_id, vnfd.provider, vnfd.product_name) == ("d-1", "Example Co", "example-cnf")
    (flavour,) = vnfd.flavours
    assert flavour.flavour_id == "small"
    assert [v.vdu_id for v in flavour.vdus] == ["web"]
    assert flavour.vdus[0].replica_key == "replicaCount"
    (aspect,) = flavour.aspects
    assert (aspect.aspect_id, aspect.max_scale_level, aspect.deltas) == (
        "web_aspect",
        5,
        {"web": 1},
    )
    assert {lv.level_id: lv.scale_info for lv in flavour.levels} == {
        "small": {"web_aspect": 0},
        "large": {"web_aspect": 3},
    }
    assert flavour.default_level == "small"
    assert info.chart == "Files/kubernetes/chart.tgz"
    assert info.compatible_versions == ["2.6.1", "4.3.1"]
    assert vnfd.scale_aspects() == {
        "web_aspect": {
            "replicaKey": "replicaCount",
            "minReplicas": 1,
            "replicasPerStep": 1,
            "maxScaleLevel": 5,
        }
    }


def test_a_tacker_style_vnfd_in_two_files(tmp_path: Path) -> None:
    """The top file declares a VNF type pinning its properties (valid_values / default) and a
    substitution; the flavour file holds the VDUs and policies."""
    top = {
        "tosca_definitions_version": "tosca_simple_yaml_1_2",
        "imports": [
            "etsi_nfv_sol001_common_types.yaml",
            "etsi_nfv_sol001_vnfd_types.yaml",
            "helloworld_df_simple.yaml",
        ],
        "node_types": {
            "company.provider.VNF": {
                "derived_from": "tosca.nodes.nfv.VNF",
                "properties": {
                    "descriptor_id": {
                        "type": "string",
                        "constraints": [{"valid_values": ["b1bb0ce7-ebca-4fa7"]}],
                        "default": "b1bb0ce7-ebca-4fa7",
                    },
                    "descriptor_version": {"type": "string", "default": "1.0"},
                    "provider": {"type": "string", "constraints": [{"valid_values": ["Co"]}]},
                    "product_name": {"type": "string", "default": "Sample CNF"},
                    "software_version": {"type": "string", "default": "2.0"},
                    "flavour_id": {"type": "string", "constraints": [{"valid_values": ["simple"]}]},
                },
            }
        },
        "topology_template": {
            "substitution_mappings": {
                "node_type": "company.provider.VNF",
                "properties": {"flavour_id": "simple"},
            },
            "node_templates": {
                "VNF": {"type": "company.provider.VNF", "properties": {"flavour_description": ""}}
            },
        },
    }
    flavour_doc = copy.deepcopy(vnfd_document("ignored"))
    flavour_doc["imports"] = [
        "etsi_nfv_sol001_common_types.yaml",
        "etsi_nfv_sol001_vnfd_types.yaml",
    ]
    template = flavour_doc["topology_template"]
    template["substitution_mappings"] = {
        "node_type": "company.provider.VNF",
        "properties": {"flavour_id": "simple"},
    }
    del template["node_templates"]["VNF"]
    files = {
        "Definitions/helloworld_df_simple.yaml": yaml.safe_dump(flavour_doc).encode(),
        # Copies of the SOL001 type files in the package: read, but the shipped ones resolve.
        "Definitions/etsi_nfv_sol001_common_types.yaml": b"tosca_definitions_version: x\n",
        "Definitions/etsi_nfv_sol001_vnfd_types.yaml": b"tosca_definitions_version: x\n",
    }
    csar = build_csar(
        tmp_path / "t.csar", vnfd=yaml.safe_dump(top).encode(), chart=chart(tmp_path), extra=files
    )
    info = inspect_csar(csar)
    assert (info.vnfd.vnfd_id, info.vnfd.provider, info.vnfd.product_name) == (
        "b1bb0ce7-ebca-4fa7",
        "Co",
        "Sample CNF",
    )
    (flavour,) = info.vnfd.flavours
    assert flavour.flavour_id == "simple" and [v.vdu_id for v in flavour.vdus] == ["web"]
    assert set(info.vnfd_files) == {
        "Definitions/vnfd.yaml",
        "Definitions/helloworld_df_simple.yaml",
        "Definitions/etsi_nfv_sol001_common_types.yaml",
        "Definitions/etsi_nfv_sol001_vnfd_types.yaml",
    }


def test_tacker_layout_top_file_choosing_the_flavour_by_input(tmp_path: Path) -> None:
    """Tacker's own sample layout: the top file's VNF node takes ``flavour_id`` from
    ``get_input`` (chosen at instantiate) and has no substitution; a types file pins the VNF
    type's properties; the flavour file substitutes it and holds VDUs, connection points, a
    virtual link and the policies. Refused as 'the deployment flavour has no flavour_id'
    before: Tacker's samples did not onboard."""
    sol001 = ["etsi_nfv_sol001_common_types.yaml", "etsi_nfv_sol001_vnfd_types.yaml"]
    pinned = {"type": "string", "constraints": [{"valid_values": ["simple"]}], "default": "simple"}
    types = {
        "tosca_definitions_version": "tosca_simple_yaml_1_2",
        "imports": sol001,
        "node_types": {
            "vendor.sample.VNF": {
                "derived_from": "tosca.nodes.nfv.VNF",
                "properties": {
                    "flavour_id": pinned,
                    "vnfm_info": {"type": "list", "default": ["Tacker"]},
                },
                "interfaces": {"Vnflcm": {"type": "tosca.interfaces.nfv.Vnflcm"}},
            }
        },
    }
    top = {
        "tosca_definitions_version": "tosca_simple_yaml_1_2",
        "imports": [*sol001, "sample_types.yaml", "sample_df_simple.yaml"],
        "topology_template": {
            "inputs": {"selected_flavour": {"type": "string"}},
            "node_templates": {
                "VNF": {
                    "type": "vendor.sample.VNF",
                    "properties": {
                        "flavour_id": {"get_input": "selected_flavour"},
                        "descriptor_id": "c0ffee00-0000-4000-8000-000000000001",
                        "descriptor_version": "1.0",
                        "provider": "Vendor",
                        "product_name": "Sample CNF",
                        "software_version": "1.0",
                        "vnfm_info": ["Tacker"],
                    },
                }
            },
        },
    }
    vdu = {
        "type": "tosca.nodes.nfv.Vdu.Compute",
        "properties": {"name": "vdu1", "vdu_profile": {"min_number_of_instances": 1,
                                                        "max_number_of_instances": 3}},
    }  # fmt: skip
    flavour = {
        "tosca_definitions_version": "tosca_simple_yaml_1_2",
        "imports": [*sol001, "sample_types.yaml"],
        "topology_template": {
            "substitution_mappings": {
                "node_type": "vendor.sample.VNF",
                "properties": {"flavour_id": "simple"},
            },
            "node_templates": {
                "VNF": {"type": "vendor.sample.VNF", "properties": {"flavour_description": "s"}},
                "VDU1": vdu,
                "CP1": {
                    "type": "tosca.nodes.nfv.VduCp",
                    "properties": {"layer_protocols": ["ipv4"], "order": 0},
                    "requirements": [{"virtual_binding": "VDU1"}, {"virtual_link": "VL1"}],
                },
                "VL1": {
                    "type": "tosca.nodes.nfv.VnfVirtualLink",
                    "properties": {"connectivity_type": {"layer_protocols": ["ipv4"]}},
                },
            },
            "policies": [
                {"scaling_aspects": {"type": "tosca.policies.nfv.ScalingAspects", "properties": {
                    "aspects": {"vdu1_aspect": {"name": "a", "description": "a",
                                                "max_scale_level": 2, "step_deltas": ["d1"]}}}}},
                {"VDU1_deltas": {"type": "tosca.policies.nfv.VduScalingAspectDeltas",
                                 "properties": {"aspect": "vdu1_aspect",
                                                "deltas": {"d1": {"number_of_instances": 1}}},
                                 "targets": ["VDU1"]}},
                {"levels": {"type": "tosca.policies.nfv.InstantiationLevels", "properties": {
                    "levels": {"small": {"description": "s",
                                         "scale_info": {"vdu1_aspect": {"scale_level": 0}}},
                               "large": {"description": "l",
                                         "scale_info": {"vdu1_aspect": {"scale_level": 2}}}},
                    "default_level": "small"}}},
            ],
        },
    }  # fmt: skip
    files = {
        "Definitions/sample_types.yaml": yaml.safe_dump(types).encode(),
        "Definitions/sample_df_simple.yaml": yaml.safe_dump(flavour).encode(),
    }
    csar = build_csar(
        tmp_path / "t.csar", vnfd=yaml.safe_dump(top).encode(), chart=chart(tmp_path), extra=files
    )
    info = inspect_csar(csar)
    assert (info.vnfd.vnfd_id, info.vnfd.provider, info.vnfd.vnfm_info) == (
        "c0ffee00-0000-4000-8000-000000000001",
        "Vendor",
        ["Tacker"],
    )
    (simple,) = info.vnfd.flavours
    assert simple.flavour_id == "simple" and [v.vdu_id for v in simple.vdus] == ["VDU1"]
    assert [(a.aspect_id, a.deltas) for a in simple.aspects] == [("vdu1_aspect", {"VDU1": 1})]
    assert {level.level_id: level.scale_info for level in simple.levels} == {
        "small": {"vdu1_aspect": 0},
        "large": {"vdu1_aspect": 2},
    }
    # Without the flavour file nothing names the flavour when the type pins none: refused.
    del types["node_types"]["vendor.sample.VNF"]["properties"]["flavour_id"]
    top["imports"] = [*sol001, "sample_types.yaml"]
    alone = build_csar(
        tmp_path / "alone.csar",
        vnfd=yaml.safe_dump(top).encode(),
        chart=chart(tmp_path),
        extra={"Definitions/sample_types.yaml": yaml.safe_dump(types).encode()},
    )
    assert "no deployment flavour" in refused(alone)


def test_the_generated_vnfd_reads_back_as_itself(tmp_path: Path) -> None:
    description = PackageDescription(
        workloads=(
            Workload("Deployment", "shop-web", 2, "replicaCount", (("web", "nginx:1"),)),
            Workload("StatefulSet", "shop-db", 1, "db.replicas", (("db", "pg:16"),)),
            Workload("DaemonSet", "shop-agent", None, None, (("agent", "a:1"),)),
        )
    )
    vnfd = generated_vnfd(
        "shop-1.0.0", "shop", "1.0.0", description, provider="Shop", app_version="3.1"
    )
    assert (vnfd.provider, vnfd.software_version, vnfd.vnfd_version) == ("Shop", "3.1", "1.0.0")
    text = to_sol001(vnfd).encode()
    again = read_vnfd("vnfd.yaml", lambda name: {"vnfd.yaml": text}[name])
    assert [a.aspect_id for a in again.flavours[0].aspects] == ["shop_web", "shop_db"]
    assert again.scale_aspects() == vnfd.scale_aspects()
    assert again.scale_aspects()["shop_db"]["replicaKey"] == "db.replicas"
    assert [v.vdu_id for v in again.flavours[0].vdus] == ["shop_web", "shop_db", "shop_agent"]
    levels = {lv.level_id: lv.scale_info for lv in again.flavours[0].levels}
    assert levels == {"default": {"shop_web": 1, "shop_db": 0}}
    # One scalable workload: its aspect is "default", the one /vnflcm derives for a bare chart.
    single = generated_vnfd(
        "a-1", "a", "1", PackageDescription(workloads=description.workloads[:1])
    )
    assert [a.aspect_id for a in single.flavours[0].aspects] == ["default"]
    # Deterministic: the same chart gives the same text.
    assert to_sol001(generated_vnfd("shop-1.0.0", "shop", "1.0.0", description, provider="Shop",
                                    app_version="3.1")) == text.decode()  # fmt: skip


def _broken(document: dict[str, Any], case: str) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    template = doc["topology_template"]
    if case == "missing-provider":
        del template["node_templates"]["VNF"]["properties"]["provider"]
    elif case == "unknown-type":
        template["node_templates"]["web"]["type"] = "tosca.nodes.nfv.Nope"
    elif case == "unknown-aspect":
        template["policies"][1]["web_deltas"]["properties"]["aspect"] = "nope"
    elif case == "level-over-max":
        levels = template["policies"][2]["instantiation_levels"]["properties"]["levels"]
        levels["large"]["scale_info"]["web_aspect"]["scale_level"] = 99
    elif case == "no-vdu-profile":
        del template["node_templates"]["web"]["properties"]["vdu_profile"]
    elif case == "network-import":
        doc["imports"].append("https://example.com/types.yaml")
    elif case == "import-outside":
        doc["imports"].append("../../etc/types.yaml")
    elif case == "missing-import":
        doc["imports"].append("other.yaml")
    elif case == "no-flavour":
        del template["node_templates"]["VNF"]
    return doc


@pytest.mark.parametrize(
    "case",
    [
        "missing-provider",
        "unknown-type",
        "unknown-aspect",
        "level-over-max",
        "no-vdu-profile",
        "network-import",
        "import-outside",
        "missing-import",
        "no-flavour",
    ],
)
def test_a_broken_vnfd_is_refused(tmp_path: Path, case: str) -> None:
    csar = build_csar(
        tmp_path / "b.csar", vnfd=_broken(vnfd_document("d-1"), case), chart=chart(tmp_path)
    )
    assert "invalid VNFD" in refused(csar)


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(vnfd_document("d-1")) + "extra: &a [1]\nmore: *a\n"
    csar = build_csar(tmp_path / "a.csar", vnfd=text.encode(), chart=chart(tmp_path))
    assert "not valid YAML" in refused(csar)


def _append(csar: Path, name: str, data: bytes, **attrs: Any) -> None:
    with zipfile.ZipFile(csar, "a") as archive:
        info = zipfile.ZipInfo(name)
        for key, value in attrs.items():
            setattr(info, key, value)
        archive.writestr(info, data)


def test_hostile_archives_are_refused(tmp_path: Path) -> None:
    good = vnfd_document("d-1")
    base = chart(tmp_path)

    def fresh(name: str, **kwargs: Any) -> Path:
        return build_csar(tmp_path / name, vnfd=good, chart=base, **kwargs)

    assert "zip slip" in refused(fresh("slip.csar", raw_entries={"../evil": b"x"}))
    assert "absolute" in refused(fresh("abs.csar", raw_entries={"/etc/evil": b"x"}))
    link = fresh("link.csar")
    _append(link, "Files/link", b"/etc/passwd", create_system=3, external_attr=0o120777 << 16)
    assert "symbolic link" in refused(link)
    encrypted = fresh("enc.csar")
    _append(encrypted, "Files/secret", b"x")
    data = bytearray(encrypted.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last entry's central directory header
    data[central + 8] |= 0x1  # general purpose flag bit 0: encrypted
    encrypted.write_bytes(bytes(data))
    assert "encrypted" in refused(encrypted)
    duplicate = fresh("dup.csar")
    with pytest.warns(UserWarning, match="Duplicate name"):
        _append(duplicate, "Definitions/vnfd.yaml", b"again")
    assert "duplicate" in refused(duplicate)
    bomb = fresh("bomb.csar", extra={"Files/zeros": b"\0" * (16 << 20)})
    assert "bomb" in refused(bomb)
    small = CsarLimits(max_entries=3)
    assert "entries" in refused(fresh("many.csar"), small)
    assert "does not match" in refused(fresh("digest.csar", wrong_digest="Definitions/vnfd.yaml"))
    unlisted = fresh("unlisted.csar", extra={"Files/x": b"x"}, unlisted=("Files/x",))
    assert "does not list" in refused(unlisted)
    # A certificate file nothing names (not the entry certificate): an unlisted file.
    stray = fresh("stray.csar")
    with zipfile.ZipFile(stray, "a") as archive:
        archive.writestr("vnfd.cert", b"-----BEGIN CERTIFICATE-----\n")
    assert "does not list" in refused(stray)
    two = fresh("two.csar", extra={"Files/kubernetes/other.tgz": base.read_bytes()})
    assert "exactly one Helm chart" in refused(two)
    none = build_csar(tmp_path / "none.csar", vnfd=good)
    assert "exactly one Helm chart" in refused(none)
    not_zip = tmp_path / "x.csar"
    not_zip.write_bytes(b"hello world, not a zip")
    assert "zip" in refused(not_zip)


def test_manifest_entries_and_signatures(tmp_path: Path) -> None:
    csar = build_csar(tmp_path / "m.csar", vnfd=vnfd_document("d-1"), chart=chart(tmp_path))
    # A CMS signature at the end of the manifest that is not one: refused, saying so
    # (test_signatures.py verifies real ones).
    with zipfile.ZipFile(csar) as source:
        entries = {n: source.read(n) for n in source.namelist()}
    entries["vnfd.mf"] += b"\n-----BEGIN CMS-----\nMIIB\n-----END CMS-----\n"
    signed = tmp_path / "signed.csar"
    with zipfile.ZipFile(signed, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
    assert "CMS signature" in refused(signed)
    # An external artifact (a URL as Source): refused, nothing fetched.
    entries["vnfd.mf"] = entries["vnfd.mf"].split(b"-----BEGIN CMS")[0] + (
        b"\nSource: https://example.com/image.qcow2\nAlgorithm: SHA-256\nHash: " + b"a" * 64 + b"\n"
    )
    external = tmp_path / "external.csar"
    with zipfile.ZipFile(external, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
    assert "external artifact" in refused(external)


def test_chart_identity_reads_chart_yaml_only_within_bounds(tmp_path: Path) -> None:
    assert chart_identity(chart(tmp_path)) == ("web", "1.2.3")
    bomb = tmp_path / "bomb.tgz"
    with gzip.open(bomb, "wb") as out:
        out.write(b"\0" * (8 << 20))  # no tar header at all: a stream of zeros
    with pytest.raises(InvalidInput):
        chart_identity(bomb, CsarLimits(max_uncompressed_bytes=1 << 20))


def _vnfd_using(section: str, type_name: str) -> bytes:
    document = vnfd_document("vnfd-abridged")
    topology = document["topology_template"]
    if section == "node":
        topology["node_templates"]["extra"] = {"type": type_name, "properties": {}}
    else:
        topology.setdefault("policies", []).append({"extra": {"type": type_name}})
    return yaml.safe_dump(document).encode()


@pytest.mark.parametrize(
    ("section", "type_name"),
    [
        ("node", "tosca.nodes.nfv.VirtualCp"),
        ("node", "tosca.nodes.nfv.Vdu.VirtualStorage"),
        ("policy", "tosca.policies.nfv.LcmOperationCoordination"),
    ],
)
def test_later_and_earlier_sol001_types_are_known(section: str, type_name: str) -> None:
    """Types of SOL001 versions other than the one most VNFDs import (2.5.1's VirtualStorage,
    2.6.1's VirtualCp, 3.3.1's LcmOperationCoordination) resolve from the shipped set."""
    data = _vnfd_using(section, type_name)
    vnfd = read_vnfd("vnfd.yaml", lambda _name: data)
    assert (vnfd.vnfd_id, vnfd.source) == ("vnfd-abridged", "csar")


@pytest.mark.parametrize(
    ("section", "type_name"),
    [
        ("node", "tosca.nodes.nfv.NoSuchStandardNode"),
        ("node", "com.example.nodes.Private"),
        ("policy", "tosca.policies.nfv.NoSuchStandardPolicy"),
    ],
)
def test_types_absent_from_the_shipped_set_are_refused(section: str, type_name: str) -> None:
    """The shipped SOL001 definitions are abridged (docs/etsi.md lists what that means): a
    VNFD naming a node or policy type outside them, and not defining it itself, is refused,
    naming the type."""
    data = _vnfd_using(section, type_name)
    with pytest.raises(InvalidInput, match=f"undefined type '{type_name}'"):
        read_vnfd("vnfd.yaml", lambda _name: data)


def test_the_chart_follower_reads_the_chart_bytes_and_a_bad_digest_still_refuses(
    tmp_path: Path,
) -> None:
    """The chart is followed on another thread while its digest is checked: the follower
    sees exactly the chart's bytes (in chunks of the reader's choosing, after a seek back to
    the start, as the chart inspection does) and its answer is kept; with the chart's digest
    wrong the package is still refused, and the follower's thread has ended."""
    # Incompressible and several 1 MiB chunks long: the pipe hands over more than one chunk.
    big = chart(tmp_path)
    payload = tmp_path / "big.tgz"
    payload.write_bytes(big.read_bytes() + random.Random(7).randbytes(3 << 20))
    seen: list[tuple[int, bytes]] = []

    def follower(raw: IO[bytes], size: int) -> str:
        magic = raw.read(4)
        raw.seek(0)
        data = bytearray()
        while block := raw.read(65_536 + 3):
            data.extend(block)
        seen.append((size, bytes(data)))
        return f"read {magic.hex()}"

    csar = build_csar(tmp_path / "f.csar", vnfd=vnfd_document("d-1"), chart=payload)
    out = tmp_path / "chart-out.tgz"
    info = inspect_csar(csar, chart_to=out, chart_follower=follower)
    assert info.chart_followed == f"read {payload.read_bytes()[:4].hex()}"
    assert seen == [(payload.stat().st_size, payload.read_bytes())]
    assert out.read_bytes() == payload.read_bytes()

    # A follower that stops early (as a refusing inspection does) does not block the digest.
    def quitter(raw: IO[bytes], size: int) -> int:
        return len(raw.read(10))

    assert inspect_csar(csar, chart_follower=quitter).chart_followed == 10

    threads = threading.active_count()
    wrong = build_csar(
        tmp_path / "w.csar", vnfd=vnfd_document("d-1"), chart=payload,
        wrong_digest="Files/kubernetes/chart.tgz",
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="does not match"):
        inspect_csar(wrong, chart_to=tmp_path / "w.tgz", chart_follower=follower)
    assert threading.active_count() == threads
    # Writing the chart out fails (ENOSPC) on the thread that hashes and writes: a refusal
    # (400), not a hang, and no thread left.
    if Path("/dev/full").exists():
        with pytest.raises(InvalidInput, match="OSError"):
            inspect_csar(csar, chart_to=Path("/dev/full"), chart_follower=follower)
        assert threading.active_count() == threads


def _arrive(csar: Path, upload: Path, stream: CsarStream, *, stop_at: int | None = None) -> None:
    """Write ``csar`` to ``upload`` in pieces as a receiver does, telling ``stream``."""
    total = 0
    with csar.open("rb") as source, upload.open("wb") as sink:
        while block := source.read(65_536):
            if stop_at is not None and total >= stop_at:
                return
            sink.write(block)
            sink.flush()
            total += len(block)
            stream.wrote(total)
    stream.end()


def test_the_chart_is_taken_out_while_the_csar_arrives(tmp_path: Path) -> None:
    """CsarStream reads the CSAR as it is written (local headers, before the central
    directory exists) and takes the chart out with its SHA-256; inspect_csar uses that only
    for the entry the central directory names at the same offset with the same sizes and CRC,
    and compares its digest with the manifest like any other."""
    payload = tmp_path / "big.tgz"
    payload.write_bytes(chart(tmp_path).read_bytes() + random.Random(3).randbytes(3 << 20))
    csar = build_csar(tmp_path / "s.csar", vnfd=vnfd_document("d-1"), chart=payload)
    upload = tmp_path / "upload"
    upload.touch()
    threads = threading.active_count()
    stream = CsarStream(upload, tmp_path / "streamed.tgz", follower=lambda raw, size: size)
    _arrive(csar, upload, stream)
    streamed = stream.result()
    assert streamed is not None
    assert streamed.path.read_bytes() == payload.read_bytes()
    assert streamed.followed == payload.stat().st_size
    assert threading.active_count() == threads

    def never(raw: IO[bytes], size: int) -> None:
        raise AssertionError("the entry was read again")

    out = tmp_path / "chart.tgz"
    info = inspect_csar(upload, chart_to=out, chart_follower=never, streamed=streamed)
    assert info.chart_followed == payload.stat().st_size
    assert out.read_bytes() == payload.read_bytes() and not streamed.path.exists()

    # Not the entry the central directory names (another offset): read from the archive.
    elsewhere = dataclasses.replace(streamed, header_offset=streamed.header_offset + 1)
    info = inspect_csar(upload, chart_follower=lambda raw, size: "read", streamed=elsewhere)
    assert info.chart_followed == "read"
    # The streamed digest is compared with the manifest: a wrong one refuses the package.
    wrong = dataclasses.replace(streamed, sha256="0" * 64)
    with pytest.raises(InvalidInput, match="does not match"):
        inspect_csar(upload, streamed=wrong)
    # A CSAR whose manifest has the chart's digest wrong: refused with the streamed chart too.
    bad = build_csar(
        tmp_path / "bad.csar", vnfd=vnfd_document("d-1"), chart=payload,
        wrong_digest="Files/kubernetes/chart.tgz",
    )  # fmt: skip
    upload.write_bytes(b"")
    stream = CsarStream(upload, tmp_path / "streamed-bad.tgz")
    _arrive(bad, upload, stream)
    streamed_bad = stream.result()
    assert streamed_bad is not None
    with pytest.raises(InvalidInput, match="does not match"):
        inspect_csar(upload, chart_to=tmp_path / "bad.tgz", streamed=streamed_bad)


def test_a_csar_stream_stops_cleanly(tmp_path: Path) -> None:
    """Abandoned mid-body (the client went away), or not a CSAR it can read ahead (a chart
    .tgz): no result, its file removed, its thread ended."""
    payload = tmp_path / "big.tgz"
    payload.write_bytes(chart(tmp_path).read_bytes() + random.Random(4).randbytes(2 << 20))
    csar = build_csar(tmp_path / "s.csar", vnfd=vnfd_document("d-1"), chart=payload)
    threads = threading.active_count()
    upload = tmp_path / "upload"
    upload.touch()
    target = tmp_path / "streamed.tgz"
    stream = CsarStream(upload, target, follower=lambda raw, size: size)
    _arrive(csar, upload, stream, stop_at=1 << 20)
    stream.abandon()
    assert not target.exists()
    assert threading.active_count() == threads
    upload.write_bytes(b"")
    stream = CsarStream(upload, target)
    _arrive(payload, upload, stream)
    assert stream.result() is None and not target.exists()
    assert threading.active_count() == threads
