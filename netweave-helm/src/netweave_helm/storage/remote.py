"""Shared pieces of the remote stores: HTTP client settings, auth, bounded downloads."""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Generator
from pathlib import Path
from urllib.parse import urlencode

import httpx
from netweave.adapters.http import BackendClient, HttpSettings, TlsSettings, default_error
from netweave.errors import BackendError, InvalidInput

from netweave_helm.config import _Credentials

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryAuth(httpx.Auth):
    """Basic credentials, a static bearer token, or the registry token flow.

    Registries that answer ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``
    (Docker Hub, Harbor, GHCR …) get a token from the realm, with the basic credentials if any;
    registries with plain ``Basic`` auth (``docker-registry`` with htpasswd) get them directly.
    """

    requires_response_body = True

    def __init__(self, username: str | None, password: str | None, token: str | None) -> None:
        self._username = username
        self._password = password
        self._static = token
        self._bearer: str | None = None

    def _basic(self) -> httpx.BasicAuth | None:
        if self._username is None or self._password is None:
            return None
        return httpx.BasicAuth(self._username, self._password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._static or self._bearer
        basic = self._basic()
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        elif basic is not None:
            request = next(basic.auth_flow(request))
        response = yield request
        if response.status_code != 401 or self._static is not None:
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer"):
            return
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            return
        token_request = httpx.Request("GET", f"{realm}?{urlencode(params)}")
        if basic is not None:
            token_request = next(basic.auth_flow(token_request))
        token_response = yield token_request
        if token_response.status_code != 200:
            return
        try:
            body = token_response.json()
        except ValueError:
            return
        fetched = body.get("token") or body.get("access_token")
        if not isinstance(fetched, str):
            return
        self._bearer = fetched
        request.headers["Authorization"] = f"Bearer {fetched}"
        yield request


def make_client(
    base_url: str, backend: str, creds: _Credentials, timeout: float, *, auth: httpx.Auth | None
) -> BackendClient:
    settings = HttpSettings(
        tls=TlsSettings(verify=not creds.insecure_skip_tls_verify, caFile=creds.ca_file),
        requestTimeout=timeout,
        retries=2,
    )
    return BackendClient(base_url, backend=backend, settings=settings, auth=auth)


def basic_or_token(creds: _Credentials) -> httpx.Auth | None:
    if creds.token is not None:
        return RegistryAuth(None, None, creds.token.get_secret_value())
    if creds.username is not None and creds.password is not None:
        return httpx.BasicAuth(creds.username, creds.password.get_secret_value())
    return None


async def download(
    client: BackendClient,
    url: str,
    directory: Path,
    filename: str,
    *,
    max_bytes: int,
    expect_digest: str | None = None,
) -> Path:
    """Stream ``url`` into ``directory/filename`` (bounded), checking the digest if given."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - local, instant
    sha = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as out:
        part = Path(out.name)
        try:
            # Registries and repositories may redirect downloads to their blob storage
            # (httpx drops the credentials on a redirect to another origin).
            async with client.client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise default_error(response, client.backend)
                async for chunk in response.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidInput(f"the archive at {url} is larger than {max_bytes} bytes")
                    sha.update(chunk)
                    out.write(chunk)
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)  # noqa: ASYNC240
            raise BackendError(f"{client.backend}: download failed ({type(exc).__name__})") from exc
        except BaseException:
            part.unlink(missing_ok=True)  # noqa: ASYNC240
            raise
    digest = "sha256:" + sha.hexdigest()
    if expect_digest is not None and digest != expect_digest:
        part.unlink(missing_ok=True)  # noqa: ASYNC240
        raise BackendError(f"{client.backend}: {url} does not match its digest {expect_digest}")
    target = directory / filename
    part.replace(target)  # noqa: ASYNC240
    return target


__all__ = ["RegistryAuth", "basic_or_token", "download", "make_client"]
