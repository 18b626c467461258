"""Callback authentication ``TLS_CERT`` (SOL003/SOL013: every request to the notification
endpoint over a mutually authenticated TLS session), through the real app and a real HTTPS
endpoint on 127.0.0.1 that requires a client certificate from its own CA.

What is checked is the outcome: which certificate the endpoint saw on the test GET and on each
notification, what was stored, and that a refusal stores nothing and calls nobody."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from netweave.config import NotificationSettings, Settings
from netweave.notifications import CallbackTls
from netweave.notifications.callbacks import CallbackTlsError
from netweave.testing.etsi import StandardSmo, sol003_vnflcm_contract
from netweave.testing.etsi_notify import CallbackSink, callback_sink, notification_validator
from netweave.testing.tls import Pki, make_pki
from netweave.testing.vnfpkgm import sol005_vnfpkgm_contract
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
TLS_CERT = {"authType": ["TLS_CERT"]}


@pytest.fixture(scope="module")
def contract() -> Any:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol003_vnflcm_contract(SHARED)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    # "gateway": the certificate netweave presents; "stranger": a self-signed one no CA issued.
    return make_pki(tmp_path / "pki", clients=["gateway"], rogue="stranger")


def settings_for(
    tmp_path: Path, pki: Pki, *, client: str | None = "gateway", trust: bool = True
) -> Settings:
    settings = make_settings(tmp_path / "data")
    cert, key = pki.client(client) if client is not None else (None, None)
    settings.notifications = NotificationSettings(
        allowed_cidrs=["127.0.0.0/8"],
        poll_interval=0.02,
        settle_seconds=0.02,
        backoff_base=0.05,
        backoff_max=0.2,
        timeout=3.0,
        client_cert_file=cert,
        client_key_file=key,
        # The endpoint's certificate comes from the test CA, not a public one.
        ca_file=pki.ca if trust else None,
    )
    return settings


@asynccontextmanager
async def gateway(tmp_path: Path, pki: Pki, **options: Any) -> AsyncIterator[Gateway]:
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_for(tmp_path, pki, **options)
    ) as gw:
        yield gw


def mutual_tls_server(pki: Pki, *, client_ca: Path | None = None) -> ssl.SSLContext:
    """The endpoint's TLS: its certificate from the test CA; client certificates required and
    verified against ``client_ca`` (the test CA unless given)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_ca or pki.ca)
    return context


@contextmanager
def endpoint(pki: Pki, **options: Any) -> Iterator[CallbackSink]:
    with callback_sink(tls=mutual_tls_server(pki, **options)) as sink:
        yield sink


async def post_subscription(gw: Gateway, smo: StandardSmo, body: dict[str, Any]) -> Any:
    """POST around the validating SMO: refusals are what these requests are for."""
    return await gw.post(
        "/vnflcm/v2/subscriptions",
        json=body,
        headers={**smo.headers, "Content-Type": "application/json"},
    )


async def subscriptions_stored(gw: Gateway) -> int:
    return len(await gw.store.list_vnf_subscriptions(after=None, limit=10))


async def test_tls_cert_subscription_is_tested_and_notified_over_mutual_tls(
    tmp_path: Path, pki: Pki, contract: Any
) -> None:
    validate = notification_validator(SHARED, 2)
    with endpoint(pki) as sink:
        async with gateway(tmp_path, pki) as gw:
            smo = StandardSmo(gw, contract)
            response = await smo.call(
                "POST",
                "/subscriptions",
                {"callbackUri": sink.url, "authentication": TLS_CERT},
            )
            assert response.status_code == 201, response.text
            assert "authentication" not in response.json()
            # The create-time test GET came over TLS with the gateway's certificate.
            assert sink.peers == ["gateway"]
            stored = await gw.store.get_vnf_subscription(response.json()["id"])
            assert stored is not None and stored.callback_uri.startswith("https://")
            package = await gw.register_package()
            created = await smo.call(
                "POST", "/vnf_instances", {"vnfdId": package["packageId"], "vnfInstanceName": "a"}
            )
            assert created.status_code == 201, created.text
            bodies = await sink.wait_for(lambda got: len(got) >= 1)
    assert [b["notificationType"] for b in bodies] == ["VnfIdentifierCreationNotification"]
    assert bodies[0]["vnfInstanceId"] == created.json()["id"]
    validate(bodies[0])
    # Every request reached the endpoint with the gateway's client certificate and no
    # Authorization header (TLS_CERT authenticates the session, not the request).
    assert sink.received and all(r.peer == "gateway" for r in sink.received)
    assert all("Authorization" not in r.headers for r in sink.received)


