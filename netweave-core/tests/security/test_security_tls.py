"""TLS and mTLS through uvicorn's settings, as ``netweave serve`` passes them (server.tls)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from netweave.cli.main import uvicorn_tls_options
from netweave.config import ServerTlsSettings, Settings
from netweave.testing.tls import make_pki
from support.serving import served_in_thread


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    return make_pki(tmp_path, clients=["client"], rogue="rogue").directory


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@asynccontextmanager
async def serve_tls(options: dict[str, Any]) -> AsyncIterator[str]:
    async with served_in_thread(Litestar([healthz], logging_config=None), **options) as url:
        yield url


def _settings(pki: Path, client_auth: str) -> ServerTlsSettings:
    document = {
        "server": {
            "tls": {
                "certFile": str(pki / "server.crt"),
                "keyFile": str(pki / "server.key"),
                "caFile": str(pki / "ca.crt"),
                "clientAuth": client_auth,
            }
        }
    }
    tls = Settings.model_validate(document).server.tls
    assert tls is not None
    return tls


async def test_mtls_requires_a_client_certificate_from_the_ca(pki: Path) -> None:
    options = uvicorn_tls_options(_settings(pki, "required"))
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    async with serve_tls(options) as url:
        trusted = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        trusted.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
        async with httpx.AsyncClient(verify=trusted) as client:
            assert (await client.get(f"{url}/healthz")).json() == {"status": "ok"}

        anonymous = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        async with httpx.AsyncClient(verify=anonymous) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"{url}/healthz")

        rogue = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        rogue.load_cert_chain(str(pki / "rogue.crt"), str(pki / "rogue.key"))
        async with httpx.AsyncClient(verify=rogue) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"{url}/healthz")


async def test_plain_tls_without_client_certificates(pki: Path) -> None:
    options = uvicorn_tls_options(_settings(pki, "none"))
    async with (
        serve_tls(options) as url,
        httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(pki / "ca.crt"))) as client,
    ):
        assert (await client.get(f"{url}/healthz")).status_code == 200


def test_client_auth_needs_a_ca() -> None:
    with pytest.raises(ValueError, match="caFile"):
        ServerTlsSettings.model_validate(
            {"certFile": "s.crt", "keyFile": "s.key", "clientAuth": "required"}
        )
    assert uvicorn_tls_options(None) == {}


def test_netweave_serve_with_ssl_options_requires_client_certificates(
    pki: Path, tmp_path: Path
) -> None:
    """The CLI path end to end: ``netweave serve --ssl-*`` in a real process."""
    config = tmp_path / "gw.yaml"
    config.write_text("plugins: {dms: []}\nlogFormat: json\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env["NETWEAVE_API_TOKEN"] = "tls-serve-token-1234567890"
    process = subprocess.Popen(
        [sys.executable, "-m", "netweave", "serve", "--host", "127.0.0.1", "--port", "0",
         "--config", str(config), "--data-dir", str(tmp_path / "data"),
         "--ssl-certfile", str(pki / "server.crt"), "--ssl-keyfile", str(pki / "server.key"),
         "--ssl-ca-certs", str(pki / "ca.crt"), "--ssl-client-auth", "required"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("netweave listening on "):
                url = line.split()[-1]
        assert url is not None and url.startswith("https://127.0.0.1:"), url
        trusted = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        trusted.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
        with httpx.Client(verify=trusted) as client:
            assert client.get(f"{url}/healthz").status_code == 200
        anonymous = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        with httpx.Client(verify=anonymous) as client, pytest.raises(httpx.TransportError):
            client.get(f"{url}/healthz")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
