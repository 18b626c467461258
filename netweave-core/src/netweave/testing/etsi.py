"""The ETSI SOL003 ``vnflcm`` contract for tests of the standard face, with the published
OpenAPI's known defects corrected (each named here, each contradicting the SOL003 text).

- ``VnfLcmOpOcc`` carries ``oneOf: [required changedInfo, required
  modificationsTriggeredByVnfPkgChange]``, which makes one of them mandatory in *every*
  occurrence. SOL003 V3.7.1 Table 5.5.2.13-1 gives both cardinality 0..1 (``changedInfo``
  present only for a completed MODIFY_INFO, the other only for a completed CHANGE_VNFPKG), and
  SOL013's default exclusions drop ``changedInfo`` from every list item. The override is the
  same schema without that ``oneOf``.
- ``VnfLcmOpOccs.Get.200`` (GET ``/vnf_lcm_op_occs``) is declared as one ``VnfLcmOpOcc``;
  SOL003 clause 5.4.12.3.2 returns an array of them (as ``/vnf_instances`` does).
- ``IndividualVnfInstance.Patch.202`` declares a ``VnfInstance`` body while its own description
  says "The response body shall be empty" (SOL003 clause 5.4.3.3.4: 202 with the op-occ's
  Location): the override declares no body.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from netweave.testing.contracts import ContractValidator

VNFLCM_V2 = Path("contracts/etsi/nfv-sol002-sol003/SOL003/VNFLifecycleManagement")
_DEFS = "definitions/SOL003VNFLifecycleManagement_def.yaml"
_MEDIA = "content/application~1json/schema"


def _relocate(node: Any) -> Any:
    """A schema of the definitions file, its ``$ref``s rewritten to resolve from the main
    document (one directory up)."""
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if value.startswith("#"):
                    value = f"{_DEFS}{value}"
                elif value.startswith("../"):
                    value = value[3:]
            result[key] = _relocate(value)
        return result
    if isinstance(node, list):
        return [_relocate(v) for v in node]
    return node


def sol003_vnflcm_contract(shared: Path, *, strict: bool = False) -> ContractValidator:
    """The SOL003 V3.7.1 vnflcm v2 contract under ``shared`` (the shared directory), corrected
    as the module docstring says."""
    folder = shared / VNFLCM_V2
    definitions = yaml.safe_load((folder / _DEFS).read_text(encoding="utf-8"))
    op_occ = copy.deepcopy(definitions["definitions"]["VnfLcmOpOcc"])
    op_occ.pop("oneOf", None)
    op_occ = _relocate(op_occ)
    responses = "#/components/responses"
    overrides = {
        f"{responses}/IndividualVnfLcmOpOcc.Get.200/{_MEDIA}": op_occ,
        f"{responses}/FailVnfLcmOpOcc.Post.200/{_MEDIA}": op_occ,
        f"{responses}/VnfLcmOpOccs.Get.200/{_MEDIA}": {"type": "array", "items": op_occ},
        f"{responses}/IndividualVnfInstance.Patch.202/content": {},
    }
    return ContractValidator.from_file(
        folder / "VNFLifecycleManagement.yaml", strict=strict, overrides=overrides
    )


__all__ = ["VNFLCM_V2", "sol003_vnflcm_contract"]
