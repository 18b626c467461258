"""Logs of a release's pods (label ``app.kubernetes.io/instance=<release>``): which containers,
chosen here; read or followed by core's :func:`netweave.adapters.kubernetes.stream_pod_logs`.

With more than one pod/container every line is prefixed ``[<pod>/<container>] ``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from netweave.adapters.kubernetes import kube_call, stream_pod_logs
from netweave.errors import NotFound
from netweave.models import LogOptions

INSTANCE_LABEL = "app.kubernetes.io/instance"


async def stream_release_logs(
    api_client: Any, namespace: str, release: str, options: LogOptions
) -> AsyncIterator[str]:
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api_client)
    pods: Any = await kube_call(
        f"listing pods of release {release}",
        core.list_namespaced_pod,
        namespace,
        label_selector=f"{INSTANCE_LABEL}={release}",
    )
    targets: list[tuple[str, str, str]] = []
    for pod in sorted(pods.items or [], key=lambda p: p.metadata.name):
        containers = [c.name for c in (pod.spec.containers or [])] if pod.spec else []
        if options.container is not None:
            if options.container in containers:
                targets.append((namespace, pod.metadata.name, options.container))
        else:
            targets.extend((namespace, pod.metadata.name, c) for c in containers)
    if options.container is not None and not targets and pods.items:
        raise NotFound(f"no pod of release {release} has a container {options.container!r}")
    async for line in stream_pod_logs(api_client, targets, options):
        yield line


__all__ = ["INSTANCE_LABEL", "stream_release_logs"]
