"""One policy for every fetch that content a client hands the gateway can cause (an adapter's
package registered by URL, an OCI reference, a chart's dependency repository).

The SSRF rules of :mod:`netweave.notifications.ssrf` apply: a host resolving to a loopback,
private, link-local, unspecified, multicast, reserved or cloud metadata address is refused
unless configuration allows it (``allow_private`` lets loopback and private addresses through,
never link-local, multicast, reserved or metadata ones; ``allowed_cidrs`` — the gateway's
``fetch.allowedCidrs`` — names networks that are allowed whatever they are). A name is resolved
and checked at connect time and the connection goes to the checked address (no rebinding
between check and connect); redirects are followed one hop at a time, each hop checked like
the first URL before it is requested, and credentials (``Authorization``) go only to the
origin they were meant for. Errors name the URL the client gave and the HTTP status, never what
the server answered: an internal server's words must not reach the client.

:class:`Fetcher` is the one HTTP client for such fetches (an adapter's own protocol on top —
an OCI registry's token flow, a chart repository's index — uses its ``open``/``read``/
``to_file``); :func:`fetch_to_file` is the plain download.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from netweave.errors import InvalidInput
from netweave.notifications.ssrf import (
    METADATA_ADDRESSES,
    CallbackPolicy,
    IPAddress,
    guarded_client,
)

if TYPE_CHECKING:
    from netweave.config import FetchSettings

#: Redirect hops followed for one fetch.
MAX_REDIRECTS = 5
#: Request headers that carry credentials: never sent to another origin than the first URL's.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
#: The setting a refusal names as the gateway-wide way to allow a network.
ALLOW_SETTING = "fetch.allowedCidrs"


class FetchPolicy(CallbackPolicy):
    """Which hosts a fetch caused by client content may reach (see the module docstring)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allowed_cidrs: Iterable[str] = (),
        allow_hint: str,
    ) -> None:
        super().__init__(
            allow_private=allow_private, allowed_cidrs=allowed_cidrs, allow_hint=allow_hint
        )

    @classmethod
    def from_settings(
        cls, settings: FetchSettings | None, *, allow_private: bool = False, allow_hint: str = ""
    ) -> FetchPolicy:
        """The policy of the gateway's (or an adapter instance's) ``fetch`` settings;
        ``allow_hint`` names a caller's own switch, after ``fetch.allowedCidrs``."""
        hint = ALLOW_SETTING + (f" (or {allow_hint})" if allow_hint else "")
        cidrs = settings.allowed_cidrs if settings is not None else ()
        return cls(allow_private=allow_private, allowed_cidrs=cidrs, allow_hint=hint)

    def refusal(self, address: IPAddress) -> str | None:
        plain = address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            plain = address.ipv4_mapped
        if any(plain in network for network in self.allowed):
            return None
        reason = super().refusal(address)
        if reason is None and (
            plain.is_link_local
            or plain.is_multicast
            or plain.is_reserved
            or plain in METADATA_ADDRESSES
        ):
            # allow_private covers loopback and private networks only: link-local (cloud
            # metadata lives there), multicast and reserved addresses are never fetched from.
            return "link-local, multicast or reserved"
        return reason

    async def check(self, url: str, *, field: str) -> None:
        """Refuse ``url`` (``Unprocessable``, a 422 naming ``field``) unless its host may be
        fetched from. A :class:`Fetcher` checks every hop itself and pins the address."""
        await self.check_url(_as_http(url), field=field)

    async def addresses(self, url: str, *, field: str) -> list[str]:
        """``url``'s checked addresses (``check`` that also tells where the host is)."""
        await self.check(url, field=field)
        parts = urlsplit(_as_http(url))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return await self.resolve(parts.hostname or "", port, field=field)


def _as_http(url: str) -> str:
    # oci:// references are HTTPS to the registry: the same host rules.
    return "https://" + url.removeprefix("oci://") if url.startswith("oci://") else url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


@dataclass(frozen=True, slots=True)
class Fetched:
    """A bounded answer read whole (``Fetcher.read``)."""

    status: int
    headers: httpx.Headers
    body: bytes


