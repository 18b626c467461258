"""Subscription callback secrets are encrypted at rest and still reach subscribers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from netweave.errors import InvalidInput
from netweave.notifications.sealing import (
    KEY_FILE,
    SECRET_KEY_ENV,
    SecretSealer,
    SecretUnavailable,
    load_sealer,
)
from notify_support import Subscriber, subscriber_server
from support.gateway import make_settings, running_gateway

BASIC_PASSWORD = "basic-pass-at-rest-0001"
AUTH_BASIC = {
    "authType": ["BASIC"],
    "paramsBasic": {"userName": "smo", "password": BASIC_PASSWORD},
}


def at_rest(tmp_path: Path) -> tuple[bytes, int]:
    """The database files' bytes (with the WAL) and the key file's permission bits."""
    raw = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("netweave.db*")))
    return raw, stat.S_IMODE((tmp_path / "data" / KEY_FILE).stat().st_mode)


async def test_secrets_are_encrypted_in_the_database_and_still_authenticate(
    tmp_path: Path,
) -> None:
    basic = Subscriber(expect_authorization="Basic " + base64.b64encode(
        f"smo:{BASIC_PASSWORD}".encode()).decode())  # fmt: skip
    oauth = Subscriber(require_token=True, client_secret="oauth-secret-at-rest-0002")
    settings = make_settings(tmp_path / "data")
    async with (
        subscriber_server(basic) as basic_url,
        subscriber_server(oauth) as oauth_url,
        running_gateway(tmp_path, settings=settings) as gw,
    ):
        for url, authentication in (
            (basic_url, AUTH_BASIC),
            (
                oauth_url,
                {
                    "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                    "paramsOauth2ClientCredentials": {
                        "clientId": oauth.client_id,
                        "clientPassword": oauth.client_secret,
                        "tokenEndpoint": f"{oauth_url}/token",
                    },
                },
            ),
        ):
            created = await gw.post(
                "/o2dms/v1/subscriptions",
                json={"callbackUri": f"{url}/cb", "authentication": authentication},
            )
            assert created.status_code == 201, created.text
            assert "authentication" not in created.json()
        stored = (await gw.store.list_subscriptions()).items
        await gw.register_package()
        for _ in range(200):  # up to 10 s
            if basic.unique_accepted() and oauth.unique_accepted():
                break
            await asyncio.sleep(0.05)

    # At rest: neither secret in the rows, nor anywhere in the database files.
    dumped = json.dumps([s.authentication for s in stored])
    assert BASIC_PASSWORD not in dumped and oauth.client_secret not in dumped
    by_type = {
        s.authentication["authType"][0]: s.authentication for s in stored if s.authentication
    }
    assert by_type["BASIC"]["paramsBasic"]["password"].startswith("enc:v1:")
    oauth_params = by_type["OAUTH2_CLIENT_CREDENTIALS"]["paramsOauth2ClientCredentials"]
    assert oauth_params["clientPassword"].startswith("enc:v1:")
    assert oauth_params["clientId"] == oauth.client_id  # only the secrets are encrypted
    raw, key_mode = at_rest(tmp_path)
    assert len(raw) > 4096  # the database file was found and read
    assert BASIC_PASSWORD.encode() not in raw and oauth.client_secret.encode() not in raw
    # The key was generated in the data directory, readable by its owner only.
    assert key_mode == 0o600
    # In use: both subscribers authenticated the gateway's callbacks.
    assert [b["notificationType"] for b in basic.unique_accepted()] == ["PackageUploaded"]
    assert [b["notificationType"] for b in oauth.unique_accepted()] == ["PackageUploaded"]
    assert oauth.token_requests == 1


def test_the_key_comes_from_the_environment_or_the_data_dir(tmp_path: Path) -> None:
    generated = load_sealer(tmp_path / "a", env={})
    # Generated once, then reused: the same key across restarts.
    assert load_sealer(tmp_path / "a", env={}).key_id == generated.key_id
    sealed = generated.seal(AUTH_BASIC)
    assert load_sealer(tmp_path / "a", env={}).open(sealed) == AUTH_BASIC
    # The environment wins over the file (replicas share one key that way).
    shared = Fernet.generate_key().decode()
    from_env = load_sealer(tmp_path / "a", env={SECRET_KEY_ENV: shared})
    assert from_env.key_id != generated.key_id
    assert from_env.open(from_env.seal(AUTH_BASIC)) == AUTH_BASIC
    with pytest.raises(InvalidInput, match=SECRET_KEY_ENV):
        load_sealer(tmp_path / "b", env={SECRET_KEY_ENV: "not-a-fernet-key"})


def test_a_wrong_key_is_named_and_clear_legacy_rows_still_work() -> None:
    one, other = SecretSealer(Fernet.generate_key()), SecretSealer(Fernet.generate_key())
    sealed = one.seal(AUTH_BASIC)
    assert sealed is not None and sealed != AUTH_BASIC
    assert one.seal(sealed) == sealed  # sealing twice changes nothing
    with pytest.raises(SecretUnavailable) as refused:
        other.open(sealed)
    assert one.key_id in str(refused.value) and other.key_id in str(refused.value)
    assert BASIC_PASSWORD not in str(refused.value)
    # A row stored before encryption existed is used as it is.
    assert other.open(AUTH_BASIC) == AUTH_BASIC
    assert other.open(None) is None


def test_without_a_usable_key_secrets_are_refused_never_stored_in_clear(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the data directory should be")
    sealer = load_sealer(blocked, env={})
    with pytest.raises(SecretUnavailable, match=SECRET_KEY_ENV):
        sealer.seal(AUTH_BASIC)
    assert sealer.seal({"authType": ["BASIC"]}) == {"authType": ["BASIC"]}  # nothing secret
    assert sealer.open(AUTH_BASIC) == AUTH_BASIC  # rows stored in clear before still work


async def test_a_subscription_with_secrets_is_refused_when_they_cannot_be_encrypted(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data directory should be")
    settings = make_settings(blocked)
    async with running_gateway(tmp_path, settings=settings) as gw:
        refused = await gw.post(
            "/o2dms/v1/subscriptions",
            json={"callbackUri": "http://127.0.0.1:9/cb", "authentication": AUTH_BASIC},
        )
        assert refused.status_code == 500, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await gw.store.list_subscriptions()).total == 0
        # Without secrets, subscriptions still work.
        plain = await gw.post(
            "/o2dms/v1/subscriptions", json={"callbackUri": "http://127.0.0.1:9/cb"}
        )
        assert plain.status_code == 201, plain.text
