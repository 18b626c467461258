"""Packages: Git and Helm sources registered by reference, checked through Argo CD's repo API."""

from __future__ import annotations

from pathlib import Path

import pytest
from argo_emulator import ArgoEmulator
from conftest import CHARTS, GIT, ctx, git_upload, helm_upload, make_config, spec
from netweave.adapters import PackageUpload
from netweave.errors import InvalidInput, NotFound
from netweave_argocd.adapter import ArgoCDAdapter
from netweave_argocd.sources import PackageSource


def repo_calls(argo: ArgoEmulator) -> list[str]:
    return [r.operation_id or "" for r in argo.requests if "Repository" in (r.operation_id or "")]


async def test_helm_source_is_checked_and_encoded(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    info = await adapter.upload_package(helm_upload("1.1.0"))
    assert (info.name, info.version, info.package_type) == ("web", "1.1.0", "helm")
    assert info.package_uri == CHARTS
    assert info.extensions == {
        "argocd.repoURL": CHARTS,
        "argocd.targetRevision": "1.1.0",
        "argocd.chart": "web",
    }
    assert info.backend_ref.startswith("helm:repoURL=https%3A%2F%2Fcharts.example.test")
    assert repo_calls(argo) == ["RepositoryService_GetHelmCharts"]
    query = dict(argo.requests[-1].query)
    assert query == {"appProject": "default"}
    # Stateless: the reference alone gives the package back.
    again = await adapter.get_package(info.backend_ref)
    assert (again.name, again.version, again.backend_ref) == ("web", "1.1.0", info.backend_ref)


async def test_git_source_is_checked_against_refs(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    info = await adapter.upload_package(git_upload())
    assert info.package_type == "git-repo"
    assert info.extensions["argocd.path"] == "deploy/web"
    assert repo_calls(argo) == ["RepositoryService_ListRefs"]
    for revision in ("main", "HEAD", "0123abcd", "v1.1.0"):
        await adapter.upload_package(git_upload(targetRevision=revision))
    with pytest.raises(InvalidInput, match="neither a branch nor a tag"):
        await adapter.upload_package(git_upload(targetRevision="v9"))


async def test_unknown_chart_version_or_repository_is_invalid_input(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    with pytest.raises(InvalidInput, match=r"no version '9.9.9'") as info:
        await adapter.upload_package(helm_upload("9.9.9"))
    assert info.value.details["field"] == "source.targetRevision"
    with pytest.raises(InvalidInput, match="'nope' is not in the Helm repository"):
        await adapter.upload_package(helm_upload(chart="nope"))
    missing = PackageUpload(
        name="web", version="1.0.0", package_type="helm", package_uri="https://nowhere.test/c"
    )
    with pytest.raises(InvalidInput, match="Argo CD cannot read the repository"):
        await adapter.upload_package(missing)
    git = PackageUpload(
        name="x",
        version="1",
        package_type="git-repo",
        package_uri="https://no.test/x.git",
        source={"path": "."},
    )
    with pytest.raises(InvalidInput, match=r"cannot read the repository https://no\.test/x\.git"):
        await adapter.upload_package(git)


async def test_archives_are_refused(adapter: ArgoCDAdapter, tmp_path: Path) -> None:
    archive = tmp_path / "web-1.0.0.tgz"
    archive.write_bytes(b"\x1f\x8b")
    upload = PackageUpload(name="web", version="1.0.0", package_type="helm", archive=archive)
    with pytest.raises(InvalidInput, match="registers sources"):
        await adapter.upload_package(upload)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (PackageUpload(name="w", version="1", package_type="oci", package_uri=CHARTS), "accepts"),
        (PackageUpload(name="w", version="1", package_uri=CHARTS), "say packageType"),
        (
            PackageUpload(
                name="w", version="1", package_uri=CHARTS, source={"chart": "w", "x": "1"}
            ),
            "unknown source field",
        ),
        (
            PackageUpload(name="w", version="1", package_uri="ftp://x/y", source={"chart": "w"}),
            "not a repository URL",
        ),
        (
            PackageUpload(name="w", version="1", package_uri=GIT, source={"path": "../etc"}),
            "relative path",
        ),
        (
            PackageUpload(
                name="w", version="1", package_type="helm", package_uri=CHARTS, source={"path": "x"}
            ),
            "names a chart, not a path",
        ),
        (
            PackageUpload(
                name="w", version="1", package_uri=CHARTS, source={"repoURL": GIT, "chart": "w"}
            ),
            "disagree",
        ),
        (
            PackageUpload(name="w", version="1 0", package_uri=CHARTS, source={"chart": "w"}),
            "targetRevision",
        ),
    ],
)
async def test_invalid_registrations(
    adapter: ArgoCDAdapter, argo: ArgoEmulator, upload: PackageUpload, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await adapter.upload_package(upload)
    assert repo_calls(argo) == []  # refused before asking Argo CD


async def test_verification_can_be_switched_off(argo: ArgoEmulator) -> None:
    adapter = ArgoCDAdapter("argo", make_config(argo, verifySources=False))
    try:
        info = await adapter.upload_package(helm_upload("7.7.7"))
        assert info.version == "7.7.7"
        assert repo_calls(argo) == []
    finally:
        await adapter.stop()


async def test_get_and_delete_of_unknown_refs_are_not_found(adapter: ArgoCDAdapter) -> None:
    for ref in ("kit/probe", "helm:chart=web", "oci:repoURL=x", ""):
        with pytest.raises(NotFound):
            await adapter.get_package(ref)
        with pytest.raises(NotFound):
            await adapter.delete_package(ref)
    good = await adapter.upload_package(helm_upload())
    await adapter.delete_package(good.backend_ref)  # nothing held in Argo CD: a no-op


async def test_list_packages_derives_from_managed_applications(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    assert await adapter.list_packages() == []
    web = await adapter.upload_package(helm_upload())
    git = await adapter.upload_package(git_upload())
    await adapter.create_deployment(spec(web, name="a"), ctx())
    await adapter.create_deployment(spec(web, name="b"), ctx())
    await adapter.create_deployment(spec(git, name="c"), ctx())
    listed = await adapter.list_packages()
    assert [(p.name, p.version, p.package_type) for p in listed] == [
        ("web", "1.0.0", "helm"),
        ("web-git", "1.0.0", "git-repo"),
    ]
    query = dict(
        next(r for r in argo.requests if r.operation_id == "ApplicationService_List").query
    )
    assert query["selector"] == "app.kubernetes.io/managed-by=netweave"
    assert query["projects"] == "default"


def test_refs_round_trip_and_are_stable() -> None:
    source = PackageSource(
        package_type="git-repo",
        repo_url="git@github.com:org/nf.git",
        target_revision="main",
        name="nf",
        version="2.0.0",
        path="charts/nf&co+x=%y",
    )
    ref = source.to_ref()
    assert PackageSource.from_ref(ref) == source
    assert source.to_ref() == ref


async def test_get_package_reports_what_argo_sees_now(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    info = await adapter.upload_package(helm_upload("1.1.0"))
    argo.helm_repos[CHARTS]["web"].remove("1.1.0")  # the chart version was withdrawn
    with pytest.raises(NotFound, match=r"no longer available.*no version '1\.1\.0'"):
        await adapter.get_package(info.backend_ref)
