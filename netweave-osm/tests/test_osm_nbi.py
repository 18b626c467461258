"""The NBI client at the edges: JSON only, tokens (expiry, revocation, refusal), error mapping."""

from __future__ import annotations

import asyncio
import socket
from http import HTTPStatus

import httpx
import pytest
from netweave.adapters import (
    DeploymentChange,
    DeploymentSpec,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import (
    BackendError,
    BackendUnavailable,
    InvalidInput,
    NotFound,
)
from netweave.models import DeploymentStatus
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_helpers import make_config


def ctx(n: int) -> OperationContext:
    return OperationContext(operation_id=f"op-{n}", idempotency_key=f"op-{n}:0")


def spec(package: PackageInfo, name: str = "ldap1") -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}", name=name, namespace="ran", package=package, values={}
    )


@pytest.fixture
async def ns_package(
    adapter: OsmAdapter, knf_upload: PackageUpload, ns_upload: PackageUpload
) -> PackageInfo:
    await adapter.upload_package(knf_upload)
    return await adapter.upload_package(ns_upload)


async def test_every_request_asks_for_json(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    info = await adapter.create_deployment(spec(ns_package), ctx(1))
    await adapter.delete_deployment(info.backend_ref, ctx(2))
    assert emulator.log, "the adapter talked to the NBI"
    assert all(accept == "application/json" for _, _, accept, _ in emulator.log)


async def test_without_accept_json_the_nbi_answers_yaml(emulator: OsmNbiEmulator) -> None:
    # The emulator behaves like NBI: YAML by default ...
    async with httpx.AsyncClient(base_url=emulator.url) as client:
        token = await client.post(
            "/osm/admin/v1/tokens",
            json={"username": emulator.username, "password": emulator.password},
            headers={"Accept": "application/json"},
        )
        answer = await client.get(
            "/osm/admin/v1/vim_accounts",
            headers={"Authorization": f"Bearer {token.json()['id']}", "Accept": "*/*"},
        )
    assert answer.headers["content-type"] == "application/yaml"
    # ... so an adapter that forgot the header would fail loudly instead of misreading it.
    adapter = OsmAdapter("osm-noaccept", make_config(emulator))
    await adapter.start()
    try:
        adapter._nbi.http.client.headers.pop("Accept")
        with pytest.raises(BackendError, match="application/yaml instead of JSON"):
            await adapter.list_packages()
    finally:
        await adapter.stop()


async def test_token_is_reused_and_returned_on_stop(emulator: OsmNbiEmulator) -> None:
    adapter = OsmAdapter("osm-t", make_config(emulator))
    await adapter.start()
    await adapter.list_packages()
    await adapter.list_packages()
    assert adapter._nbi.auth.logins == 1
    assert len(emulator.tokens) == 1
    await adapter.stop()
    assert emulator.tokens == {}, "the token was deleted on stop"


async def test_expired_token_mid_run_is_renewed(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    info = await adapter.create_deployment(spec(ns_package), ctx(3))
    logins = adapter._nbi.auth.logins
    emulator.expire_tokens()
    again = await adapter.get_deployment(info.backend_ref)
    assert again.status is DeploymentStatus.DEPLOYED
    assert adapter._nbi.auth.logins == logins + 1
    assert any(status == 401 for _, _, _, status in emulator.log)
    # Revoked (NBI restarted): same story.
    emulator.revoke_tokens()
    await adapter.update_deployment(info.backend_ref, DeploymentChange(values={"a": 1}), ctx(4))
    assert adapter._nbi.auth.logins == logins + 2


async def test_token_expiring_while_an_operation_runs(
    emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.token_ttl = 0.25
    emulator.op_duration = 1.0
    adapter = OsmAdapter("osm-short", make_config(emulator, tokenRenewMargin=0))
    await adapter.start()
    try:
        info = await adapter.create_deployment(spec(ns_package, "short"), ctx(5))
        assert info.status is DeploymentStatus.DEPLOYED
        assert adapter._nbi.auth.logins >= 3, "the token was renewed while polling"
    finally:
        await adapter.stop()


async def test_token_is_renewed_before_it_expires(emulator: OsmNbiEmulator) -> None:
    emulator.token_ttl = 1.0
    adapter = OsmAdapter("osm-renew", make_config(emulator, tokenRenewMargin=0.7))
    await adapter.start()
    try:
        await adapter.list_packages()
        await asyncio.sleep(0.4)
        await adapter.list_packages()
        assert adapter._nbi.auth.logins == 2
        assert not any(status == 401 for _, _, _, status in emulator.log)
    finally:
        await adapter.stop()


async def test_upload_after_revocation_resends_the_archive(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, knf_upload: PackageUpload
) -> None:
    await adapter.list_packages()
    emulator.revoke_tokens()
    info = await adapter.upload_package(knf_upload)
    assert info.name == "ldap-knf"
    statuses = [s for m, p, _, s in emulator.log if p.endswith("/vnf_packages_content")]
    assert statuses[-2:] == [401, 201]


async def test_refused_credentials_are_a_backend_error(emulator: OsmNbiEmulator) -> None:
    adapter = OsmAdapter("osm-bad", make_config(emulator, password="wrong-password"))
    await adapter.start()
    try:
        with pytest.raises(BackendError, match="refused the credentials") as caught:
            await adapter.list_packages()
        assert "wrong-password" not in caught.value.message
        health = await adapter.health()
        assert not health.healthy and health.message and "credentials" in health.message
    finally:
        await adapter.stop()
    other = OsmAdapter("osm-proj", make_config(emulator, project="not-mine"))
    await other.start()
    try:
        with pytest.raises(BackendError, match="project 'not-mine'"):
            await other.list_packages()
    finally:
        await other.stop()
    assert "wrong-password" not in repr(make_config(emulator, password="wrong-password"))


async def test_health(adapter: OsmAdapter, emulator: OsmNbiEmulator) -> None:
    health = await adapter.health()
    assert health.healthy and health.message is None
    assert health.details["vimAccountId"] == emulator.vim_id
    assert health.details["k8sClusters"] == ["edge-k8s"]
    emulator.k8s_clusters.clear()
    health = await adapter.health()
    assert health.healthy and health.message and "no K8s cluster" in health.message
    emulator.vims[emulator.vim_id]["_admin"]["operationalState"] = "ERROR"
    health = await adapter.health()
    assert not health.healthy and health.message == "OSM VIM account is ERROR"


async def test_outage_is_backend_unavailable(adapter: OsmAdapter, emulator: OsmNbiEmulator) -> None:
    await adapter.list_packages()
    with emulator.outage():
        with pytest.raises(BackendUnavailable):
            await adapter.list_packages()
        assert not (await adapter.health()).healthy
    assert await adapter.list_packages() == []


async def test_unreachable_nbi_is_backend_unavailable(emulator: OsmNbiEmulator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = OsmAdapter("osm-gone", make_config(emulator, nbiUrl=f"http://127.0.0.1:{port}"))
    await adapter.start()  # never fails for an unreachable backend
    try:
        with pytest.raises(BackendUnavailable):
            await adapter.list_packages()
    finally:
        await adapter.stop()


async def test_nbi_errors_map_onto_the_taxonomy(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    with pytest.raises(NotFound):
        await adapter.get_deployment("6f1b1d2c-0000-4000-8000-000000000000")
    emulator.force_error("getNsPkgsContent", HTTPStatus.UNPROCESSABLE_ENTITY, "Format error")
    with pytest.raises(InvalidInput, match="Format error"):
        await adapter.list_packages()
    emulator.force_error("getNsPkgsContent", HTTPStatus.BAD_REQUEST, "bad filter")
    with pytest.raises(InvalidInput, match="bad filter"):
        await adapter.list_packages()
    emulator.force_error("getNsPkgsContent", HTTPStatus.INTERNAL_SERVER_ERROR, "db down")
    with pytest.raises(BackendError, match="db down") as caught:
        await adapter.list_packages()
    assert caught.value.unmapped_exception_type is None
    emulator.force_error("getNsPkgsContent", HTTPStatus.FORBIDDEN, "not allowed")
    with pytest.raises(BackendError, match="does not permit"):
        await adapter.list_packages()
    # 503 is retried for idempotent calls: one failure is absorbed.
    emulator.force_error("getNsPkgsContent", HTTPStatus.SERVICE_UNAVAILABLE, "busy")
    assert [p.package_type for p in await adapter.list_packages()] == ["vnfd", "nsd"]


async def test_unknown_vim_account(emulator: OsmNbiEmulator, ns_package: PackageInfo) -> None:
    by_id = OsmAdapter(
        "osm-vim", make_config(emulator, vimAccount="0b5d1a3e-1111-4222-8333-444455556666")
    )
    await by_id.start()
    try:
        with pytest.raises(InvalidInput, match="Invalid vimAccountId"):
            await by_id.create_deployment(spec(ns_package), ctx(6))
    finally:
        await by_id.stop()
    by_name = OsmAdapter("osm-vim2", make_config(emulator, vimAccount="no-such-vim"))
    await by_name.start()
    try:
        with pytest.raises(BackendError, match="VIM accounts named 'no-such-vim'"):
            await by_name.create_deployment(spec(ns_package), ctx(7))
    finally:
        await by_name.stop()


async def test_concurrent_requests_share_one_login(emulator: OsmNbiEmulator) -> None:
    adapter = OsmAdapter("osm-many", make_config(emulator))
    await adapter.start()
    try:
        results = await asyncio.gather(*(adapter.list_packages() for _ in range(10)))
        assert results == [[]] * 10
        assert adapter._nbi.auth.logins == 1
        assert emulator.count("POST", "/admin/v1/tokens") == 1
    finally:
        await adapter.stop()
