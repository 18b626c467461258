"""Bearer tokens and scopes on every /o2dms route; open health, metrics and schema."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from netweave.api.auth import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE, token_hash
from netweave.store import ApiTokenRecord
from support.gateway import Gateway, make_settings, running_gateway
from support.problems import assert_problem

PKGS = "/o2dms/v1/nfDeploymentDescriptors"
ROUTES: list[tuple[str, str]] = [
    ("GET", "/o2dms/v1"),
    ("GET", PKGS),
    ("POST", PKGS),
    ("GET", f"{PKGS}/app-1.0.0"),
    ("PATCH", f"{PKGS}/app-1.0.0"),
    ("DELETE", f"{PKGS}/app-1.0.0"),
    ("GET", "/o2dms/v1/nfDeployments"),
    ("POST", "/o2dms/v1/nfDeployments"),
    ("GET", "/o2dms/v1/operations"),
    ("GET", "/o2dms/v1/subscriptions"),
    ("POST", "/o2dms/v1/subscriptions"),
    ("GET", "/o2dms/v1/adapters"),
]


async def add_token(gw: Gateway, token: str, scopes: list[str]) -> None:
    await gw.store.add_api_token(
        ApiTokenRecord(
            token_id=hashlib.sha256(token.encode()).hexdigest()[:16],
            token_hash=token_hash(token),
            scopes=scopes,
            created_at=datetime.now(UTC),
        )
    )


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_a_token(gw: Gateway, method: str, path: str) -> None:
    response = await gw.client.request(method, path, json={"name": "x"})
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert body["error"] == "Unauthorized"
    for header in ("Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "token"):
        response = await gw.client.request(method, path, headers={"Authorization": header})
        assert_problem(response, 401)
    # nothing was done for unauthenticated requests
    assert (await gw.store.list_packages()).total == 0


async def test_open_endpoints(gw: Gateway) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/schema/openapi.json"):
        response = await gw.client.get(path)
        assert response.status_code == 200, (path, response.text)


async def test_scopes(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, operation = await gw.deploy("app-1.0.0")
    await add_token(gw, "reader-token-0123456789", [SCOPE_READ])
    await add_token(gw, "writer-token-0123456789", [SCOPE_WRITE])
    await add_token(gw, "admin-token-01234567890", [SCOPE_ADMIN])
    reader = {"Authorization": "Bearer reader-token-0123456789"}
    writer = {"Authorization": "Bearer writer-token-0123456789"}
    admin = {"Authorization": "Bearer admin-token-01234567890"}

    assert (await gw.client.get(PKGS, headers=reader)).status_code == 200
    body = assert_problem(
        await gw.client.post(PKGS, headers=reader, json={"name": "b", "artifactVersion": "1"}),
        403,
    )
    assert body["details"]["requiredScope"] == SCOPE_WRITE
    assert_problem(await gw.client.delete(f"{PKGS}/app-1.0.0", headers=reader), 403)

    # write implies read; fail/cancel and force delete need admin
    assert (await gw.client.get(PKGS, headers=writer)).status_code == 200
    op_url = f"/o2dms/v1/operations/{operation['operationId']}"
    body = assert_problem(await gw.client.post(f"{op_url}/cancel", headers=writer), 403)
    assert body["details"]["requiredScope"] == SCOPE_ADMIN
    assert_problem(await gw.client.post(f"{op_url}/fail", headers=writer), 403)
    assert_problem(
        await gw.client.delete(f"{PKGS}/app-1.0.0", headers=writer, params={"force": "true"}),
        403,
    )
    # without force the writer gets the in-use conflict, not a scope error
    assert_problem(await gw.client.delete(f"{PKGS}/app-1.0.0", headers=writer), 409)
    # admin passes the scope check (the operation is COMPLETED: a state conflict)
    assert_problem(await gw.client.post(f"{op_url}/cancel", headers=admin), 409)
    response = await gw.client.delete(f"{PKGS}/app-1.0.0", headers=admin, params={"force": "true"})
    assert response.status_code == 204
    assert deployment["deploymentId"]


async def test_generated_token_at_first_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data", token=None)
    async with running_gateway(tmp_path, settings=settings) as gw:
        out = capsys.readouterr().out
        lines = [line for line in out.splitlines() if "NETWEAVE_API_TOKEN=" in line]
        assert len(lines) == 1
        token = lines[0].split("NETWEAVE_API_TOKEN=", 1)[1].strip()
        assert len(token) >= 40
        # stored hashed only
        assert await gw.store.count_api_tokens() == 1
        record = await gw.store.find_api_token(token_hash(token))
        assert record is not None
        assert sorted(record.scopes) == sorted([SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE])
        assert token not in caplog.text  # never logged
        # the static test token is not configured here: only the generated one works
        assert_problem(await gw.get(PKGS), 401)
        response = await gw.client.get(PKGS, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        store_path = tmp_path / "netweave.db"
    assert token.encode() not in store_path.read_bytes()
    # second start: a token exists, nothing new is generated or printed
    async with running_gateway(tmp_path, settings=settings):
        assert "NETWEAVE_API_TOKEN=" not in capsys.readouterr().out


async def test_configured_token_generates_nothing(
    gw: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "NETWEAVE_API_TOKEN=" not in capsys.readouterr().out
    assert await gw.store.count_api_tokens() == 0


def _token_header(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}
