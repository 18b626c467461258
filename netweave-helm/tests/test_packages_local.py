"""Packages on the local chart repository: upload validation, metadata, list/get/delete."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import build_chart, chart_files, subchart_files, write_tgz
from conftest import REAL_CHARTS, AdapterFactory, upload_of
from netweave.adapters import PackageUpload
from netweave.errors import AlreadyExists, InvalidInput, NotFound
from netweave_helm.adapter import HelmAdapter
from netweave_helm.storage.local import LocalChartStore


async def _index(adapter: HelmAdapter) -> dict[str, Any]:
    """The served ``index.yaml`` (from memory; the directory's copy is written rarely)."""
    store = adapter.local_store
    assert store is not None
    served = await store.index_bytes()
    loaded: dict[str, Any] = yaml.safe_load(served)
    return loaded


# -- the real-world charts ---------------------------------------------------------------------

#: Facts from the charts README (and their Chart.yaml files).
REAL_FACTS: dict[str, dict[str, Any]] = {
    "free5gc-1.1.7.tgz": {"apiVersion": "v2", "dependencies": 13, "maintainers": 3},
    "infrastructure-3.0.0.tgz": {"apiVersion": "v1", "dependencies": 7, "appVersion": "1.0"},
    "nginx-21.1.23.tgz": {"apiVersion": "v2", "dependencies": 1, "keywords": "nginx"},
    "traefik-41.3.0.tgz": {"apiVersion": "v2", "kubeVersion": ">=1.25.0-0"},
    "velero-12.1.0.tgz": {"apiVersion": "v2", "kubeVersion": ">=1.16.0-0"},
    "hello-world-0.1.0.tgz": {"apiVersion": "v2", "appVersion": "1.16.0", "type": "application"},
}


@pytest.mark.parametrize("filename", sorted(REAL_CHARTS))
async def test_real_chart_uploads_with_metadata_and_extensions(
    filename: str, charts_dir: Path, tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    info = await local_adapter.upload_package(upload_of(charts_dir / filename))
    name, version = filename.removesuffix(".tgz").rsplit("-", 1)
    facts = REAL_FACTS[filename]

    assert info.backend_ref == f"{name}:{version}"
    assert (info.name, info.version, info.package_type) == (name, version, "helm")
    assert info.checksum == f"sha256:{REAL_CHARTS[filename]}"
    ext = info.extensions
    assert ext["chartVersion"] == version
    assert ext["apiVersion"] == facts["apiVersion"]
    for key in ("appVersion", "kubeVersion", "type"):
        if key in facts:
            assert ext[key] == facts[key]
    if "dependencies" in facts:
        assert len(ext["dependencies"]) == facts["dependencies"]
        assert all("name" in dep for dep in ext["dependencies"])
    if "maintainers" in facts:
        assert len(ext["maintainers"]) == facts["maintainers"]
    if "keywords" in facts:
        assert facts["keywords"] in ext["keywords"]
    if facts["apiVersion"] == "v2" and filename != "hello-world-0.1.0.tgz":
        assert ext["icon"].startswith("https://")
    # No lint errors, only info-level findings at most.
    assert all(w.startswith("[INFO]") for w in info.warnings)

    # Stored byte for byte and indexed with the same digest.
    stored = tmp_path / "repo" / filename
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == REAL_CHARTS[filename]
    entry = (await _index(local_adapter))["entries"][name][0]
    assert entry["digest"] == REAL_CHARTS[filename]
    assert entry["urls"] == [filename]
    assert entry["version"] == version

    again = await local_adapter.get_package(info.backend_ref)
    assert again.checksum == info.checksum
    assert (
        again.extensions["dependencies" if "dependencies" in facts else "apiVersion"]
        == ext["dependencies" if "dependencies" in facts else "apiVersion"]
    )


async def test_infrastructure_v1_dependencies_come_from_requirements(
    charts_dir: Path, local_adapter: HelmAdapter
) -> None:
    info = await local_adapter.upload_package(upload_of(charts_dir / "infrastructure-3.0.0.tgz"))
    deps = {d["name"]: d for d in info.extensions["dependencies"]}
    assert deps["kong"]["repository"] == "file://./subcharts/kong"
    assert deps["ric-common"]["repository"] == "@local"
    assert "type" not in info.extensions  # v1 charts have no type


async def test_free5gc_versionless_vendored_dependencies_count_as_resolved(
    charts_dir: Path, local_adapter: HelmAdapter
) -> None:
    info = await local_adapter.upload_package(upload_of(charts_dir / "free5gc-1.1.7.tgz"))
    deps = info.extensions["dependencies"]
    assert {d["name"] for d in deps} >= {"free5gc-amf", "mongodb"}
    assert all(not d.get("version") for d in deps)


# -- validation rules -------------------------------------------------------------------------


async def test_duplicate_name_and_version_is_409(
    charts_dir: Path, tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    await local_adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
    index_before = await _index(local_adapter)
    with pytest.raises(AlreadyExists) as caught:
        await local_adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
    assert caught.value.status == 409
    assert await _index(local_adapter) == index_before


async def test_concurrent_uploads_of_one_version_store_it_once(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    archive = build_chart(tmp_path / "src", "race", "1.0.0")
    results = await asyncio.gather(
        *(local_adapter.upload_package(upload_of(archive)) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, BaseException))
    assert len((await _index(local_adapter))["entries"]["race"]) == 1


@pytest.mark.parametrize(
    ("form_name", "form_version", "field"),
    [("other", "0.1.0", "name"), ("hello-world", "0.2.0", "artifactVersion")],
)
async def test_form_fields_must_match_chart_yaml(
    form_name: str, form_version: str, field: str, charts_dir: Path, local_adapter: HelmAdapter
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(
            upload_of(charts_dir / "hello-world-0.1.0.tgz", form_name, form_version)
        )
    assert caught.value.details["field"] == field
    assert await local_adapter.list_packages() == []


@pytest.mark.parametrize(
    ("chart_extra", "reason"),
    [
        ({"version": "1.0"}, "not a semantic version"),
        ({"version": "v1.0.0"}, "not a semantic version"),
        ({"bogus": "field"}, "does not match the chart schema"),
        ({"apiVersion": "v9"}, "does not match the chart schema"),
        ({"type": "plugin"}, "does not match the chart schema"),
        ({"name": "Bad/Name"}, "not a valid chart name"),
    ],
)
async def test_chart_yaml_is_checked_against_the_schema_and_semver(
    chart_extra: dict[str, Any], reason: str, tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    files = chart_files("schemachk", "1.0.0")
    data = yaml.safe_load(files["Chart.yaml"])
    data.update(chart_extra)
    files["Chart.yaml"] = yaml.safe_dump(data).encode()
    archive = write_tgz(tmp_path / "c.tgz", files, top="schemachk")
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(
            PackageUpload(name=str(data["name"]), version=str(data["version"]), archive=archive)
        )
    assert reason in caught.value.message


async def test_lint_errors_refuse_and_warnings_are_reported(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    broken = build_chart(
        tmp_path / "a", "broken", "1.0.0", templates={"bad.yaml": "{{ .Values.nope.deeper }}\n"}
    )
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(upload_of(broken))
    assert "helm lint" in caught.value.message
    assert "nil pointer" in caught.value.message

    warned = build_chart(
        tmp_path / "b",
        "warned",
        "1.0.0",
        templates={
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
        },
    )
    info = await local_adapter.upload_package(upload_of(warned))
    assert any(w.startswith("[WARNING]") and "Bad_Name" in w for w in info.warnings)


async def test_strict_lint_refuses_warnings(
    tmp_path: Path, adapter_factory: AdapterFactory
) -> None:
    adapter = await adapter_factory({"lint": {"strict": True}})
    warned = build_chart(
        tmp_path / "b",
        "warned",
        "1.0.0",
        templates={"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"},
    )
    with pytest.raises(InvalidInput):
        await adapter.upload_package(upload_of(warned))


async def test_defaults_violating_the_values_schema_are_refused(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"replicaCount": {"type": "integer", "minimum": 1}},
    }
    bad = build_chart(
        tmp_path / "a",
        "schemabad",
        "1.0.0",
        values={"greeting": "x", "replicaCount": "three", "tag": "1"},
        schema=schema,
    )
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(upload_of(bad))
    assert "replicaCount" in caught.value.message


async def test_unresolvable_dependency_is_refused(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    archive = build_chart(
        tmp_path / "a",
        "needsdep",
        "1.0.0",
        dependencies=[
            {"name": "nowhere", "version": "1.2.3", "repository": "https://charts.invalid/x"}
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(upload_of(archive))
    assert "nowhere" in caught.value.message
    assert caught.value.details["dependencies"]


async def test_dependency_in_wrong_version_is_refused(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    files = chart_files(
        "umbrella",
        "1.0.0",
        dependencies=[{"name": "sub", "version": "2.x.x", "repository": "file://../sub"}],
    )
    files.update(subchart_files("", "sub", "1.0.0"))
    archive = write_tgz(tmp_path / "umbrella-1.0.0.tgz", files, top="umbrella")
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(upload_of(archive))
    assert "wrong version" in caught.value.message


async def test_vendored_subchart_without_version_or_repository_is_accepted(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    files = chart_files(
        "umbrella", "1.0.0", dependencies=[{"name": "sub", "condition": "sub.enabled"}]
    )
    files.update(subchart_files("", "sub", "0.3.0"))
    archive = write_tgz(tmp_path / "umbrella-1.0.0.tgz", files, top="umbrella")
    info = await local_adapter.upload_package(upload_of(archive))
    [dep] = info.extensions["dependencies"]
    assert (dep["name"], dep["condition"], dep.get("version")) == ("sub", "sub.enabled", None)


async def test_v1_chart_with_requirements_and_nested_file_dependencies(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    files = chart_files("legacy", "2.0.0", apiVersion="v1", type=None)
    files["requirements.yaml"] = yaml.safe_dump(
        {
            "dependencies": [
                {"name": "mid", "version": "1.0.0", "repository": "file://./subcharts/mid"}
            ]
        }
    ).encode()
    mid = chart_files(
        "mid",
        "1.0.0",
        dependencies=[{"name": "leaf", "version": "^0.1.0", "repository": "file://../leaf"}],
    )
    files.update({f"charts/mid/{k}": v for k, v in mid.items()})
    files.update(subchart_files("charts/mid/", "leaf", "0.1.5"))
    # As in the RIC chart, the unpacked sources stay in subcharts/ too.
    files.update({f"subcharts/mid/{k}": v for k, v in mid.items()})
    archive = write_tgz(tmp_path / "legacy-2.0.0.tgz", files, top="legacy")
    info = await local_adapter.upload_package(upload_of(archive))
    assert info.extensions["apiVersion"] == "v1"
    assert [d["name"] for d in info.extensions["dependencies"]] == ["mid"]

    missing = chart_files("legacy", "2.0.1", apiVersion="v1", type=None)
    missing["requirements.yaml"] = files["requirements.yaml"]
    archive = write_tgz(tmp_path / "legacy-2.0.1.tgz", missing, top="legacy")
    with pytest.raises(InvalidInput) as caught:
        await local_adapter.upload_package(upload_of(archive))
    assert "mid" in caught.value.message


# -- the repository as the backend ----------------------------------------------------------


async def test_chart_added_outside_netweave_shows_up(
    charts_dir: Path, tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    repo = tmp_path / "repo"
    shutil.copy(charts_dir / "velero-12.1.0.tgz", repo / "velero-12.1.0.tgz")
    (repo / "garbage-1.0.0.tgz").write_bytes(b"not a chart")
    listed = {p.backend_ref: p for p in await local_adapter.list_packages()}
    assert set(listed) == {"velero:12.1.0"}  # the garbage file is ignored, not fatal
    velero = listed["velero:12.1.0"]
    assert velero.checksum == f"sha256:{REAL_CHARTS['velero-12.1.0.tgz']}"
    assert velero.extensions["kubeVersion"] == ">=1.16.0-0"
    served = (await _index(local_adapter))["entries"]["velero"][0]
    assert served["digest"] == REAL_CHARTS["velero-12.1.0.tgz"]

    (repo / "velero-12.1.0.tgz").unlink()
    assert await local_adapter.list_packages() == []
    assert "velero" not in (await _index(local_adapter))["entries"]


async def test_delete_removes_archive_and_index_entry(
    charts_dir: Path, tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    info = await local_adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
    await local_adapter.delete_package(info.backend_ref)
    assert not (tmp_path / "repo" / "hello-world-0.1.0.tgz").exists()
    assert "hello-world" not in (await _index(local_adapter))["entries"]
    with pytest.raises(NotFound):
        await local_adapter.delete_package(info.backend_ref)
    with pytest.raises(NotFound):
        await local_adapter.get_package(info.backend_ref)
    with pytest.raises(NotFound):
        await local_adapter.get_package("no-colon-here")


async def test_failed_index_write_leaves_nothing_behind(
    tmp_path: Path, local_adapter: HelmAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = build_chart(tmp_path / "src", "atomic", "1.0.0")

    def broken_write(self: LocalChartStore, lines: Any) -> None:
        raise OSError(28, "No space left on device")

    # The journal line is the index write of an upload.
    monkeypatch.setattr(LocalChartStore, "_append", broken_write)
    with pytest.raises(Exception):  # noqa: B017,PT011 - mapped by the template to BackendError
        await local_adapter.upload_package(upload_of(archive))
    monkeypatch.undo()
    repo = tmp_path / "repo"
    assert not list(repo.glob("*.tgz"))
    assert not [p for p in (repo / ".tmp").iterdir()]
    assert await local_adapter.list_packages() == []


async def test_repository_dir_defaults_under_the_data_dir(tmp_path: Path, charts_dir: Path) -> None:
    from netweave_helm.config import HelmConfig

    adapter = HelmAdapter("helm-x", HelmConfig.model_validate({"dataDir": str(tmp_path / "d")}))
    await adapter.start()
    try:
        await adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
        assert (tmp_path / "d" / "charts" / "hello-world-0.1.0.tgz").is_file()
        assert adapter.store.kind == "local"
    finally:
        await adapter.stop()


async def test_adapter_can_be_stopped_and_started_again(
    charts_dir: Path, tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    await local_adapter.stop()
    await local_adapter.start()
    info = await local_adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
    assert info.backend_ref == "hello-world:0.1.0"