class Fetcher:
    """GETs through a :class:`FetchPolicy` on behalf of what a client sent.

    ``field`` is the request field the fetch comes from (``packageUri`` …) and ``subject`` how
    errors name what the client gave (default: ``field``); every error is an ``InvalidInput``
    (or the policy's 422) naming them, an HTTP status and nothing the server said.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        timeout: float,
        field: str,
        subject: str | None = None,
    ) -> None:
        self.policy = policy
        self.field = field
        self.subject = subject or field
        self._client = guarded_client(policy, timeout=timeout, field=field)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def failed(self, what: str, **details: Any) -> InvalidInput:
        """An error about the fetch: ``subject`` + ``what`` (never the server's words)."""
        return InvalidInput(f"{self.subject} {what}", details={"field": self.field, **details})

    @contextlib.asynccontextmanager
    async def open(
        self, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """The streamed answer to ``GET url`` after redirects, whatever its status. Each hop is
        checked before it is requested (a refused one is sent nothing) and connected to at its
        checked address; credential headers go to ``url``'s origin only."""
        first = _origin(url)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            await self.policy.check(current, field=self.field)
            sent = {
                k: v
                for k, v in (headers or {}).items()
                if _origin(current) == first or k.lower() not in CREDENTIAL_HEADERS
            }
            try:
                response = await self._client.send(
                    self._client.build_request("GET", current, headers=sent), stream=True
                )
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            try:
                if response.is_redirect and "location" in response.headers:
                    current = str(response.url.join(response.headers["location"]))
                    continue
                try:
                    yield response
                except httpx.HTTPError as exc:  # reading the body
                    raise self._transport_error(exc) from None
                return
            finally:
                await response.aclose()
        raise self.failed(f"redirects more than {MAX_REDIRECTS} times")

    def _transport_error(self, exc: httpx.HTTPError) -> InvalidInput:
        # The exception's text may carry what the server sent: only its kind is told.
        return self.failed(f"could not be fetched ({type(exc).__name__})")

    async def read(
        self, url: str, *, limit: int, headers: Mapping[str, str] | None = None
    ) -> Fetched:
        """``GET url`` read whole, at most ``limit`` bytes (else ``InvalidInput``)."""
        async with self.open(url, headers=headers) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes(1 << 16):
                body.extend(chunk)
                if len(body) > limit:
                    raise self.failed(f"is larger than {limit} bytes", limit=limit)
            return Fetched(response.status_code, response.headers, bytes(body))

    async def to_file(
        self,
        url: str,
        target: Path,
        *,
        limit: int,
        digest: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Path:
        """``GET url`` into ``target`` (at most ``limit`` bytes; ``digest`` = ``sha256:<hex>``
        checked when given); anything but a 200 is an error. Nothing is left on failure."""
        async with self.open(url, headers=headers) as response:
            if response.status_code != 200:
                raise self.failed(
                    f"answered HTTP {response.status_code}", status=response.status_code
                )
            sha = hashlib.sha256()
            size = 0
            with tempfile.NamedTemporaryFile(
                dir=target.parent, prefix=".fetch-", suffix=".part", delete=False
            ) as out:
                part = Path(out.name)
                try:
                    async for chunk in response.aiter_bytes(1 << 16):
                        size += len(chunk)
                        if size > limit:
                            raise self.failed(f"is larger than {limit} bytes", limit=limit)
                        sha.update(chunk)
                        out.write(chunk)
                except BaseException:
                    part.unlink(missing_ok=True)  # noqa: ASYNC240 - local, instant
                    raise
        if digest is not None and f"sha256:{sha.hexdigest()}" != digest:
            part.unlink(missing_ok=True)  # noqa: ASYNC240
            raise self.failed(f"does not match its digest {digest}")
        part.replace(target)  # noqa: ASYNC240
        return target


async def fetch_to_file(
    policy: FetchPolicy,
    url: str,
    target: Path,
    *,
    limit: int,
    timeout: float,  # noqa: ASYNC109 - httpx's per-request timeouts, not a deadline
    field: str,
) -> Path:
    """GET ``url`` into ``target`` (at most ``limit`` bytes) through the policy: every hop
    checked before it is requested and connected to at its checked address. Raises
    ``InvalidInput``/``Unprocessable`` naming ``field``, with no word from the server."""
    async with Fetcher(policy, timeout=timeout, field=field, subject=f"{field} {url!r}") as fetch:
        return await fetch.to_file(url, target, limit=limit)


__all__ = [
    "ALLOW_SETTING",
    "MAX_REDIRECTS",
    "FetchPolicy",
    "Fetched",
    "Fetcher",
    "fetch_to_file",
]
