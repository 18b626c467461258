"""The ETSI face's SOL013 conventions through the real app (memory adapter): the Version
header, media types, attribute-based filters, attribute selectors, paging, ETag/If-Match, and
the state conflicts of the VNF instance and its tasks. Every response of ``/vnflcm/v2`` is
validated against the SOL003 V3.7.1 contract (its two known defects corrected, see
``netweave.testing.etsi``)."""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from netweave.api.etsi import sol013, vnflcm
from netweave.errors import InvalidInput
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import sol003_vnflcm_contract
from support.gateway import Gateway

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
V2 = "/vnflcm/v2"
HEADERS = {"Version": "2.3.0", "Accept": "application/json"}


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol003_vnflcm_contract(SHARED)


async def call(
    gw: Gateway,
    contract: ContractValidator,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {**HEADERS, **headers}
    response = await gw.request(method, V2 + path, json=body, headers=sent, params=params)
    answer = response.json() if response.content else None
    contract.validate_response(
        method, path.split("?")[0], response.status_code, answer, headers=dict(response.headers)
    )
    return response


async def instances(gw: Gateway, contract: ContractValidator, count: int) -> list[str]:
    await gw.register_package("app", "1.0.0")
    ids = []
    for i in range(count):
        body = {"vnfdId": "app-1.0.0", "vnfInstanceName": f"vnf-{i:03d}", "metadata": {"n": i}}
        response = await call(gw, contract, "POST", "/vnf_instances", body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_version_header_and_media_types(gw: Gateway, contract: ContractValidator) -> None:
    await instances(gw, contract, 1)
    missing = await gw.request("GET", V2 + "/vnf_instances")
    assert missing.status_code == 400
    assert missing.json()["details"]["header"] == "Version"
    malformed = await gw.request("GET", V2 + "/vnf_instances", headers={"Version": "two"})
    assert malformed.status_code == 400
    other_major = await call(gw, contract, "GET", "/vnf_instances", Version="1.3.0")
    assert other_major.status_code == 406
    assert other_major.json()["status"] == 406 and other_major.json()["detail"]
    xml = await call(gw, contract, "GET", "/vnf_instances", Accept="application/xml")
    assert xml.status_code == 406
    form = await gw.request(
        "POST",
        V2 + "/vnf_instances",
        content=b"vnfdId=app-1.0.0",
        headers={**HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    # api_versions is how a client learns the version: it needs none.
    versions = await gw.request("GET", "/vnflcm/api_versions")
    assert versions.status_code == 200
    assert versions.json()["apiVersions"] == [{"version": vnflcm.API_VERSIONS[2]}]
    assert versions.json()["uriPrefix"].endswith("/vnflcm/v2")


async def test_create_rules_and_delete(gw: Gateway, contract: ContractValidator) -> None:
    unknown = await call(gw, contract, "POST", "/vnf_instances", {"vnfdId": "nope-1.0"})
    assert unknown.status_code == 422, unknown.text
    (instance_id,) = await instances(gw, contract, 1)
    got = await call(gw, contract, "GET", f"/vnf_instances/{instance_id}")
    assert got.json()["instantiationState"] == "NOT_INSTANTIATED"
    # Not instantiated: the tasks that need an instance are 409.
    for task, body in (
        ("terminate", {"terminationType": "FORCEFUL"}),
        ("scale", {"type": "SCALE_OUT", "aspectId": "default"}),
        ("heal", {}),
        ("change_vnfpkg", {"vnfdId": "app-1.0.0"}),
    ):
        response = await call(gw, contract, "POST", f"/vnf_instances/{instance_id}/{task}", body)
        assert response.status_code == 409, (task, response.text)
    unsupported = await call(gw, contract, "POST", f"/vnf_instances/{instance_id}/change_flavour")
    assert unsupported.status_code == 404 and "not supported" in unsupported.json()["detail"]
    deleted = await call(gw, contract, "DELETE", f"/vnf_instances/{instance_id}")
    assert deleted.status_code == 204
    gone = await call(gw, contract, "GET", f"/vnf_instances/{instance_id}")
    assert gone.status_code == 404


async def test_filters(gw: Gateway, contract: ContractValidator) -> None:
    ids = await instances(gw, contract, 5)

    async def names(expression: str) -> list[str]:
        response = await call(gw, contract, "GET", "/vnf_instances", params={"filter": expression})
        assert response.status_code == 200, response.text
        return [item.get("vnfInstanceName") for item in response.json()]

    assert await names("(eq,vnfInstanceName,vnf-002)") == ["vnf-002"]
    assert await names("(neq,vnfInstanceName,vnf-002)") == [
        "vnf-000",
        "vnf-001",
        "vnf-003",
        "vnf-004",
    ]
    assert await names("(gt,metadata/n,2)") == ["vnf-003", "vnf-004"]
    assert await names("(gte,metadata/n,3)") == ["vnf-003", "vnf-004"]
    assert await names("(lt,metadata/n,1)") == ["vnf-000"]
    assert await names("(lte,metadata/n,1)") == ["vnf-000", "vnf-001"]
    assert await names("(cont,vnfInstanceName,03,04)") == ["vnf-003", "vnf-004"]
    assert await names("(ncont,vnfInstanceName,0)") == []
    assert await names(f"(in,id,{ids[0]},{ids[4]})") == ["vnf-000", "vnf-004"]
    # ; is AND; nested attributes under a default-excluded one still filter
    assert await names("(eq,instantiationState,NOT_INSTANTIATED);(gt,metadata/n,3)") == ["vnf-004"]
    assert await names("(eq,_links/self/href,nothing)") == []
    # quoted values may hold , and ) and ''
    assert await names("(eq,vnfInstanceName,'a,b)''c')") == []
    for bad in ("(eq,WrongAttrName,1)", "(eq,vnfInstanceName)", "(like,id,1)", "eq,id,1",
                "(eq,id,'open)"):  # fmt: skip
        response = await call(gw, contract, "GET", "/vnf_instances", params={"filter": bad})
        assert response.status_code == 400, bad
        assert response.json()["details"]["field"] == "filter"


async def test_selectors(gw: Gateway, contract: ContractValidator) -> None:
    await instances(gw, contract, 1)

    async def keys(**params: str) -> set[str]:
        response = await call(gw, contract, "GET", "/vnf_instances", params=params)
        assert response.status_code == 200, response.text
        return set(response.json()[0])

    default = await keys()
    assert "metadata" not in default and "vnfConfigurableProperties" not in default
    assert {"id", "vnfdId", "instantiationState", "_links"} <= default
    assert await keys(exclude_default="") == default
    assert {"metadata", "extensions", "vimConnectionInfo"} <= await keys(all_fields="")
    assert await keys(fields="metadata") == default | {"metadata"}
    assert await keys(fields="metadata", exclude_default="") == default | {"metadata"}
    # A list reads only the stored attributes it renders: those it does render are whole.
    response = await call(gw, contract, "GET", "/vnf_instances", params={"fields": "metadata"})
    assert response.json()[0]["metadata"] == {"n": 0}
    response = await call(gw, contract, "GET", "/vnf_instances", params={"all_fields": ""})
    assert (response.json()[0]["metadata"], response.json()[0]["extensions"]) == ({"n": 0}, {})
    assert "vnfInstanceName" not in await keys(exclude_fields="vnfInstanceName,metadata")
    for params in (
        {"all_fields": "", "fields": "metadata"},
        {"exclude_fields": "metadata", "exclude_default": ""},
        {"fields": "nope"},
        {"exclude_fields": "id"},  # mandatory
        {"unknown": "1"},
    ):
        response = await call(gw, contract, "GET", "/vnf_instances", params=params)
        assert response.status_code == 400, params


async def test_paging_with_marker_and_link(
    gw: Gateway, contract: ContractValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vnflcm, "PAGE_SIZE", 2)
    ids = await instances(gw, contract, 5)
    seen: list[str] = []
    path = "/vnf_instances?filter=(neq,vnfInstanceName,vnf-001)"
    for _ in range(5):  # bounded
        response = await call(gw, contract, "GET", path)
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()]
        link = response.headers.get("link")
        if link is None:
            break
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert match is not None, link
        assert "nextpage_opaque_marker=" in match.group(1) and "filter=" in match.group(1)
        path = match.group(1).split(V2, 1)[1]
    assert seen == [ids[0], ids[2], ids[3], ids[4]]
    bad = await call(gw, contract, "GET", "/vnf_instances?nextpage_opaque_marker=%%%")
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "key",
    ["c50dd431-8240-4b8c-aa23-00c827d9b6e7", "", 'a"b', "a\\b", "tab\tnew\nline", "\x7f",
     "é", "€😀", " !#[]~"],
)  # fmt: skip
def test_markers_are_the_urlsafe_base64_of_the_json_pair(key: str) -> None:
    """A marker stays what gateways issued before (restarted or older replicas' markers are
    read alike): ``json.dumps([time, key])`` in urlsafe base64, unpadded; read back as given."""
    times = (datetime(2026, 12, 7, 12, 4, 23, 247498, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    for stamp in times:
        marker = sol013.encode_marker(stamp, key)
        raw = json.dumps([stamp.isoformat(), key]).encode()
        assert marker == base64.urlsafe_b64encode(raw).decode().rstrip("=")
        assert sol013.decode_marker(marker) == (stamp, key)


@pytest.mark.parametrize(
    "raw",
    [
        b'["x", "y"]',
        b'"ab"',
        b"[1, 2]",
        b"\xff\xfe",
        b'["2026-01-01T00:00:00", "a", "b"]',
        b'["2026-01-01T00:00:00", "a"]',
    ],
)
def test_markers_not_issued_here_are_refused(raw: bytes) -> None:
    for marker in (base64.urlsafe_b64encode(raw).decode(), "%%%", "é", "!!"):
        with pytest.raises(InvalidInput, match="nextpage_opaque_marker"):
            sol013.decode_marker(marker)


def test_next_link_encodes_the_query_and_appends_the_marker() -> None:
    marker = sol013.encode_marker(datetime(2026, 1, 2, tzinfo=UTC), "k")
    query = {"filter": "(eq,vnfInstanceName,a b&c=é)", "fields": None,
             "nextpage_opaque_marker": "old"}  # fmt: skip
    expected = urlencode(
        [("filter", "(eq,vnfInstanceName,a b&c=é)"), ("fields", ""),
         ("nextpage_opaque_marker", marker)]
    )  # fmt: skip
    for _ in range(2):  # the second from the kept query head
        link = sol013.next_link("http://h/vnflcm/v2/vnf_instances", query, marker)
        assert link == f'<http://h/vnflcm/v2/vnf_instances?{expected}>; rel="next"'
    alone = sol013.next_link("http://h/x", {"nextpage_opaque_marker": "old"}, marker)
    assert alone == f'<http://h/x?nextpage_opaque_marker={marker}>; rel="next"'


async def test_modify_info_with_etag(gw: Gateway, contract: ContractValidator) -> None:
    (instance_id,) = await instances(gw, contract, 1)
    got = await call(gw, contract, "GET", f"/vnf_instances/{instance_id}")
    etag = got.headers["etag"]
    stale = await call(
        gw,
        contract,
        "PATCH",
        f"/vnf_instances/{instance_id}",
        {"vnfInstanceName": "renamed"},
        **{"If-Match": '"999"'},
    )
    assert stale.status_code == 412, stale.text
    changed = await call(
        gw,
        contract,
        "PATCH",
        f"/vnf_instances/{instance_id}",
        {"vnfInstanceName": "renamed", "metadata": {"n": None, "k": "v"}},
        **{"If-Match": etag},
    )
    assert changed.status_code == 202, changed.text
    occurrence = await call(gw, contract, "GET", changed.headers["location"].split(V2, 1)[1])
    body = occurrence.json()
    assert (body["operation"], body["operationState"]) == ("MODIFY_INFO", "COMPLETED")
    got = await call(gw, contract, "GET", f"/vnf_instances/{instance_id}?all_fields")
    assert got.json()["vnfInstanceName"] == "renamed"
    assert got.json()["metadata"] == {"k": "v"}  # JSON merge patch: null removed n
    assert got.headers["etag"] != etag
    again = await call(
        gw,
        contract,
        "PATCH",
        f"/vnf_instances/{instance_id}",
        {"vnfInstanceName": "x"},
        **{"If-Match": etag},
    )
    assert again.status_code == 412


@pytest.mark.parametrize("stamp", ["2026-01-01T00:00:00", "2026-01-01T00:00:00+02:00"])
@pytest.mark.parametrize("path", ["/vnf_instances", "/vnf_instances?filter=(eq,vnfdId,app-1.0.0)",
                                  "/vnf_lcm_op_occs"])  # fmt: skip
async def test_a_crafted_marker_is_a_client_error_or_a_page_never_a_500(
    gw: Gateway, contract: ContractValidator, stamp: str, path: str
) -> None:
    """A marker is opaque, but a client can write one: a time without a zone is refused with
    400 (the gateway issues UTC times only), another zone is the same instant in UTC."""
    await instances(gw, contract, 2)
    raw = json.dumps([stamp, "x"]).encode()
    marker = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    joiner = "&" if "?" in path else "?"
    response = await call(gw, contract, "GET", f"{path}{joiner}nextpage_opaque_marker={marker}")
    if "+" in stamp:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400, response.text
        assert "nextpage_opaque_marker" in response.json()["detail"]
