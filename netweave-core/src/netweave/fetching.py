"""One policy for every fetch that content a client hands the gateway can cause (an adapter's
package registered by URL, an OCI reference, a chart's dependency repository).

The SSRF rules of :mod:`netweave.notifications.ssrf` apply: a host resolving to a loopback,
private, link-local, unspecified, multicast, reserved or cloud metadata address is refused
unless configuration allows it (``allow_private`` lets loopback and private addresses through,
never link-local, multicast, reserved or metadata ones; ``allowed_cidrs`` names networks that
are allowed whatever they are). A name is resolved and checked at connect time and the
connection goes to the checked address (no rebinding between check and connect); redirects are
followed one hop at a time, each hop checked like the first URL. Errors name the URL the client
gave and the HTTP status, never what the server answered: an internal server's words must not
reach the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

import httpx

from netweave.errors import InvalidInput
from netweave.notifications.ssrf import (
    METADATA_ADDRESSES,
    CallbackPolicy,
    IPAddress,
    guarded_client,
)

#: Redirect hops followed for one fetch.
MAX_REDIRECTS = 5


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
        fetched from. For a fetch another library makes (the Helm SDK's OCI client), this is
        the check before it; :func:`fetch_to_file` also pins the checked address."""
        await self.check_url(_as_http(url), field=field)


def _as_http(url: str) -> str:
    # oci:// references are HTTPS to the registry: the same host rules.
    return "https://" + url.removeprefix("oci://") if url.startswith("oci://") else url


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
    current = url
    async with guarded_client(policy, timeout=timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await policy.check(current, field=field)
            try:
                async with client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise InvalidInput(
                            f"{field} {url!r} answered HTTP {response.status_code}",
                            details={"field": field, "status": response.status_code},
                        )
                    size = 0
                    with target.open("wb") as out:
                        async for chunk in response.aiter_bytes(1 << 16):
                            size += len(chunk)
                            if size > limit:
                                raise InvalidInput(
                                    f"{field} {url!r} is larger than {limit} bytes",
                                    details={"field": field, "limit": limit},
                                )
                            out.write(chunk)
                    return target
            except httpx.HTTPError as exc:
                # The exception's text may carry what the server sent: only its kind is told.
                raise InvalidInput(
                    f"{field} {url!r} could not be fetched ({type(exc).__name__})",
                    details={"field": field},
                ) from None
    raise InvalidInput(
        f"{field} {url!r} redirects more than {MAX_REDIRECTS} times", details={"field": field}
    )


__all__ = ["MAX_REDIRECTS", "FetchPolicy", "fetch_to_file"]
