"""Hostile ``values.schema.json`` references: Helm's schema loader would fetch ``http(s)`` URLs
and read ``file:`` ones (relative references resolve against ``file:///``). The gateway must
refuse such charts before Helm loads them, at upload, install and dry-run, without any request
leaving and without echoing anything a file or an internal server holds."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chartkit import build_chart, chart_files, write_tgz
from conftest import AdapterFactory, upload_of
from netweave.adapters import DeploymentSpec, OperationContext, PackageInfo
from netweave.adapters.charts import check_schema_references
from netweave.adapters.chartschema import external_references, load_schema
from netweave.errors import InvalidInput
from netweave_helm.config import ArchiveLimits
from servers import serve_asgi

TOKEN = "schema-refs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
#: What the internal server answers: it must never show up anywhere.
SECRET = "INTERNAL-ONLY-7f3a"


class Listener:
    """A loopback HTTP server that counts every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                body = json.dumps({"type": "string", "description": SECRET}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


def _hostile_schemas(base: str) -> dict[str, dict[str, Any]]:
    return {
        "http-ref": {"$ref": f"{base}/internal-only.json"},
        "nested-http-ref": {
            "type": "object",
            "properties": {"greeting": {"$ref": f"{base}/greeting.json"}},
        },
        "custom-metaschema": {"$schema": f"{base}/meta.json", "type": "object"},
        "dynamic-ref": {"$dynamicRef": f"{base}/dyn.json"},
        # Relative to a remote $id: the compiler would fetch <base>/d/x.json.
        "id-relative": {"$id": f"{base}/d/", "properties": {"greeting": {"$ref": "x.json"}}},
        "file-ref": {"$ref": "file:///etc/passwd"},
        # Relative references resolve against file:///values.schema.json.
        "relative-ref": {"properties": {"greeting": {"$ref": "../../etc/passwd"}}},
    }


def _upload_http(base: str, archive: Path) -> httpx.Response:
    with archive.open("rb") as handle:
        return httpx.post(
            base + PACKAGES,
            headers=AUTH,
            data={"name": "evil", "artifactVersion": "1.0.0"},
            files={"chart": (archive.name, handle, "application/gzip")},
            timeout=60,
        )


def _no_leak(text: str) -> None:
    assert SECRET not in text
    assert "root:" not in text and "invalid character" not in text


def test_uploads_with_external_schema_references_are_refused_without_a_request(
    tmp_path: Path, listener: Listener
) -> None:
    from netweave.api.app import create_app
    from netweave.config import Settings

    settings = Settings.model_validate(
        {
            "dataDir": str(tmp_path / "data"),
            "api": {"token": TOKEN},
            "plugins": {
                "dms": [
                    {
                        "name": "helm-local",
                        "type": "helm",
                        "default": True,
                        "config": {"storage": {"kind": "local"}},
                    }
                ]
            },
        }
    )
    with serve_asgi(create_app(settings)) as base:
        for label, schema in _hostile_schemas(listener.url).items():
            archive = build_chart(tmp_path / label, "evil", "1.0.0", schema=schema)
            response = _upload_http(base, archive)
            assert response.status_code == 400, (label, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert "refers outside itself" in problem["detail"], (label, problem)
            assert problem["details"]["file"] == "values.schema.json"
            _no_leak(response.text)
        # A chart with a subchart (vendored as an archive) whose schema refers out.
        sub = _subchart_archive(tmp_path, {"$ref": f"{listener.url}/sub.json"})
        response = _upload_http(base, sub)
        assert response.status_code == 400, response.text
        assert response.json()["details"]["file"] == "charts/inner-0.1.0.tgz:values.schema.json"
        listed = httpx.get(base + PACKAGES, headers=AUTH, timeout=30).json()
    assert listener.requests == []
    assert not any(item.get("name") == "evil" for item in listed["items"])


def _subchart_archive(tmp_path: Path, schema: dict[str, Any]) -> Path:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for rel, data in chart_files("inner", "0.1.0", schema=schema).items():
            info = tarfile.TarInfo(f"inner/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    files = chart_files(
        "evil",
        "1.0.0",
        dependencies=[{"name": "inner", "version": "0.1.0"}],
    )
    files["charts/inner-0.1.0.tgz"] = inner.getvalue()
    (tmp_path / "sub").mkdir()
    return write_tgz(tmp_path / "sub" / "evil-1.0.0.tgz", files, top="evil")


_ops = iter(range(1, 1_000_000))


def _ctx() -> OperationContext:
    n = next(_ops)
    return OperationContext(operation_id=f"op-{n}", idempotency_key=f"key-{n}", attempt=1)


async def test_install_and_dry_run_of_a_stored_hostile_chart_fetch_nothing(
    adapter_factory: AdapterFactory, k8s_kubeconfig: Path, tmp_path: Path, listener: Listener
) -> None:
    """A chart that reached the repository without the upload checks (stored by an older
    gateway, or put there by hand) is refused when Helm would load it."""
    adapter = await adapter_factory({"cluster": {"kubeconfig": str(k8s_kubeconfig)}})
    for label, schema in _hostile_schemas(listener.url).items():
        version = f"1.0.{next(_ops)}"
        archive = build_chart(tmp_path / label, "evil", version, schema=schema)
        metadata = {"name": "evil", "version": version, "apiVersion": "v2"}
        entry = await adapter.store.put(archive, "evil", version, metadata, "sha256:" + "0" * 64)
        package = PackageInfo(
            backend_ref=f"evil:{entry.version}", name="evil", version=version, package_type="helm"
        )
        spec = DeploymentSpec(
            deployment_id=f"dep-{label}",
            name=f"r{next(_ops)}",
            namespace="team-a",
            package=package,
            values={"greeting": "hi"},
        )
        with pytest.raises(InvalidInput) as previewed:
            await adapter.preview_deployment(spec, None)
        _no_leak(previewed.value.message)
        assert "refers outside itself" in previewed.value.message, label
        with pytest.raises(InvalidInput) as installed:
            await adapter.create_deployment(spec, _ctx())
        _no_leak(installed.value.message)
    assert listener.requests == []


async def test_schemas_that_stay_inside_pass(
    adapter_factory: AdapterFactory, k8s_kubeconfig: Path, tmp_path: Path
) -> None:
    """Local pointers, anchors, a remote-looking $id and the built-in meta-schemas load nothing:
    such charts upload, preview and validate values as before."""
    adapter = await adapter_factory({"cluster": {"kubeconfig": str(k8s_kubeconfig)}})
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://vendor.example/chart.schema.json",
        "type": "object",
        "properties": {
            "greeting": {"$ref": "#/definitions/text"},
            "replicaCount": {
                "$ref": "http://json-schema.org/draft-07/schema#/definitions/nonNegativeInteger"
            },
        },
        "definitions": {"text": {"type": "string", "maxLength": 20}},
    }
    archive = build_chart(tmp_path / "ok", "fine", "1.0.0", schema=schema)
    package = await adapter.upload_package(upload_of(archive))
    spec = DeploymentSpec(
        deployment_id="dep-ok",
        name="ok",
        namespace="team-a",
        package=package,
        values={"greeting": "hello"},
    )
    preview = await adapter.preview_deployment(spec, None)
    assert preview.manifests
    bad = DeploymentSpec(
        deployment_id="dep-ok",
        name="ok",
        namespace="team-a",
        package=package,
        values={"greeting": "x" * 30},
    )
    with pytest.raises(InvalidInput):
        await adapter.preview_deployment(bad, None)


async def test_a_burst_of_uses_of_one_chart_scans_it_once(
    adapter_factory: AdapterFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent deployments of one chart wait for one scan of its schemas (a burst of
    creates scanned it once per create until the first scan ended); a refused chart refuses
    every waiter and is not taken as vetted: its next use scans it again."""
    import netweave_helm.adapter as module

    adapter = await adapter_factory()
    scans: list[Path] = []
    real = module.check_schema_references

    def counting(path: Path, limits: ArchiveLimits) -> None:
        scans.append(path)
        time.sleep(0.1)  # long enough for every caller of the burst to arrive meanwhile
        real(path, limits)

    monkeypatch.setattr(module, "check_schema_references", counting)
    package = await adapter.upload_package(upload_of(build_chart(tmp_path / "ok", "fine", "1.0.0")))
    scans.clear()  # the upload's own checks are not this path's
    paths = await asyncio.gather(*(adapter._chart_path(package) for _ in range(8)))
    assert len(set(paths)) == 1
    assert len(scans) == 1
    await adapter._chart_path(package)
    assert len(scans) == 1  # vetted: not scanned again

    schema = {"$ref": "https://schemas.example/values.json"}
    archive = build_chart(tmp_path / "bad", "evil", "2.0.0", schema=schema)
    metadata = {"name": "evil", "version": "2.0.0", "apiVersion": "v2"}
    await adapter.store.put(archive, "evil", "2.0.0", metadata, "sha256:" + "0" * 64)
    hostile = PackageInfo(
        backend_ref="evil:2.0.0", name="evil", version="2.0.0", package_type="helm"
    )
    scans.clear()
    outcomes = await asyncio.gather(
        *(adapter._chart_path(hostile) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, InvalidInput) for o in outcomes), outcomes
    assert len(scans) == 1
    with pytest.raises(InvalidInput):
        await adapter._chart_path(hostile)
    assert len(scans) == 2


@pytest.mark.parametrize(
    ("schema", "refused"),
    [
        ({"$ref": "#/definitions/x"}, []),
        ({"$ref": "#anchor"}, []),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, []),
        ({"$schema": "http://json-schema.org/draft-03/schema#"}, ["$schema"]),
        ({"$schema": "http://json-schema.org/draft-07/schema#/definitions/x"}, ["$schema"]),
        ({"$ref": "https://json-schema.org.evil.example/draft-07/schema"}, ["$ref"]),
        ({"$ref": "urn:uuid:1"}, ["$ref"]),
        ({"$recursiveRef": "x.json"}, ["$recursiveRef"]),
        ({"items": [{"properties": {"a": {"$ref": "//h/x"}}}]}, ["$ref"]),
        ({"$id": "file:///etc/passwd", "$ref": "#"}, []),
    ],
)
def test_external_references(schema: dict[str, Any], refused: list[str]) -> None:
    assert [r.keyword for r in external_references(schema)] == refused


def test_the_scan_reads_what_go_reads() -> None:
    # Two "$ref" keys in one object: parsers disagree on the winner, so none is accepted.
    with pytest.raises(ValueError, match="twice"):
        load_schema(b'{"$ref": "#/a", "$ref": "http://127.0.0.1/x"}')
    # Escaped key names are the same keys.
    parsed = load_schema(b'{"\\u0024ref": "file:///etc/passwd"}')
    assert [r.value for r in external_references(parsed)] == ["file:///etc/passwd"]
    with pytest.raises(ValueError, match="nested too deeply"):
        load_schema(b"[" * 100_000 + b"]" * 100_000)


def test_deeply_nested_subchart_archives_are_bounded(tmp_path: Path) -> None:
    data = b""
    for level in range(12):
        files = chart_files(f"c{level}", "0.1.0")
        if data:
            files[f"charts/c{level - 1}-0.1.0.tgz"] = data
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for rel, body in files.items():
                info = tarfile.TarInfo(f"c{level}/{rel}")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
        data = buffer.getvalue()
    path = tmp_path / "deep.tgz"
    path.write_bytes(data)
    with pytest.raises(InvalidInput, match="nested more than"):
        check_schema_references(path, ArchiveLimits())


def test_the_real_charts_pass(charts_dir: Path) -> None:
    archives = sorted(charts_dir.glob("*.tgz"))
    assert len(archives) >= 5
    for archive in archives:
        check_schema_references(archive, ArchiveLimits())
