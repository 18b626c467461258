"""R6: every ``/o2dms`` route of the running app refuses missing, forged, expired and
under-scoped tokens — and nothing secret reaches a log line or the console."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from netweave.api.auth import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE, required_scope
from netweave.config import JwtSettings
from security_support import AUDIENCE, ISSUER, Issuer, issuer_server, new_key
from support.gateway import TOKEN, make_settings, running_gateway

#: A token that holds every scope except the one a route needs.
_SCOPES_WITHOUT = {
    SCOPE_READ: "openid profile",
    SCOPE_WRITE: SCOPE_READ,
    SCOPE_ADMIN: f"{SCOPE_READ} {SCOPE_WRITE}",
}
_PARAM = re.compile(r"\{[^}]+\}")


def o2dms_routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, concrete path, required scope) for every /o2dms route of the app."""
    found: list[tuple[str, str, str]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/o2dms"):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method in {"OPTIONS", "HEAD"}:
                    continue
                path = _PARAM.sub(lambda _: str(uuid.uuid4()), route.path)
                found.append((str(method), path, required_scope(str(method), handler)))
    return found


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_every_o2dms_route_refuses_bad_tokens(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    issuer = Issuer()
    async with issuer_server(issuer) as jwks_url:
        settings = make_settings(tmp_path / "data")
        settings.api.jwt = JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_url)
        async with running_gateway(tmp_path, settings=settings) as gw:
            # Collect every record from here on (the app's own logging setup is done by now).
            collect = _Collect()
            root = logging.getLogger()
            previous_level = root.level
            root.addHandler(collect)
            root.setLevel(logging.DEBUG)
            try:
                routes = o2dms_routes(gw.app)
                forged = issuer.token(key=new_key())
                expired = issuer.token(expires_in=-120)
                used = [forged, expired]
                for method, path, scope in routes:
                    no_token = await gw.client.request(method, path)
                    assert no_token.status_code == 401, (method, path, no_token.text)
                    assert no_token.headers["content-type"].startswith("application/problem+json")
                    assert no_token.headers["www-authenticate"].startswith("Bearer")
                    for bad in (forged, expired, "not-a-known-token-" + "y" * 20):
                        response = await gw.client.request(
                            method, path, headers={"Authorization": f"Bearer {bad}"}
                        )
                        assert response.status_code == 401, (method, path, response.text)
                        assert bad not in response.text
                    weak = issuer.token(scope=_SCOPES_WITHOUT[scope])
                    used.append(weak)
                    response = await gw.client.request(
                        method, path, headers={"Authorization": f"Bearer {weak}"}
                    )
                    assert response.status_code == 403, (method, path, scope, response.text)
                    assert response.json()["details"]["requiredScope"] == scope
                # The positive path: a valid token with the scope is let through.
                good = issuer.token(scope="o2dms:read")
                used.append(good)
                listed = await gw.client.get(
                    "/o2dms/v1/nfDeploymentDescriptors",
                    headers={"Authorization": f"Bearer {good}"},
                )
                assert listed.status_code == 200, listed.text
                # Static tokens stay valid next to JWTs (the embedded default).
                static = await gw.get("/o2dms/v1/nfDeploymentDescriptors")
                assert static.status_code == 200
            finally:
                root.removeHandler(collect)
                root.setLevel(previous_level)
    out, err = capfd.readouterr()
    text = "\n".join(collect.lines) + out + err
    # The capture really saw the gateway's work (its JWKS fetch), so its silence means something.
    assert "jwks" in text.lower()
    assert len(routes) >= 20, routes
    for secret in [*used, TOKEN]:
        assert secret not in text
        assert secret.split(".")[-1] not in text  # not even a JWT's signature part
