"""The SSRF guard: refusals by address class, configuration overrides, connect-time checks."""

from __future__ import annotations

import pytest
from netweave.notifications import (
    CallbackClient,
    CallbackPolicy,
    CallbackRefused,
    CallbackTestFailed,
)
from netweave.notifications.ssrf import guarded_client
from notify_support import Subscriber, subscriber_server

STRICT = CallbackPolicy()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/cb", "loopback"),
        ("http://localhost/cb", "loopback"),
        ("http://[::1]/cb", "loopback"),
        ("http://[::ffff:127.0.0.1]/cb", "loopback"),
        ("http://169.254.10.1/cb", "link-local"),
        ("http://[fe80::1]/cb", "link-local"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://10.1.2.3/cb", "private"),
        ("http://192.168.0.10/cb", "private"),
        ("http://172.16.5.4/cb", "private"),
        ("http://[fd12:3456::1]/cb", "private"),
        ("http://0.0.0.0/cb", "unspecified"),
        ("http://100.64.0.1/cb", "not globally routable"),
        ("http://224.0.0.1/cb", "multicast"),
    ],
)
async def test_refused_addresses_name_the_field(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused) as caught:
        await STRICT.check_url(url)
    assert caught.value.status == 422
    assert caught.value.details["field"] == "callbackUri"
    assert reason in caught.value.message


async def test_unresolvable_host_is_refused() -> None:
    # .invalid never resolves (RFC 6761); the Go original let DNS failures through.
    with pytest.raises(CallbackRefused, match="does not resolve"):
        await STRICT.check_url("https://smo.example.invalid/cb")


async def test_metadata_host_names_are_refused_before_resolving() -> None:
    with pytest.raises(CallbackRefused, match="metadata"):
        await CallbackPolicy(allow_private=True).check_url("http://metadata.google.internal/x")


async def test_public_address_is_allowed() -> None:
    await STRICT.check_url("https://93.184.215.14/cb")  # an IP literal: no DNS needed


async def test_configuration_allows_private_but_not_metadata() -> None:
    lenient = CallbackPolicy(allow_private=True)
    await lenient.check_url("http://127.0.0.1:8080/cb")
    await lenient.check_url("http://10.0.0.1/cb")
    with pytest.raises(CallbackRefused, match="metadata"):
        await lenient.check_url("http://169.254.169.254/")
    # Only an explicit CIDR opens a metadata address (some test rigs need one).
    await CallbackPolicy(allowed_cidrs=["169.254.169.254/32"]).check_url("http://169.254.169.254/")


async def test_allowed_cidrs_open_only_their_range() -> None:
    policy = CallbackPolicy(allowed_cidrs=["127.0.0.0/8"])
    await policy.check_url("http://127.0.0.1/cb")
    with pytest.raises(CallbackRefused):
        await policy.check_url("http://10.0.0.1/cb")


async def test_non_http_schemes_are_refused() -> None:
    for url in ("file:///etc/passwd", "gopher://127.0.0.1/", "http:///nohost"):
        with pytest.raises(CallbackRefused):
            await STRICT.check_url(url)


async def test_the_client_checks_again_at_connect_time() -> None:
    """A URL that passed once is still refused when the connection would go to loopback —
    what a DNS rebinding attack would exploit."""
    subscriber = Subscriber()
    async with subscriber_server(subscriber) as url:
        strict = guarded_client(STRICT, timeout=2.0)
        try:
            with pytest.raises(CallbackRefused):
                await strict.get(f"{url}/cb")
        finally:
            await strict.aclose()
        allowed = guarded_client(CallbackPolicy(allowed_cidrs=["127.0.0.1/32"]), timeout=2.0)
        try:
            response = await allowed.get(f"{url}/cb")
        finally:
            await allowed.aclose()
    assert response.status_code == 204
    assert len(subscriber.gets) == 1  # only the allowed client got through


async def test_redirects_are_not_followed() -> None:
    client = guarded_client(CallbackPolicy(allow_private=True), timeout=2.0)
    try:
        assert client.follow_redirects is False
    finally:
        await client.aclose()


async def test_callback_test_wants_204() -> None:
    ok = Subscriber()
    wrong = Subscriber(get_status=200)
    async with subscriber_server(ok) as ok_url, subscriber_server(wrong) as wrong_url:
        client = CallbackClient(CallbackPolicy(allowed_cidrs=["127.0.0.0/8"]), timeout=2.0)
        try:
            await client.test(f"{ok_url}/cb", None)
            with pytest.raises(CallbackTestFailed) as caught:
                await client.test(f"{wrong_url}/cb", None)
            assert caught.value.status == 422
            assert "answered 200, expected 204" in caught.value.message
            with pytest.raises(CallbackTestFailed):
                await client.test("http://127.0.0.1:9/cb", None)  # nothing listens
        finally:
            await client.close()