async def test_tls_cert_refused_without_a_client_certificate_or_https(
    tmp_path: Path, pki: Pki, contract: Any
) -> None:
    with endpoint(pki) as tls_sink, callback_sink() as plain:
        async with gateway(tmp_path, pki, client=None) as gw:
            smo = StandardSmo(gw, contract)
            response = await post_subscription(
                gw, smo, {"callbackUri": tls_sink.url, "authentication": TLS_CERT}
            )
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "notifications.clientCertFile" in response.json()["detail"]
            assert await subscriptions_stored(gw) == 0
        async with gateway(tmp_path / "second", pki) as gw:
            smo = StandardSmo(gw, contract)
            # Over plain HTTP there is no TLS session for the certificate to authenticate.
            response = await post_subscription(
                gw, smo, {"callbackUri": plain.url, "authentication": TLS_CERT}
            )
            assert response.status_code == 422, response.text
            assert "https callbackUri" in response.json()["detail"]
            # Listed after an authType that can be used, TLS_CERT does not stand in its way.
            both = await smo.call(
                "POST",
                "/subscriptions",
                {
                    "callbackUri": plain.url,
                    "authentication": {
                        "authType": ["TLS_CERT", "BASIC"],
                        "paramsBasic": {"userName": "smo", "password": "pw-123456"},
                    },
                },
            )
            assert both.status_code == 201, both.text
            assert await subscriptions_stored(gw) == 1
    assert tls_sink.gets == []  # nobody called the endpoint of a refused subscription
    assert plain.gets and plain.gets[-1].get("Authorization", "").startswith("Basic ")


async def test_an_endpoint_refusing_the_certificate_fails_the_test_and_stores_nothing(
    tmp_path: Path, pki: Pki, contract: Any
) -> None:
    other = make_pki(tmp_path / "other-ca")
    # The endpoint trusts only another CA's client certificates: the handshake fails.
    with endpoint(pki, client_ca=other.ca) as sink:
        async with gateway(tmp_path, pki) as gw:
            smo = StandardSmo(gw, contract)
            response = await post_subscription(
                gw, smo, {"callbackUri": sink.url, "authentication": TLS_CERT}
            )
            assert response.status_code == 422, response.text
            assert "callback test failed" in response.json()["detail"]
            assert await subscriptions_stored(gw) == 0
    # The gateway that does not trust the endpoint's CA refuses it too, and says why.
    with endpoint(pki) as sink:
        async with gateway(tmp_path / "untrusting", pki, trust=False) as gw:
            smo = StandardSmo(gw, contract)
            response = await post_subscription(
                gw, smo, {"callbackUri": sink.url, "authentication": TLS_CERT}
            )
            assert response.status_code == 422, response.text
            assert "CERTIFICATE_VERIFY_FAILED" in response.json()["detail"]
            assert await subscriptions_stored(gw) == 0
    assert sink.received == []


async def test_vnf_package_subscription_with_tls_cert(tmp_path: Path, pki: Pki) -> None:
    """SOL005 ``/vnfpkgm/v2/subscriptions`` shares the rules (and the contract allows it)."""
    contract = sol005_vnfpkgm_contract(SHARED)
    body = {"callbackUri": "", "authentication": TLS_CERT}
    with endpoint(pki) as sink:
        body["callbackUri"] = sink.url
        contract.validate_request("POST", "/subscriptions", body=body)
        async with gateway(tmp_path, pki) as gw:
            response = await gw.post(
                "/vnfpkgm/v2/subscriptions", json=body, headers={"Version": "2.4.0"}
            )
            contract.validate_response(
                "POST", "/subscriptions", response.status_code, response.json(),
                headers=dict(response.headers),
            )  # fmt: skip
            assert response.status_code == 201, response.text
            assert "authentication" not in response.json()
    assert sink.peers == ["gateway"]


async def test_native_subscription_with_tls_cert(tmp_path: Path, pki: Pki) -> None:
    with endpoint(pki) as sink, callback_sink() as plain:
        async with gateway(tmp_path, pki) as gw:
            created = await gw.post(
                "/o2dms/v1/subscriptions",
                json={"callbackUri": sink.url, "authentication": TLS_CERT},
            )
            assert created.status_code == 201, created.text
            assert sink.peers == ["gateway"]
            refused = await gw.post(
                "/o2dms/v1/subscriptions",
                json={"callbackUri": plain.url, "authentication": TLS_CERT},
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["details"]["field"] == "callbackUri"
            listed = await gw.get("/o2dms/v1/subscriptions")
            assert [s["callbackUri"] for s in listed.json()["items"]] == [sink.url]
    assert plain.gets == []


def test_unusable_client_certificate_is_a_start_up_error_naming_the_settings(
    tmp_path: Path, pki: Pki
) -> None:
    cert, _ = pki.client("gateway")
    _, other_key = pki.client("stranger")
    with pytest.raises(CallbackTlsError, match="clientCertFile/clientKeyFile"):
        CallbackTls(cert, other_key).check()  # a key that is not the certificate's
    with pytest.raises(CallbackTlsError, match="clientCertFile/clientKeyFile"):
        CallbackTls(tmp_path / "missing.crt", other_key).check()
    with pytest.raises(CallbackTlsError, match=r"notifications\.caFile"):
        CallbackTls(ca_file=tmp_path / "missing-ca.pem").check()
    with pytest.raises(ValueError, match="clientCertFile and clientKeyFile go together"):
        NotificationSettings(client_cert_file=cert)
