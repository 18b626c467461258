"""Reading Helm's release storage (``netweave_flux.releases``): the Secret driver's encoding,
and what a damaged or hostile Secret makes of it (a clear error, bounded inflation)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from netweave.errors import BackendError
from netweave_flux import releases


def secret(blob: bytes) -> dict[str, Any]:
    """A storage Secret as the API returns it: Helm's base64 string, base64 again."""
    helm = base64.b64encode(blob)
    return {
        "metadata": {"name": "sh.helm.release.v1.web.v1"},
        "data": {"release": base64.b64encode(helm).decode()},
    }


RELEASE = {"name": "web", "version": 1, "manifest": "---\nkind: ConfigMap\n", "config": {}}


def test_a_gzipped_release_and_an_uncompressed_one_decode() -> None:
    assert releases.decode_release(secret(gzip.compress(json.dumps(RELEASE).encode()))) == RELEASE
    # Helm reads an uncompressed release too (no gzip magic): so does the adapter.
    assert releases.decode_release(secret(json.dumps(RELEASE).encode())) == RELEASE


def test_a_release_inflating_beyond_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(releases, "MAX_RELEASE_BYTES", 1024)
    bomb = gzip.compress(b'{"manifest": "' + b"x" * 100_000 + b'"}')
    with pytest.raises(BackendError, match="inflates beyond"):
        releases.decode_release(secret(bomb))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "holds no release"),
        ({"release": "!!!"}, "not base64"),
        (secret(b"\x1f\x8b\x08garbage")["data"], "not gzip"),
        (secret(b"[1, 2]")["data"], "not an object"),
        (secret(b"{nope")["data"], "not JSON"),
    ],
)
def test_a_damaged_secret_is_a_clear_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendError, match=message):
        releases.decode_release({"metadata": {"name": "s"}, "data": data})


def test_the_release_name_and_storage_namespace_follow_helm_controller() -> None:
    hr: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "flux-apps"},
        "spec": {"targetNamespace": "apps"},
    }
    assert releases.release_name(hr) == "apps-web"  # Flux's default
    assert releases.storage_namespace(hr) == "flux-apps"  # the HelmRelease's namespace
    hr["spec"]["releaseName"] = "web"
    hr["spec"]["storageNamespace"] = "helm-store"
    assert (releases.release_name(hr), releases.storage_namespace(hr)) == ("web", "helm-store")
    hr["status"] = {"storageNamespace": "used"}
    assert releases.storage_namespace(hr) == "used"  # what helm-controller used


def test_manifest_objects_split_helms_documents() -> None:
    manifest = (
        "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        "  name: a\n---\n# Source: c/templates/empty.yaml\n\n---\napiVersion: apps/v1\n"
        "kind: Deployment\nmetadata:\n  name: b\n"
    )
    found = releases.manifest_objects(manifest)
    assert [(o["kind"], o["metadata"]["name"]) for o in found] == [
        ("ConfigMap", "a"),
        ("Deployment", "b"),
    ]
    with pytest.raises(BackendError, match="does not parse"):
        releases.manifest_objects("---\nkind: [unclosed\n")


class FakeReader:
    """The API as ``netweave.adapters.kubernetes.ObjectReader`` sees it: discovery documents
    and one live object."""

    def __init__(self, live: dict[str, Any] | None) -> None:
        self.live = live
        self.paths: list[str] = []

    def get(self, path: str, **query: str) -> dict[str, Any] | None:
        self.paths.append(path)
        if path == "/apis/apps/v1":
            resources = [{"name": "deployments", "kind": "Deployment", "namespaced": True}]
            return {"resources": [*resources, {"name": "deployments/scale", "kind": "Scale"}]}
        if path == "/apis/example.org/v1":
            return None  # a group the cluster does not serve
        return self.live if path == "/apis/apps/v1/namespaces/apps/deployments/web" else None


ANCHORED = """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &labels
    app: web
spec:
  replicas: 1
  template:
    metadata:
      labels: *labels
"""


def test_a_manifest_with_yaml_anchors_is_in_sync_with_the_same_live_object() -> None:
    live = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "uid": "u", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}}},
        "status": {"replicas": 1},
    }
    reader = FakeReader(live)
    (diff,) = releases.diff_release(reader, ANCHORED, "apps")  # type: ignore[arg-type]
    assert (diff.state, diff.diff, diff.namespace) == ("in-sync", "", "apps")
    live["spec"]["replicas"] = 2
    (diff,) = releases.diff_release(reader, ANCHORED, "apps")  # type: ignore[arg-type]
    assert diff.state == "modified" and "-  replicas: 1\n+  replicas: 2\n" in diff.diff


def test_an_object_of_a_kind_the_cluster_does_not_serve_is_missing() -> None:
    manifest = "---\napiVersion: example.org/v1\nkind: Widget\nmetadata:\n  name: w\n"
    reader = FakeReader(None)
    (diff,) = releases.diff_release(reader, manifest, "apps")  # type: ignore[arg-type]
    assert diff.state == "missing" and "-kind: Widget\n" in diff.diff
    assert reader.paths == ["/apis/example.org/v1"]  # no guessed path was read
