"""Dry-run previews rendered in a capped child process, not in the gateway.

A preview renders whatever the chart's templates and the request's values ask for: a loop over
``.Values.n`` with ``n = 2e7`` grew the gateway by ~750 MB and answered 20 MB when Helm ran
in-process, and Go does not hand such memory back soon. The same child as the upload's lint
(:class:`netweave_helm.validation.HelmChild`) renders instead, under the adapter's ``render``
caps (memory, time, output size); over a cap the request is refused with a 400 naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netweave.errors import BackendError, InvalidInput

from netweave_helm import sdk
from netweave_helm.config import ClusterSettings, RenderLimits
from netweave_helm.validation import HelmChild


def cluster_options(settings: ClusterSettings) -> dict[str, Any]:
    """How the child reaches the cluster the gateway uses (sent on its stdin, not argv)."""
    return {
        "kubeconfig": str(settings.kubeconfig) if settings.kubeconfig is not None else None,
        "kubeconfigContent": (
            settings.kubeconfig_content.get_secret_value()
            if settings.kubeconfig_content is not None
            else None
        ),
        "context": settings.context,
        "storageDriver": settings.storage_driver,
        "qps": settings.qps,
        "burst": settings.burst,
    }


async def render_preview(
    chart: Path,
    *,
    release: str,
    namespace: str,
    values: dict[str, Any],
    upgrade: bool,
    cluster: dict[str, Any] | None,
    caps: RenderLimits,
    time_limit: float,
    work_dir: Path,
) -> dict[str, Any]:
    """Helm's dry-run release (``manifest``, ``notes``, ``chart_name``, ``chart_version``,
    ``revision``) of ``chart``; ``cluster``: :func:`cluster_options`, or ``None`` to render
    offline. SDK errors map as in-process; over a cap: ``InvalidInput``."""
    what = f"previewing {'upgrade of' if upgrade else 'release'} {release}"
    options = {
        "action": "render",
        "release": release,
        "namespace": namespace,
        "values": values,
        "upgrade": upgrade,
        "cluster": cluster,
        "maxOutputBytes": caps.max_output_bytes,
    }
    async with HelmChild(str(chart), work_dir, caps) as child:
        answer = await child.answer(options, time_limit)
    step = answer.get("render")
    if not isinstance(step, dict):
        raise BackendError(f"{what}: the Helm render child gave no result")
    if "error" in step:
        raise sdk.map_reported_error(step["error"], what)
    if "tooLarge" in step:
        raise InvalidInput(
            f"{what}: the rendered manifests are {step['tooLarge']} bytes, over the gateway's "
            f"preview cap of {caps.max_output_bytes} bytes (the Helm adapter's "
            "render.maxOutputBytes)",
            details={"cap": "output", "setting": "render.maxOutputBytes"},
        )
    result = step.get("result")
    if not isinstance(result, dict):
        raise BackendError(f"{what}: the Helm render child gave an unreadable result")
    return result


__all__ = ["cluster_options", "render_preview"]
