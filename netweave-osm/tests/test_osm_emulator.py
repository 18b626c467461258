"""The emulator's own checks must bite: a request the contract or NBI forbids is caught."""

from __future__ import annotations

import uuid

import httpx
import pytest
from osm_emulator import OsmNbiEmulator


@pytest.fixture
async def client(emulator: OsmNbiEmulator) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=emulator.url) as raw:
        token = await raw.post(
            "/osm/admin/v1/tokens",
            json={"username": emulator.username, "password": emulator.password},
            headers={"Accept": "application/json"},
        )
        raw.headers.update(
            {"Authorization": f"Bearer {token.json()['id']}", "Accept": "application/json"}
        )
        yield raw


async def test_contract_and_nbi_schema_violations_are_recorded(
    emulator: OsmNbiEmulator, client: httpx.AsyncClient
) -> None:
    # nsdId must be a uuid (contract) and NBI's ns_instantiate schema forbids unknown fields.
    bad = await client.post(
        "/osm/nslcm/v1/ns_instances_content",
        json={"nsName": "x", "nsdId": "not-a-uuid", "vimAccountId": emulator.vim_id},
    )
    assert bad.status_code == 422
    extra = await client.post(
        "/osm/nslcm/v1/ns_instances_content",
        json={
            "nsName": "x",
            "nsdId": "6f1b1d2c-0000-4000-8000-000000000000",
            "vimAccountId": emulator.vim_id,
            "replicas": 3,
        },
    )
    assert extra.status_code == 422
    assert extra.json()["code"] == "UNPROCESSABLE_ENTITY"
    missing = await client.get("/osm/nslcm/v1/no_such_collection")
    assert missing.status_code == 422
    assert len(emulator.violations) == 3
    assert "not-a-uuid" in emulator.violations[0]
    assert "replicas" in emulator.violations[1] or "Additional" in emulator.violations[1]
    emulator.violations.clear()  # recorded on purpose here; the fixture checks the rest


async def test_requests_need_a_valid_token(emulator: OsmNbiEmulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.url) as raw:
        answer = await raw.get("/osm/admin/v1/vim_accounts", headers={"Accept": "application/json"})
        assert answer.status_code == 401
        assert answer.json() == {
            "code": "UNAUTHORIZED",
            "status": 401,
            "detail": "Needed a token or Authorization http header",
        }
        answer = await raw.get(
            "/osm/admin/v1/vim_accounts",
            headers={"Accept": "application/json", "Authorization": "Bearer forged"},
        )
        assert answer.status_code == 401


async def test_responses_are_validated_too(
    emulator: OsmNbiEmulator, client: httpx.AsyncClient
) -> None:
    # An emulator answer the real NBI could not give (a VIM _id that is no uuid) is caught.
    emulator.vims[emulator.vim_id]["_id"] = "not-a-uuid"
    answer = await client.get(f"/osm/admin/v1/vim_accounts/{emulator.vim_id}")
    assert answer.status_code == 200
    assert len(emulator.violations) == 1
    assert "response GET" in emulator.violations[0] and "not-a-uuid" in emulator.violations[0]
    emulator.violations.clear()


async def test_an_answer_with_an_invented_field_fails_the_test(
    emulator: OsmNbiEmulator, client: httpx.AsyncClient
) -> None:
    # The emulator is strict in both directions: a field NBI never sends (in the published
    # document or in the NBI_OVERRIDES widening it) is a violation, and the fixture's teardown
    # check turns it into a failed test.
    emulator.vims[emulator.vim_id]["invented"] = "x"
    answer = await client.get(f"/osm/admin/v1/vim_accounts/{emulator.vim_id}")
    assert answer.status_code == 200  # the answer still goes out; the test is what fails
    assert len(emulator.violations) == 1
    assert "unknown field(s) ['invented']" in emulator.violations[0]
    with pytest.raises(AssertionError, match="invented"):
        emulator.strict.assert_clean()
    # An exact allow-list entry lets precisely that violation through, nothing similar.
    emulator.strict.allowed.add(emulator.violations[0])
    emulator.strict.assert_clean()
    emulator.strict.allowed.add(emulator.violations[0] + " ")
    emulator.strict.allowed.discard(emulator.violations[0])
    with pytest.raises(AssertionError):
        emulator.strict.assert_clean()
    emulator.violations.clear()


async def test_a_descriptor_with_an_invented_field_fails_too(
    emulator: OsmNbiEmulator, client: httpx.AsyncClient
) -> None:
    # The package records are widened by exactly the SOL006 fields NBI keeps, no more.
    fine = await client.get(f"/osm/admin/v1/vim_accounts/{emulator.vim_id}")
    assert fine.status_code == 200 and emulator.violations == []
    osm_id = str(uuid.uuid4())
    emulator.vnfds[osm_id] = {"_id": osm_id, "id": "v", "provider": "p", "made-up": True}
    listed = await client.get("/osm/vnfpkgm/v1/vnf_packages_content")
    assert listed.status_code == 200
    assert len(emulator.violations) == 1 and "made-up" in emulator.violations[0]
    emulator.violations.clear()
