"""The registry token flow (Docker Hub, Harbor, GHCR style) of RegistryAuth, against an
in-process transport that follows the distribution spec's token authentication."""

from __future__ import annotations

import base64

import httpx
from netweave_helm.storage.remote import RegistryAuth

REALM = "http://auth.invalid/token"


def _registry(seen: list[str]) -> httpx.MockTransport:
    basic = "Basic " + base64.b64encode(b"robot:pw").decode()

    def handle(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization", "")
        seen.append(f"{request.url.host}{request.url.path} {auth.split(' ')[0]}")
        if request.url.host == "auth.invalid":
            if auth != basic:
                return httpx.Response(401)
            assert request.url.params["scope"] == "repository:charts/app:pull"
            assert request.url.params["service"] == "registry.invalid"
            return httpx.Response(200, json={"token": "t0k3n"})
        if auth == "Bearer t0k3n":
            return httpx.Response(200, json={"tags": ["1.0.0"]})
        return httpx.Response(
            401,
            headers={
                "WWW-Authenticate": f'Bearer realm="{REALM}",service="registry.invalid",'
                'scope="repository:charts/app:pull"'
            },
        )

    return httpx.MockTransport(handle)


async def test_bearer_challenge_is_answered_with_a_token_from_the_realm() -> None:
    seen: list[str] = []
    async with httpx.AsyncClient(
        transport=_registry(seen), auth=RegistryAuth("robot", "pw", None)
    ) as client:
        response = await client.get("http://registry.invalid/v2/charts/app/tags/list")
        assert response.status_code == 200
        assert response.json() == {"tags": ["1.0.0"]}
        # The token is reused: the next request goes straight through.
        again = await client.get("http://registry.invalid/v2/charts/app/tags/list")
        assert again.status_code == 200
    assert seen == [
        "registry.invalid/v2/charts/app/tags/list Basic",
        "auth.invalid/token Basic",
        "registry.invalid/v2/charts/app/tags/list Bearer",
        "registry.invalid/v2/charts/app/tags/list Bearer",
    ]


async def test_wrong_credentials_leave_the_401() -> None:
    seen: list[str] = []
    async with httpx.AsyncClient(
        transport=_registry(seen), auth=RegistryAuth("robot", "nope", None)
    ) as client:
        response = await client.get("http://registry.invalid/v2/charts/app/tags/list")
    assert response.status_code == 401


async def test_static_token_is_sent_as_bearer() -> None:
    seen: list[str] = []
    async with httpx.AsyncClient(
        transport=_registry(seen), auth=RegistryAuth(None, None, "t0k3n")
    ) as client:
        response = await client.get("http://registry.invalid/v2/charts/app/tags/list")
    assert response.status_code == 200
    assert seen == ["registry.invalid/v2/charts/app/tags/list Bearer"]
