"""JWT verification against a JWKS served on 127.0.0.1 (keys generated in the test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from netweave.api.auth import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from netweave.api.jwt import JwtAuthenticator
from netweave.config import JwtSettings
from netweave.errors import BackendUnavailable, Unauthorized
from security_support import AUDIENCE, ISSUER, Issuer, issuer_server, new_key


def settings(jwks_url: str, **changes: object) -> JwtSettings:
    data: dict[str, object] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": jwks_url,
        "leeway": 5,
        "jwks_min_refresh_seconds": 60,
    }
    data.update(changes)
    return JwtSettings.model_validate(data)


async def test_valid_token_maps_scopes() -> None:
    issuer = Issuer()
    async with issuer_server(issuer) as url:
        auth = JwtAuthenticator(settings(url))
        try:
            reader = await auth.authenticate(issuer.token(scope="openid o2dms:read"))
            admin = await auth.authenticate(issuer.token(scope=None, scp=["o2dms:admin"]))
            nothing = await auth.authenticate(issuer.token(scope="openid profile"))
        finally:
            await auth.close()
    assert reader is not None and reader.scopes == {SCOPE_READ}
    assert reader.subject == "jwt:smo-1"
    assert admin is not None and admin.scopes == {SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN}
    assert nothing is not None and nothing.scopes == frozenset()
    assert issuer.jwks_requests == 1  # cached


@pytest.mark.parametrize(
    ("mint", "message"),
    [
        (lambda i: i.token(expires_in=-60), "expired"),
        (lambda i: i.token(key=new_key()), "signature"),
        (lambda i: i.token(aud="someone-else"), "audience"),
        (lambda i: i.token(iss="https://evil.test"), "issuer"),
        (lambda i: i.token(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda i: i.token(kid="unknown-kid"), "signing key"),
    ],
)
async def test_bad_tokens_are_refused(mint: object, message: str) -> None:
    issuer = Issuer()
    issuer.keys["unknown-kid"] = new_key()
    minted = mint(issuer)  # type: ignore[operator]
    del issuer.keys["unknown-kid"]  # the issuer does not publish it
    async with issuer_server(issuer) as url:
        auth = JwtAuthenticator(settings(url))
        try:
            with pytest.raises(Unauthorized, match=message) as caught:
                await auth.authenticate(minted)
        finally:
            await auth.close()
    assert minted not in caught.value.message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_algorithm_confusion_is_refused() -> None:
    issuer = Issuer()
    public_pem = (
        issuer.keys["k1"]
        .public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    claims = _b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": 9_999_999_999}).encode())
    none_header = _b64(b'{"alg":"none","typ":"JWT"}')
    unsigned = f"{none_header}.{claims}."
    # HS256 keyed with the public key (the classic confusion attack); PyJWT will not even
    # create one, so it is signed by hand.
    header = _b64(b'{"alg":"HS256","typ":"JWT","kid":"k1"}')
    mac = hmac.new(public_pem, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    confused = f"{header}.{claims}.{_b64(mac)}"
    async with issuer_server(issuer) as url:
        auth = JwtAuthenticator(settings(url))
        try:
            for token in (unsigned, confused):
                with pytest.raises(Unauthorized, match="algorithm"):
                    await auth.authenticate(token)
        finally:
            await auth.close()


async def test_exp_is_required() -> None:
    issuer = Issuer()
    async with issuer_server(issuer) as url:
        auth = JwtAuthenticator(settings(url))
        try:
            token = jwt.encode(
                {"iss": ISSUER, "aud": AUDIENCE, "sub": "x"},
                issuer.keys["k1"],
                algorithm="RS256",
                headers={"kid": "k1"},
            )
            with pytest.raises(Unauthorized, match="exp"):
                await auth.authenticate(token)
        finally:
            await auth.close()


async def test_key_rotation_refetches_once_and_unknown_kids_are_rate_bounded() -> None:
    issuer = Issuer()
    async with issuer_server(issuer) as url:
        auth = JwtAuthenticator(settings(url, jwks_min_refresh_seconds=0))
        try:
            assert await auth.authenticate(issuer.token()) is not None
            issuer.keys["k2"] = new_key()  # the issuer rotates
            assert await auth.authenticate(issuer.token(kid="k2")) is not None
            assert issuer.jwks_requests == 2
        finally:
            await auth.close()
        bounded = JwtAuthenticator(settings(url, jwks_min_refresh_seconds=60))
        stranger = new_key()
        try:
            assert await bounded.authenticate(issuer.token()) is not None
            for n in range(20):
                forged = issuer.token(kid=f"forged-{n}", key=stranger)
                with pytest.raises(Unauthorized):
                    await bounded.authenticate(forged)
        finally:
            await bounded.close()
    # One fetch for the first token; twenty forged kids within the interval fetch nothing more.
    assert issuer.jwks_requests == 3


async def test_opaque_tokens_are_left_to_other_authenticators() -> None:
    auth = JwtAuthenticator(settings("http://127.0.0.1:9/jwks"))
    try:
        assert await auth.authenticate("static-token-" + "x" * 30) is None
    finally:
        await auth.close()


async def test_unreachable_jwks_is_a_503_not_a_401() -> None:
    issuer = Issuer(available=False)
    async with issuer_server(issuer) as url:
        auth = JwtAuthenticator(settings(url))
        try:
            with pytest.raises(BackendUnavailable):
                await auth.authenticate(issuer.token())
        finally:
            await auth.close()
