"""TLS to the NBI: the adapter verifies the server against the configured CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from netweave.errors import BackendUnavailable
from netweave.testing.tls import make_pki
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_helpers import make_config


@pytest.fixture
def tls_emulator(contract_path: Path, tmp_path: Path) -> Iterator[tuple[OsmNbiEmulator, Path]]:
    pki = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    nbi = OsmNbiEmulator(contract_path)
    nbi.start(tls=context)
    try:
        yield nbi, pki.ca
    finally:
        nbi.stop()
    assert nbi.violations == []


async def test_https_with_the_configured_ca(tls_emulator: tuple[OsmNbiEmulator, Path]) -> None:
    nbi, cert = tls_emulator
    assert nbi.url.startswith("https://127.0.0.1:")
    trusted = OsmAdapter("osm-tls", make_config(nbi, http={"tls": {"caFile": str(cert)}}))
    await trusted.start()
    try:
        assert (await trusted.health()).healthy
        assert await trusted.list_packages() == []
    finally:
        await trusted.stop()
    # Without the CA the server is not trusted: the NBI counts as unreachable.
    served = len(nbi.log)
    untrusted = OsmAdapter("osm-notls", make_config(nbi, http={"retries": 0}))
    await untrusted.start()
    try:
        with pytest.raises(BackendUnavailable):
            await untrusted.list_packages()
    finally:
        await untrusted.stop()
    assert len(nbi.log) == served, "no request (not even the login) got through"
