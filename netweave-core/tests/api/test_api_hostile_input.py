"""Hostile and malformed input: always a 4xx problem body, never a 500, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from support.gateway import Gateway
from support.problems import assert_problem

DEPLOYMENTS = "/o2dms/v1/nfDeployments"
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
JSON = {"content-type": "application/json"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"

CASES: list[tuple[str, str, str, dict[str, Any], int]] = [
    (
        "deeply nested JSON",
        "POST",
        DEPLOYMENTS,
        {
            "content": b'{"name":"a","packageId":"app-1.0.0","values":{"x":'
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}}",
            "headers": JSON,
        },
        400,
    ),
    ("invalid UTF-8", "POST", DEPLOYMENTS, {"content": b'{"name":"\xff"}', "headers": JSON}, 400),
    ("empty body", "POST", DEPLOYMENTS, {"content": b"", "headers": JSON}, 400),
    ("JSON null", "POST", DEPLOYMENTS, {"content": b"null", "headers": JSON}, 400),
    ("JSON array", "POST", DEPLOYMENTS, {"json": [1, 2]}, 400),
    ("registration array", "POST", PACKAGES, {"json": [1]}, 400),
    ("registration empty", "POST", PACKAGES, {"content": b"", "headers": JSON}, 400),
    ("no content type", "POST", PACKAGES, {"content": b"x"}, 415),
    ("NUL in an id", "GET", f"{PACKAGES}/%00", {}, 400),
    ("non-ASCII id", "GET", f"{PACKAGES}/%C3%A9", {}, 400),
    ("float limit", "GET", PACKAGES, {"params": {"limit": "1.5"}}, 400),
    ("huge enum value", "GET", "/o2dms/v1/operations", {"params": {"state": "x" * 10_000}}, 400),
    ("huge integer", "POST", f"{DEPLOYMENTS}/{UNKNOWN}/scale", {"json": {"replicas": 10**40}}, 400),
    ("bool for int", "POST", f"{DEPLOYMENTS}/{UNKNOWN}/scale", {"json": {"replicas": True}}, 400),
    (
        "broken IPv6 callback",
        "POST",
        "/o2dms/v1/subscriptions",
        {"json": {"callbackUri": "http://[::1"}},
        400,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_hostile_input_is_a_client_error(
    gw: Gateway, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    headers = {**gw.headers, **kwargs.pop("headers", {})}
    response = await gw.client.request(method, path, headers=headers, **kwargs)
    assert_problem(response, status)
    assert (await gw.store.list_deployments()).total == 0
    assert (await gw.store.list_packages()).total == 0
    assert (await gw.store.list_subscriptions()).total == 0
