"""The emulator's own checks must bite: a request the contract or NBI forbids is caught."""

from __future__ import annotations

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
