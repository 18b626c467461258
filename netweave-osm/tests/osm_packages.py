"""OSM package archives for the tests, in OSM's SOL006 descriptor format (OSM 9+)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import yaml


def _tar(path: Path, root: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, root: str, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{root}/{name}", data)
    return path


def knf_vnfd(vnfd_id: str, kdus: dict[str, str], version: str = "1.0") -> dict[str, Any]:
    """A KNF: one VNF whose KDUs are Helm charts (``name -> repo/chart:version``)."""
    return {
        "vnfd": {
            "id": vnfd_id,
            "product-name": vnfd_id,
            "description": f"KNF {vnfd_id} with Helm KDUs",
            "provider": "netweave tests",
            "version": version,
            "mgmt-cp": "mgmt-ext",
            "kdu": [{"name": name, "helm-chart": chart} for name, chart in kdus.items()],
            "k8s-cluster": {"nets": [{"id": "mgmtnet"}]},
            "ext-cpd": [{"id": "mgmt-ext", "k8s-cluster-net": "mgmtnet"}],
            "df": [{"id": "default-df"}],
        }
    }


def vnf_vnfd(vnfd_id: str, aspect: str = "vdu-autoscale", max_level: int = 3) -> dict[str, Any]:
    """A VM-based VNF with one scaling aspect (descriptor step scaling)."""
    return {
        "vnfd": {
            "id": vnfd_id,
            "product-name": vnfd_id,
            "description": "VNF with a scaling aspect",
            "provider": "netweave tests",
            "version": "2.1",
            "vdu": [{"id": "dataVM", "name": "dataVM", "sw-image-desc": "ubuntu20.04"}],
            "df": [
                {
                    "id": "default-df",
                    "instantiation-level": [
                        {
                            "id": "default",
                            "vdu-level": [{"vdu-id": "dataVM", "number-of-instances": 1}],
                        }
                    ],
                    "scaling-aspect": [
                        {
                            "id": aspect,
                            "name": aspect,
                            "max-scale-level": max_level,
                            "aspect-delta-details": {
                                "deltas": [
                                    {
                                        "id": "delta-1",
                                        "vdu-delta": [{"id": "dataVM", "number-of-instances": 1}],
                                    }
                                ]
                            },
                        }
                    ],
                }
            ],
        }
    }


def nsd(nsd_id: str, members: dict[str, str], version: str = "1.0") -> dict[str, Any]:
    """An NSD; ``members`` maps member-vnf-index (vnf-profile id) to vnfd id."""
    return {
        "nsd": {
            "nsd": [
                {
                    "id": nsd_id,
                    "name": nsd_id,
                    "version": version,
                    "designer": "netweave tests",
                    "description": f"NS {nsd_id}",
                    "vnfd-id": sorted(set(members.values())),
                    "df": [
                        {
                            "id": "default-df",
                            "vnf-profile": [
                                {"id": index, "vnfd-id": vnfd, "virtual-link-connectivity": []}
                                for index, vnfd in members.items()
                            ],
                        }
                    ],
                }
            ]
        }
    }


def archive(tmp: Path, descriptor: dict[str, Any], *, fmt: str = "tar.gz") -> Path:
    kind = "nsd" if "nsd" in descriptor else "vnfd"
    body = descriptor[kind]
    ident = body["nsd"][0]["id"] if kind == "nsd" else body["id"]
    files = {
        f"{ident}.yaml": yaml.safe_dump(descriptor).encode(),
        "README.md": b"test package\n",
    }
    if fmt == "zip":
        return _zip(tmp / f"{ident}.zip", ident, files)
    return _tar(tmp / f"{ident}.tar.gz", ident, files)
