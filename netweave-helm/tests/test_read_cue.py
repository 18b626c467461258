"""When an install's or upgrade's own read begins (``read_begins``, the reconciler's cue): right
before the first GET of an object the watch reports, not before the reads of other kinds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from conftest import AdapterFactory, upload_of
from netweave.adapters import DeploymentChange
from netweave.adapters.kubernetes import ObjectReader
from netweave.adapters.reads import reads_marked
from netweave_helm.adapter import HelmAdapter
from test_deployments import ctx, spec

ACCOUNT = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-sa
"""


async def test_the_operations_read_is_marked_after_the_objects_no_watch_reports(
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adapter: HelmAdapter = await adapter_factory({"cluster": {"kubeconfig": str(k8s_kubeconfig)}})
    archive = build_chart(
        tmp_path / "src",
        "app",
        "1.0.0",
        templates={
            "sa.yaml": ACCOUNT,
            "configmap.yaml": CONFIGMAP,
            "deployment.yaml": DEPLOYMENT,
        },
    )
    package = await adapter.upload_package(upload_of(archive))
    gets: list[tuple[float, str]] = []
    real = ObjectReader.get

    def timed(self: ObjectReader, path: str, **query: str) -> dict[str, Any] | None:
        gets.append((time.monotonic(), path.rsplit("/", 2)[1]))
        return real(self, path, **query)

    monkeypatch.setattr(ObjectReader, "get", timed)
    for call in ("create", "upgrade"):
        gets.clear()
        with reads_marked() as reads:
            if call == "create":
                info = await adapter.create_deployment(spec(package, greeting="hi"), ctx())
            else:
                change = DeploymentChange(values={"greeting": "again"})
                info = await adapter.update_deployment(info.backend_ref, change, ctx())
        kinds = [kind for _, kind in gets if kind != "secrets"]  # the upgrade's check
        assert sorted(kinds[:1]) == ["serviceaccounts"], (call, gets)
        assert sorted(kinds[1:]) == ["configmaps", "deployments"], (call, gets)
        # One mark: after the account's GET (not reported by the watch), before the first
        # watched object's.
        assert len(reads) == 1, (call, reads)
        account = next(t for t, kind in gets if kind == "serviceaccounts")
        watched = min(t for t, kind in gets if kind in ("configmaps", "deployments"))
        assert account < reads[0] <= watched, (call, reads, gets)
