"""``/vnflcm/v1`` (SOL003 V2.6.1, API version 1.3.0) through the real app (memory adapter), every
request validated against the SOL003 V2.4.1 paths and request bodies and every response body
against the NFV-TST 010 v2.6.1 JSON Schemas, strictly (an attribute the standard does not
define fails; ``netweave.testing.etsi.sol003_v1_contract`` says where the two sources differ).

The lifecycle, the failure path (FAILED_TEMP → rollback / retry / fail), the SOL013 list
parameters and the error answers of v1 each pass through the validator, and the test checks
what the adapter really holds after each step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from netweave.errors import BackendError
from netweave.testing.contracts import ContractValidator, ContractViolation
from netweave.testing.etsi import StandardSmo, sol003_v1_contract, validate_v1_request
from support.gateway import Gateway

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
V1 = "/vnflcm/v1"


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol003_v1_contract(SHARED)


def v1_smo(gw: Gateway, contract: ContractValidator) -> StandardSmo:
    return StandardSmo(gw, contract, major=1)


async def test_v1_lifecycle_validates_against_tst010(
    gw: Gateway, contract: ContractValidator
) -> None:
    smo = v1_smo(gw, contract)
    await gw.register_package("app", "1.0.0")
    versions = await smo.call("GET", "/api_versions")
    assert versions.json()["apiVersions"] == [{"version": "1.3.0"}]

    created = await smo.call(
        "POST", "/vnf_instances",
        {"vnfdId": "app-1.0.0", "vnfInstanceName": "v1-app", "vnfInstanceDescription": "d"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    instance = created.json()
    vnf = instance["id"]
    assert created.headers["location"].endswith(f"{V1}/vnf_instances/{vnf}")
    # v1's VnfInstance (V2.6.1): vimConnectionInfo an array, no vnfPkgId (V2.6.1 removed it).
    assert instance["vimConnectionInfo"] == [] and "vnfPkgId" not in instance
    assert gw.memory.releases == {}

    op = await smo.task(
        f"/vnf_instances/{vnf}/instantiate",
        {
            "flavourId": "default",
            "vimConnectionInfo": [{"id": "vim-1", "vimType": "kubernetes"}],
            "additionalParams": {"namespace": "ns1", "values": {"replicaCount": 1}},
        },
    )
    done = await smo.poll(op)
    assert (done["operation"], done["operationState"]) == ("INSTANTIATE", "COMPLETED"), done
    (release,) = gw.memory.releases.values()
    instance = (await smo.call("GET", f"/vnf_instances/{vnf}")).json()
    assert instance["instantiationState"] == "INSTANTIATED"
    assert instance["instantiatedVnfInfo"]["scaleStatus"] == [
        {"aspectId": "default", "scaleLevel": 0}
    ]

    op = await smo.task(
        f"/vnf_instances/{vnf}/scale",
        {"type": "SCALE_OUT", "aspectId": "default", "numberOfSteps": 2},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert release.values["replicaCount"] == 3
    op = await smo.task(
        f"/vnf_instances/{vnf}/scale_to_level",
        {"scaleInfo": [{"aspectId": "default", "scaleLevel": 1}]},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert release.values["replicaCount"] == 2
    op = await smo.task(f"/vnf_instances/{vnf}/heal", {"cause": "lost"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"

    patched = await smo.call(
        "PATCH", f"/vnf_instances/{vnf}", {"vnfInstanceName": "renamed", "metadata": {"k": "v"}}
    )
    assert patched.status_code == 202, patched.text
    modify = (await smo.call("GET", patched.headers["location"].split(V1, 1)[1])).json()
    assert (modify["operation"], modify["operationState"]) == ("MODIFY_INFO", "COMPLETED")

    # Lists with SOL013 parameters, each answer validated (the default exclusions apply).
    listed = await smo.call("GET", f"/vnf_lcm_op_occs?filter=(eq,vnfInstanceId,{vnf})")
    assert [o["operation"] for o in listed.json()] == [
        "INSTANTIATE", "SCALE", "SCALE_TO_LEVEL", "HEAL", "MODIFY_INFO"
    ]  # fmt: skip
    everything = await smo.call("GET", "/vnf_lcm_op_occs?all_fields")
    assert all("operationParams" in o for o in everything.json())
    one = await smo.call("GET", "/vnf_instances?all_fields&filter=(eq,vnfInstanceName,renamed)")
    assert [i["id"] for i in one.json()] == [vnf]
    assert one.json()[0]["metadata"] == {"k": "v"}

    # Not supported (404 as SOL003 asks), conflicts (409), bad requests (400), unknown (404).
    for task in ("change_flavour", "operate", "change_ext_conn"):
        refused = await smo.call("POST", f"/vnf_instances/{vnf}/{task}")
        assert refused.status_code == 404, refused.text
    again = await smo.call("POST", f"/vnf_instances/{vnf}/instantiate", {"flavourId": "default"})
    assert again.status_code == 409
    assert (await smo.call("DELETE", f"/vnf_instances/{vnf}")).status_code == 409
    bad = await smo.call(
        "POST", f"/vnf_instances/{vnf}/scale", {"type": "SCALE_IN", "aspectId": "x"}
    )
    assert bad.status_code == 400
    assert (await smo.call("GET", "/vnf_instances/nope")).status_code == 404
    assert (await smo.call("GET", "/vnf_lcm_op_occs/nope")).status_code == 404
    unknown_pkg = await smo.call("POST", "/vnf_instances", {"vnfdId": "nope-9"})
    assert unknown_pkg.status_code == 422
    assert (await smo.call("GET", "/vnf_instances", Version="2.3.0")).status_code == 406
    assert release.values["replicaCount"] == 2  # none of the refusals changed the release

    op = await smo.task(f"/vnf_instances/{vnf}/terminate", {"terminationType": "FORCEFUL"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert gw.memory.releases == {}
    assert (await smo.call("DELETE", f"/vnf_instances/{vnf}")).status_code == 204
    assert (await smo.call("GET", f"/vnf_instances/{vnf}")).status_code == 404


async def test_v1_failure_path_validates_against_tst010(
    gw: Gateway, contract: ContractValidator
) -> None:
    smo = v1_smo(gw, contract)
    await gw.register_package("app", "1.0.0")
    vnf = (await smo.call("POST", "/vnf_instances", {"vnfdId": "app-1.0.0"})).json()["id"]
    op = await smo.task(f"/vnf_instances/{vnf}/instantiate", {"flavourId": "default"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    (release,) = gw.memory.releases.values()

    # A backend refusal: FAILED_TEMP, its error a TST 010 ProblemDetails; rollback.
    gw.memory.fail("update_deployment", BackendError("the backend refused the change"))
    op = await smo.task(f"/vnf_instances/{vnf}/scale", {"type": "SCALE_OUT", "aspectId": "default"})
    failed = await smo.poll(op)
    assert failed["operationState"] == "FAILED_TEMP", failed
    assert {"retry", "rollback", "fail"} <= set(failed["_links"])
    detail = (await smo.call("GET", f"{op}?all_fields")).json()
    assert "refused" in detail["error"]["detail"]
    assert (await smo.call("POST", f"/vnf_instances/{vnf}/heal", {})).status_code == 409
    # Modify-info too (SOL003 5.4.3.3.4): the FAILED_TEMP occurrence still holds the instance.
    renamed = await smo.call("PATCH", f"/vnf_instances/{vnf}", {"vnfInstanceName": "other"})
    assert renamed.status_code == 409, renamed.text
    rolled_back = await smo.call("POST", f"{op}/rollback")
    assert rolled_back.status_code == 202
    assert rolled_back.headers["location"].endswith(op)  # the occurrence that runs again
    rolled = await smo.poll(op, frozenset({"ROLLED_BACK", "FAILED_TEMP"}))
    assert rolled["operationState"] == "ROLLED_BACK", rolled
    assert release.values.get("replicaCount", 1) == 1

    # Again: retry (succeeds now: the release scales), then a third that is given up (fail).
    gw.memory.fail("update_deployment", BackendError("the backend refused the change"))
    op = await smo.task(f"/vnf_instances/{vnf}/scale", {"type": "SCALE_OUT", "aspectId": "default"})
    assert (await smo.poll(op))["operationState"] == "FAILED_TEMP"
    retried = await smo.call("POST", f"{op}/retry")
    assert retried.status_code == 202 and retried.headers["location"].endswith(op)
    assert (await smo.poll(op, frozenset({"COMPLETED", "FAILED_TEMP"})))["operationState"] == (
        "COMPLETED"
    )
    assert release.values["replicaCount"] == 2
    gw.memory.fail("update_deployment", BackendError("the backend refused the change"))
    op = await smo.task(f"/vnf_instances/{vnf}/scale", {"type": "SCALE_IN", "aspectId": "default"})
    assert (await smo.poll(op))["operationState"] == "FAILED_TEMP"
    failed_final = await smo.call("POST", f"{op}/fail")
    assert failed_final.status_code == 200 and failed_final.json()["operationState"] == "FAILED"
    assert (await smo.call("POST", f"{op}/retry")).status_code == 409
    assert release.values["replicaCount"] == 2


async def test_the_v1_contract_catches_what_v2_6_1_does_not_define(
    contract: ContractValidator,
) -> None:
    """The validator is not a rubber stamp: a v2-only or removed attribute fails."""
    base = {
        "id": "i", "vnfdId": "d", "vnfProvider": "p", "vnfProductName": "n",
        "vnfSoftwareVersion": "1", "vnfdVersion": "1", "instantiationState": "NOT_INSTANTIATED",
        "_links": {"self": {"href": "http://h/vnflcm/v1/vnf_instances/i"}},
    }  # fmt: skip
    contract.validate_response("GET", "/vnf_instances/i", 200, base)
    for extra in ({"vnfPkgId": "d"}, {"vimConnectionInfo": {}}, {"versionDependency": []}):
        with pytest.raises(ContractViolation):
            contract.validate_response("GET", "/vnf_instances/i", 200, {**base, **extra})
    with pytest.raises(ContractViolation):
        validate_v1_request(contract, "POST", "/vnf_instances/i/instantiate", {"flavour": "x"})
