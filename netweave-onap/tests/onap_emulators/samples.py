"""Sample data and paths shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_dir() -> Path:
    """``NETWEAVE_SHARED_DIR``, or ``<repo root>/../shared``."""
    return Path(os.environ.get("NETWEAVE_SHARED_DIR", str(REPO_ROOT.parent / "shared")))


#: The SDC model ids of a CNF service (from the SO swagger's "cnf" example), as an SO-mode
#: package registration's ``source``.
MODEL: dict[str, Any] = {
    "service": {
        "modelInvariantId": "0b1f4362-fed9-45fc-a2e1-6fd3e52f4c1a",
        "modelVersionId": "beb1259e-dad8-4ee0-a40e-1af20f775d54",
        "modelName": "cu_service",
        "modelVersion": "2.0",
    },
    "vnfs": [
        {
            "modelInfo": {
                "modelInvariantId": "f6c202d8-94bd-496e-878e-448da0ed0a6a",
                "modelVersionId": "40f11fb2-931d-408d-a949-99e9289d3c02",
                "modelName": "cu_sim",
                "modelVersion": "1.0",
                "modelCustomizationId": "5a2eec30-80c5-47cc-9117-3d8659c38202",
                "modelInstanceName": "cu_sim 0",
            },
            "vfModules": [
                {
                    "modelInfo": {
                        "modelInvariantId": "63af164d-9276-4e08-98fb-059d1c5b80e4",
                        "modelVersionId": "9b7723ff-25ac-44af-a7ac-9cfbf2d4285f",
                        "modelName": "CuSim..helm_cucp..module-1",
                        "modelVersion": "1",
                        "modelCustomizationId": "b7a0bd1d-4832-4ad3-9199-6e1eab543a45",
                    }
                }
            ],
        }
    ],
}
