"""Logs of a Flux deployment through core's shared Kubernetes module: ``follow`` is honoured
(it was ignored: the lines so far came back and the stream ended), against the K8s emulator
serving followed logs like a kubelet."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import DeploymentSpec, OperationContext, PackageUpload
from netweave.models import DeploymentStatus, LogOptions
from netweave.testing.k8s import KubernetesEmulator
from netweave_flux.adapter import FluxAdapter

_ids = itertools.count(1)


@pytest.fixture
def emulator(crd_files: list[Path]) -> Iterator[KubernetesEmulator]:
    # This module's emulator streams pods/log?follow=true like a kubelet.
    with KubernetesEmulator(follow_logs=True) as emu:
        for path in crd_files:
            emu.install_crd(path)
        for ns in ("flux-system", "apps"):
            emu.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        yield emu


def ctx() -> OperationContext:
    n = next(_ids)
    return OperationContext(operation_id=f"op-{n}", idempotency_key=f"op-{n}:0")


async def _deployed(adapter: FluxAdapter, emulator: KubernetesEmulator) -> tuple[str, Any]:
    package = await adapter.upload_package(
        PackageUpload(
            name="podinfo",
            version="1.0.0",
            package_type="helm",
            package_uri="https://stefanprodan.github.io/podinfo",
            source={"chart": "podinfo"},
        )
    )
    info = await adapter.create_deployment(
        DeploymentSpec(
            deployment_id="dep-followed",
            name="followed",
            namespace="apps",
            package=package,
            values={},
        ),
        ctx(),
    )
    pods: list[Any] = []
    for _ in range(400):  # up to 20 s
        current = await adapter.get_deployment(info.backend_ref)
        pods = emulator.list("v1", "Pod", "apps", "app.kubernetes.io/instance=followed")
        if current.status is DeploymentStatus.DEPLOYED and pods:
            break
        await asyncio.sleep(0.05)
    assert pods, "the deployment's pod never appeared"
    return info.backend_ref, pods[0]


async def test_follow_streams_lines_written_after_it_opened(
    adapter: FluxAdapter, emulator: KubernetesEmulator
) -> None:
    ref, pod = await _deployed(adapter, emulator)
    name = pod["metadata"]["name"]
    container = pod["spec"]["containers"][0]["name"]
    stream = adapter.stream_logs(ref, LogOptions(follow=True, tail_lines=1))
    try:
        # The last line so far first: the stream is open from then on.
        first = await asyncio.wait_for(anext(stream), 30)
        assert first != "written later"
        reading = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.3)
        assert not reading.done()  # a followed stream waits for more
        emulator.append_log("apps", name, container, "written later")
        assert await asyncio.wait_for(reading, 10) == "written later"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "netweave-pod-logs"]

    for _ in range(200):  # up to 10 s
        if not readers():
            break
        await asyncio.sleep(0.05)
    assert not readers()


async def test_without_follow_the_lines_so_far_come_back_and_the_stream_ends(
    adapter: FluxAdapter, emulator: KubernetesEmulator
) -> None:
    ref, pod = await _deployed(adapter, emulator)
    emulator.append_log("apps", pod["metadata"]["name"], pod["spec"]["containers"][0]["name"], "x")
    started = time.monotonic()
    lines = [line async for line in adapter.stream_logs(ref, LogOptions())]
    assert lines and lines[-1] == "x"
    assert time.monotonic() - started < 10
