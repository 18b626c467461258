"""Hostile chart archives uploaded to an ONAP k8s plugin instance through the gateway's HTTP
API: core's chart-archive inspector (the one Helm uses) refuses each with a 400 problem body
naming its reason, before anything reaches the plugin (no definition, no content).

The corpus is core's (netweave.testing.archives); the cases that test a lowered limit
(``NEED_LOWERED_LIMITS``) are left out: ONAP applies the default limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from netweave.api.app import create_app
from netweave.testing.archives import (
    CORPUS,
    EXPECTED_REASON,
    NAME,
    NEED_LOWERED_LIMITS,
    VERSION,
    valid_chart,
)
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.so import SoEmulator
from test_onap_gateway_http import AUTH, PACKAGES, settings

CASES = sorted(set(CORPUS) - NEED_LOWERED_LIMITS)


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path, k8s_backend: K8sPluginEmulator, so_backend: SoEmulator
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(settings(tmp_path, k8s_backend, so_backend))
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        yield client


async def _upload(client: AsyncTestClient[Litestar], archive: Path) -> Any:
    content = await asyncio.to_thread(archive.read_bytes)
    return await client.post(
        PACKAGES,
        headers=AUTH,
        data={"name": NAME, "artifactVersion": VERSION, "adapter": "onap-edge"},
        files={"chart": (archive.name, content, "application/gzip")},
    )


async def test_every_hostile_archive_is_refused_with_a_problem_and_reaches_nothing(
    tmp_path: Path, gateway: AsyncTestClient[Litestar], k8s_backend: K8sPluginEmulator
) -> None:
    # One gateway for the whole corpus (a gateway per case made this test take minutes).
    assert len(CASES) >= 20
    for case in CASES:
        (tmp_path / case).mkdir()
        archive = CORPUS[case](tmp_path / case / f"{NAME}-{VERSION}.tgz")
        response = await _upload(gateway, archive)
        assert response.status_code == 400, (case, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), case
        problem = response.json()
        assert problem["status"] == 400, (case, problem)
        assert EXPECTED_REASON[case].lower() in problem["detail"].lower(), (case, problem)
        # Nothing reached the plugin.
        assert (NAME, VERSION) not in k8s_backend.definitions, case
    listed = await gateway.get(PACKAGES, headers=AUTH)
    assert listed.status_code == 200
    assert listed.json()["items"] == [], listed.text


async def test_the_base_chart_without_the_hostile_part_is_onboarded(
    tmp_path: Path, gateway: AsyncTestClient[Litestar], k8s_backend: K8sPluginEmulator
) -> None:
    """Control: the refusals above are about the attack, not the chart."""
    response = await _upload(gateway, valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz"))
    assert response.status_code == 201, response.text
    assert (NAME, VERSION) in k8s_backend.definitions
