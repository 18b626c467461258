"""Subscriptions through the HTTP API: callback test, SSRF refusals, authentication kept secret,
and events of real operations delivered to a subscriber on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from netweave.config import NotificationSettings, Settings
from notify_support import Subscriber, gateway_log_output, subscriber_server
from support.gateway import Gateway, make_settings, running_gateway

SUBSCRIPTIONS = "/o2dms/v1/subscriptions"


def loopback_settings(tmp_path: Path, **changes: Any) -> Settings:
    settings = make_settings(tmp_path / "data")
    base: dict[str, Any] = {
        "allowed_cidrs": ["127.0.0.0/8"],
        "poll_interval": 0.02,
        "settle_seconds": 0.05,
        "backoff_base": 0.02,
        "backoff_max": 0.1,
        "timeout": 5.0,
    }
    base.update(changes)
    settings.notifications = NotificationSettings(**base)
    return settings


def strict_settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "data")
    settings.notifications = NotificationSettings()
    return settings


@asynccontextmanager
async def gateway(tmp_path: Path, settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path, settings=settings) as gw:
        yield gw


async def wait_for(
    subscriber: Subscriber, predicate: Any, wait_seconds: float = 15.0
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        bodies = subscriber.unique_accepted()
        if predicate(bodies):
            return bodies
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"subscriber got {[(b['notificationType'], b.get('operationState')) for b in bodies]}"
    )


def kinds(bodies: list[dict[str, Any]], deployment_id: str) -> list[str]:
    out = []
    for body in bodies:
        if body.get("deploymentId") != deployment_id:
            continue
        state = body.get("operationState")
        out.append(f"{body['notificationType']}:{state or body['data'].get('status')}")
    return out


async def test_lifecycle_events_reach_a_flaky_subscriber_once_and_in_order(
    tmp_path: Path,
) -> None:
    subscriber = Subscriber(fail_first=2)
    async with (
        subscriber_server(subscriber) as url,
        gateway(tmp_path, loopback_settings(tmp_path)) as gw,
    ):
        created = await gw.post(SUBSCRIPTIONS, json={"callbackUri": f"{url}/cb"})
        assert created.status_code == 201, created.text
        assert len(subscriber.gets) == 1  # the callback was tested on create
        package = await gw.register_package()
        deployment, op = await gw.deploy(package["packageId"])
        assert op["state"] == "COMPLETED"
        deleted = await gw.delete(f"/o2dms/v1/nfDeployments/{deployment['deploymentId']}")
        assert deleted.status_code == 202, deleted.text
        dep_id = deployment["deploymentId"]
        bodies = await wait_for(
            subscriber,
            lambda bs: (
                any(b["notificationType"] == "DeploymentDeleted" for b in bs)
                and sum(b.get("operationState") == "COMPLETED" for b in bs) == 2
            ),
        )
    # The package's own event (its ordering key is the package, not the deployment: it may
    # arrive before or after the deployment's first event, which flow in parallel).
    package_events = [b for b in bodies if "deploymentId" not in b]
    assert [b["notificationType"] for b in package_events] == ["PackageUploaded"]
    assert package_events[0]["packageId"] == package["packageId"]
    sequence = kinds(bodies, dep_id)
    # Each notification once (after de-duplication), each after two refused attempts.
    assert len(subscriber.accepted()) == len(bodies)
    assert all(n == 3 for n in subscriber.attempts.values())
    # The deployment's story, in the order it happened.
    assert sequence[0] == "DeploymentCreated:PENDING"
    assert sequence[-1].startswith(("DeploymentDeleted", "OperationStateChanged:COMPLETED"))
    operation_states = [s.split(":")[1] for s in sequence if s.startswith("Operation")]
    assert operation_states == [
        "STARTING",
        "PROCESSING",
        "COMPLETED",
        "STARTING",
        "PROCESSING",
        "COMPLETED",
    ]
    assert sequence.index("DeploymentChanged:DEPLOYED") < sequence.index(
        "DeploymentDeleted:DELETED"
    )


async def test_callback_must_answer_the_test_with_204(tmp_path: Path) -> None:
    subscriber = Subscriber(get_status=500)
    async with (
        subscriber_server(subscriber) as url,
        gateway(tmp_path, loopback_settings(tmp_path)) as gw,
    ):
        refused = await gw.post(SUBSCRIPTIONS, json={"callbackUri": f"{url}/cb"})
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["error"] == "CallbackTestFailed"
        listed = await gw.get(SUBSCRIPTIONS)
        assert listed.json()["total"] == 0


@pytest.mark.parametrize(
    "callback",
    [
        "LOOPBACK",
        "http://169.254.1.1/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.7/cb",
        "http://192.168.1.1/cb",
        "http://0.0.0.0/cb",
        "http://smo.example.invalid/cb",
    ],
)
async def test_ssrf_refusals(tmp_path: Path, callback: str) -> None:
    subscriber = Subscriber()
    # The product's defaults: loopback is NOT allowed here.
    async with (
        subscriber_server(subscriber) as url,
        gateway(tmp_path, strict_settings(tmp_path)) as gw,
    ):
        target = f"{url}/cb" if callback == "LOOPBACK" else callback
        refused = await gw.post(SUBSCRIPTIONS, json={"callbackUri": target})
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["details"]["field"] == "callbackUri"
        assert (await gw.get(SUBSCRIPTIONS)).json()["total"] == 0
    assert subscriber.gets == []  # never called


async def test_token_endpoint_is_ssrf_checked_too(tmp_path: Path) -> None:
    subscriber = Subscriber()
    async with (
        subscriber_server(subscriber) as url,
        gateway(tmp_path, loopback_settings(tmp_path)) as gw,
    ):
        refused = await gw.post(
            SUBSCRIPTIONS,
            json={
                "callbackUri": f"{url}/cb",
                "authentication": {
                    "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                    "paramsOauth2ClientCredentials": {
                        "clientId": "a",
                        "clientPassword": "b-secret",
                        "tokenEndpoint": "http://169.254.169.254/token",
                    },
                },
            },
        )
    assert refused.status_code == 422, refused.text
    assert refused.json()["details"]["field"] == (
        "authentication.paramsOauth2ClientCredentials.tokenEndpoint"
    )


async def test_basic_credentials_are_used_and_never_returned(tmp_path: Path) -> None:
    password = "callback-pass-42"
    expected = "Basic " + base64.b64encode(f"smo:{password}".encode()).decode()
    subscriber = Subscriber(expect_authorization=expected)
    async with (
        subscriber_server(subscriber) as url,
        gateway(tmp_path, loopback_settings(tmp_path)) as gw,
    ):
        created = await gw.post(
            SUBSCRIPTIONS,
            json={
                "callbackUri": f"{url}/cb",
                "authentication": {
                    "authType": ["BASIC"],
                    "paramsBasic": {"userName": "smo", "password": password},
                },
            },
        )
        assert created.status_code == 201, created.text
        subscription_id = created.json()["subscriptionId"]
        one = await gw.get(f"{SUBSCRIPTIONS}/{subscription_id}")
        listed = await gw.get(SUBSCRIPTIONS)
        await gw.register_package()
        await wait_for(subscriber, lambda bs: len(bs) == 1)
    for response in (created, one, listed):
        assert password not in response.text
        assert "authentication" not in response.text
    assert subscriber.gets == [expected]
    assert subscriber.receipts[0].authorization == expected


async def test_client_credentials_through_the_api(tmp_path: Path) -> None:
    subscriber = Subscriber(require_token=True)
    async with (
        subscriber_server(subscriber) as url,
        gateway(tmp_path, loopback_settings(tmp_path)) as gw,
    ):
        with gateway_log_output() as output:
            created = await gw.post(
                SUBSCRIPTIONS,
                json={
                    "callbackUri": f"{url}/cb",
                    "filter": {"eventTypes": ["PackageUploaded"]},
                    "authentication": {
                        "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                        "paramsOauth2ClientCredentials": {
                            "clientId": subscriber.client_id,
                            "clientPassword": subscriber.client_secret,
                            "tokenEndpoint": f"{url}/token",
                        },
                    },
                },
            )
            assert created.status_code == 201, created.text
            assert subscriber.client_secret not in created.text
            await gw.register_package(name="one")
            await gw.register_package(name="two")
            bodies = await wait_for(subscriber, lambda bs: len(bs) == 2)
    assert [b["data"]["name"] for b in bodies] == ["one", "two"]
    assert subscriber.gets[0] is not None and subscriber.gets[0].startswith("Bearer tok-")
    assert subscriber.token_requests == 1  # cached across the test GET and both deliveries
    text = output.getvalue()
    # The output really has the gateway's work in it, down to the SQL statements written.
    assert "POST http://127.0.0.1" in text and "INSERT INTO subscriptions" in text
    secret_basic = base64.b64encode(
        f"{subscriber.client_id}:{subscriber.client_secret}".encode()
    ).decode()
    for secret in (subscriber.client_secret, secret_basic, *subscriber.valid_tokens):
        assert secret not in text


async def test_unsupported_auth_type_is_a_400(tmp_path: Path) -> None:
    async with gateway(tmp_path, loopback_settings(tmp_path)) as gw:
        refused = await gw.post(
            SUBSCRIPTIONS,
            json={
                "callbackUri": "http://127.0.0.1:9/cb",
                "authentication": {"authType": ["KERBEROS"]},
            },
        )
        # TLS_CERT is ETSI's, but this gateway has no client certificate to present.
        no_certificate = await gw.post(
            SUBSCRIPTIONS,
            json={
                "callbackUri": "https://127.0.0.1:9/cb",
                "authentication": {"authType": ["TLS_CERT"]},
            },
        )
        listed = await gw.get(SUBSCRIPTIONS)
    assert refused.status_code == 400, refused.text
    assert "authType" in refused.text
    assert no_certificate.status_code == 422, no_certificate.text
    assert "notifications.clientCertFile" in no_certificate.json()["detail"]
    assert listed.json()["items"] == []
