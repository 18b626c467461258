"""An OAuth2 issuer for tests: RSA keys made here, a JWKS served on 127.0.0.1, token minting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar, Response, get
from support.serving import served_in_thread

ISSUER = "https://issuer.test/realms/o2"
AUDIENCE = "netweave"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issuer:
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=lambda: {"k1": new_key()})
    jwks_requests: int = 0
    available: bool = True

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
            out.append(jwk)
        return {"keys": out}

    def token(
        self,
        *,
        scope: str | None = "o2dms:read o2dms:write",
        kid: str = "k1",
        key: rsa.RSAPrivateKey | None = None,
        expires_in: float = 300,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "smo-1",
            "iat": now,
            "exp": now + int(expires_in),
        }
        if scope is not None:
            payload["scope"] = scope
        payload.update(claims)
        signer = key if key is not None else self.keys[kid]
        return jwt.encode(payload, signer, algorithm="RS256", headers={"kid": kid})

    def app(self) -> Litestar:
        issuer = self

        @get("/jwks")
        async def jwks() -> Response[Any]:
            issuer.jwks_requests += 1
            if not issuer.available:
                return Response({"error": "down"}, status_code=503)
            return Response(issuer.jwks())

        return Litestar([jwks], logging_config=None)


@asynccontextmanager
async def issuer_server(issuer: Issuer) -> AsyncIterator[str]:
    """Serve the issuer's JWKS on 127.0.0.1; yields the JWKS URL."""
    async with served_in_thread(issuer.app()) as base_url:
        yield f"{base_url}/jwks"
