"""Git mode: manifests committed and pushed to a bare repository served by ``git daemon`` on
127.0.0.1; a stand-in for Flux's sync applies them to the K8s emulator, where the simulated Flux
reconciles them and the adapter reads their state."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from flux_sim import FluxSimulator
from gitserver import FluxGitSync, bare_repo, git, git_daemon
from netweave.adapters import DeploymentChange, DeploymentSpec, OperationContext, PackageUpload
from netweave.errors import BackendUnavailable, Conflict, NotFound
from netweave.models import DeploymentStatus
from netweave.testing.k8s import KubernetesEmulator
from netweave_flux.adapter import FluxAdapter
from netweave_flux.config import FluxConfig
from netweave_flux.gitstore import GitStore

PATH = "clusters/edge-1"
_ids = itertools.count(1)


def ctx() -> OperationContext:
    n = next(_ids)
    return OperationContext(operation_id=f"git-op-{n}", idempotency_key=f"git-op-{n}:0")


@pytest.fixture
def git_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "srv"
    root.mkdir()
    bare_repo(root, "fleet.git")
    with git_daemon(root) as base:
        yield f"{base}/fleet.git", root / "fleet.git"


def git_adapter(kubeconfig: Path, url: str, workdir: Path, **git_extra: Any) -> FluxAdapter:
    config = FluxConfig.model_validate(
        {
            "mode": "git",
            "cluster": {"kubeconfig": str(kubeconfig), "connectRetries": 0},
            "timeouts": {"read": 20, "write": 60},
            "git": {
                "url": url,
                "branch": "main",
                "path": PATH,
                "authorName": "netweave-bot",
                "authorEmail": "bot@netweave.example",
                "workdir": str(workdir),
                "resumeWait": 20,
                **git_extra,
            },
        }
    )
    return FluxAdapter("flux-git", config)


@pytest_asyncio.fixture
async def gadapter(
    kubeconfig: Path, git_root: tuple[str, Path], tmp_path: Path, flux: FluxSimulator
) -> AsyncIterator[FluxAdapter]:
    adapter = git_adapter(kubeconfig, git_root[0], tmp_path / "work")
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


@pytest.fixture
def sync(
    emulator: KubernetesEmulator, git_root: tuple[str, Path], tmp_path: Path
) -> Iterator[FluxGitSync]:
    with FluxGitSync(emulator, git_root[0], tmp_path / "flux-sync", PATH) as syncer:
        yield syncer
    assert not syncer.errors, syncer.errors


def helm(version: str = "1.0.0") -> PackageUpload:
    return PackageUpload(
        name="podinfo",
        version=version,
        package_type="helm",
        package_uri="https://stefanprodan.github.io/podinfo",
        source={"chart": "podinfo"},
    )


def checkout(url: str, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", "-b", "main", url, str(dest))
    return dest


async def wait_for(adapter: FluxAdapter, ref: str, pred: Any, what: str) -> Any:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        try:
            last = await adapter.get_deployment(ref)
        except NotFound as exc:
            last = exc
        if pred(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last {last}")


def deployed(rev: int) -> Any:
    return lambda i: (
        not isinstance(i, Exception) and i.status is DeploymentStatus.DEPLOYED and i.revision == rev
    )


async def test_git_mode_lifecycle(
    gadapter: FluxAdapter,
    sync: FluxGitSync,
    git_root: tuple[str, Path],
    tmp_path: Path,
    emulator: KubernetesEmulator,
    flux: FluxSimulator,
) -> None:
    url = git_root[0]
    pkg = await gadapter.upload_package(helm())
    assert pkg.backend_ref == "flux-system/HelmRepository/podinfo-1.0.0"
    listed = [p.backend_ref for p in await gadapter.list_packages()]
    assert listed == [pkg.backend_ref]
    spec = DeploymentSpec(
        deployment_id="d-1", name="web", namespace="apps", package=pkg, values={"replicaCount": 1}
    )
    created = await gadapter.create_deployment(spec, ctx())
    assert created.backend_ref == "apps/HelmRelease/web"
    assert created.status in (DeploymentStatus.PENDING, DeploymentStatus.DEPLOYING)

    # What was pushed: one YAML file per object, with the configured author and message.
    clone = checkout(url, tmp_path / "check")
    files = sorted(str(p.relative_to(clone)) for p in clone.glob("clusters/**/*.yaml"))
    assert files == [
        "clusters/edge-1/apps/helmrelease-web.yaml",
        "clusters/edge-1/flux-system/helmrepository-podinfo-1.0.0.yaml",
    ]
    hr = yaml.safe_load((clone / files[0]).read_text())
    assert hr["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert hr["spec"]["chart"]["spec"]["chart"] == "podinfo"
    log = git(clone, "log", "--format=%an <%ae>|%s", "main")
    assert log.splitlines()[0].startswith("netweave-bot <bot@netweave.example>|netweave: create")
    assert len(log.splitlines()) == 2

    first = await wait_for(gadapter, created.backend_ref, deployed(1), "first release")
    assert first.package_version == "1.0.0"
    # The synced object passed the CRD schema on its way into the emulator.
    assert emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps") is not None

    await gadapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"ui": {"color": "blue"}}), ctx()
    )
    second = await wait_for(gadapter, created.backend_ref, deployed(2), "values update")
    assert second.values == {"replicaCount": 1, "ui": {"color": "blue"}}
    await gadapter.scale_deployment(created.backend_ref, 2, ctx())
    await wait_for(gadapter, created.backend_ref, deployed(3), "scale")
    await gadapter.rollback_deployment(created.backend_ref, 1, ctx())
    back = await wait_for(gadapter, created.backend_ref, deployed(4), "rollback")
    assert back.values == {"replicaCount": 1}
    history = await gadapter.get_history(created.backend_ref)
    assert [h.revision for h in history][:4] == [4, 3, 2, 1]

    # Suspend through Git, then delete: netweave commits the resume, waits for Flux to sync it,
    # then removes the file; the release is uninstalled, not orphaned.
    await gadapter.update_deployment(created.backend_ref, DeploymentChange(suspend=True), ctx())
    await wait_for(
        gadapter,
        created.backend_ref,
        lambda i: not isinstance(i, Exception) and i.status is DeploymentStatus.SUSPENDED,
        "suspended",
    )
    await gadapter.delete_deployment(created.backend_ref, ctx())
    with pytest.raises(NotFound):
        await gadapter.get_deployment(created.backend_ref)
    assert "apps/web" in flux.uninstalled
    assert emulator.get("apps/v1", "Deployment", "web", "apps") is None
    git(clone, "pull", "-q")
    assert not (clone / files[0]).exists()
    messages = git(clone, "log", "--format=%s", "main").splitlines()
    assert messages[0].startswith("netweave: delete HelmRelease apps/web")
    assert messages[1].startswith("netweave: resume before delete HelmRelease apps/web")


async def test_a_rejected_push_is_refetched_and_reapplied(
    gadapter: FluxAdapter, git_root: tuple[str, Path], tmp_path: Path
) -> None:
    url = git_root[0]
    await gadapter.upload_package(helm("1.0.0"))
    other = checkout(url, tmp_path / "other")
    store = gadapter.store
    assert isinstance(store, GitStore)
    original = store._commit_and_push
    raced: list[str] = []

    def racing(path: Path, message: str) -> bool:
        if not raced:
            # Someone else pushes between our fetch and our push.
            (other / "README.md").write_text("edited by a human\n")
            git(other, "add", "README.md")
            git(other, "commit", "-q", "-m", "human edit")
            git(other, "push", "-q", "origin", "main")
            raced.append(git(other, "rev-parse", "HEAD").strip())
        return original(path, message)

    store._commit_and_push = racing  # type: ignore[method-assign]
    await gadapter.upload_package(helm("2.0.0"))
    assert store.rejected_pushes == 1
    check = checkout(url, tmp_path / "check")
    assert (check / "README.md").read_text() == "edited by a human\n"
    assert (check / PATH / "flux-system" / "helmrepository-podinfo-2.0.0.yaml").is_file()
    # Never forced: the human's commit is an ancestor of the new tip.
    git(check, "merge-base", "--is-ancestor", raced[0], "HEAD")
    subjects = git(check, "log", "--format=%s").splitlines()
    assert subjects[:2] == [
        "netweave: register package HelmRepository flux-system/podinfo-2.0.0 (operation -)",
        "human edit",
    ]


async def test_push_attempts_are_bounded_and_never_forced(
    kubeconfig: Path, git_root: tuple[str, Path], tmp_path: Path
) -> None:
    url = git_root[0]
    adapter = git_adapter(kubeconfig, url, tmp_path / "work", pushAttempts=2)
    await adapter.start()
    await adapter.upload_package(helm("1.0.0"))
    other = checkout(url, tmp_path / "other")
    store = adapter.store
    assert isinstance(store, GitStore)
    original = store._commit_and_push
    pushed: list[str] = []

    def always_racing(path: Path, message: str) -> bool:
        (other / "counter.txt").write_text(f"{len(pushed)}\n")
        git(other, "add", "counter.txt")
        git(other, "commit", "-q", "-m", f"race {len(pushed)}")
        git(other, "push", "-q", "origin", "main")
        pushed.append(git(other, "rev-parse", "HEAD").strip())
        return original(path, message)

    store._commit_and_push = always_racing  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="kept moving"):
        await adapter.upload_package(helm("2.0.0"))
    assert store.rejected_pushes == 2
    tip = git(other, "ls-remote", "origin", "refs/heads/main").split()[0]
    assert tip == pushed[-1], "the other side's commits must stay: no force-push"
    await adapter.stop()


async def test_two_gateways_push_concurrently(
    kubeconfig: Path, git_root: tuple[str, Path], tmp_path: Path
) -> None:
    url = git_root[0]
    a = git_adapter(kubeconfig, url, tmp_path / "wa")
    b = git_adapter(kubeconfig, url, tmp_path / "wb")
    await a.start()
    await b.start()
    await asyncio.gather(
        *(a.upload_package(helm(f"1.{i}.0")) for i in range(4)),
        *(b.upload_package(helm(f"2.{i}.0")) for i in range(4)),
    )
    check = checkout(url, tmp_path / "check")
    names = sorted(p.name for p in (check / PATH / "flux-system").glob("*.yaml"))
    assert len(names) == 8
    assert len(git(check, "log", "--format=%H").splitlines()) == 8
    listed = {p.version for p in await a.list_packages()}
    assert len(listed) == 8
    await a.stop()
    await b.stop()


def test_credentials_never_reach_messages(tmp_path: Path) -> None:
    from netweave_flux.config import GitSettings

    store = GitStore(
        GitSettings.model_validate(
            {"url": "https://bot:s3cret@git.example.org/fleet.git", "workdir": str(tmp_path)}
        ),
        "x",
    )
    text = store._scrub(
        "fatal: unable to access 'https://bot:s3cret@git.example.org/other.git/': refused"
    )
    assert "s3cret" not in text and "://***@git.example.org" in text


async def test_unreachable_repository_is_backend_unavailable(
    kubeconfig: Path, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = git_adapter(kubeconfig, f"git://127.0.0.1:{port}/none.git", tmp_path / "w")
    await adapter.start()
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await adapter.upload_package(helm())
    health = await adapter.health()
    assert health.healthy is False
    assert f"127.0.0.1:{port}" not in (health.message or "")
    await adapter.stop()


async def test_git_mode_kustomization(
    gadapter: FluxAdapter,
    sync: FluxGitSync,
    git_root: tuple[str, Path],
    tmp_path: Path,
    emulator: KubernetesEmulator,
) -> None:
    pkg = await gadapter.upload_package(
        PackageUpload(
            name="shop",
            version="1.0.0",
            package_type="git-repo",
            package_uri="https://git.example.org/shop.git",
            source={"tag": "v1.0.0", "path": "./deploy/prod"},
        )
    )
    spec = DeploymentSpec(
        deployment_id="d-2", name="shop", namespace="apps", package=pkg, values={"replicas": 2}
    )
    created = await gadapter.create_deployment(spec, ctx())
    assert created.backend_ref == "apps/Kustomization/shop"
    first = await wait_for(gadapter, created.backend_ref, deployed(1), "first apply")
    assert first.values == {"replicas": "2"}
    ks = emulator.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop", "apps")
    assert ks is not None and ks["spec"]["path"] == "./deploy/prod"
    await gadapter.scale_deployment(created.backend_ref, 3, ctx())
    await wait_for(gadapter, created.backend_ref, deployed(2), "scale")
    workload = emulator.get("apps/v1", "Deployment", "shop", "apps")
    assert workload is not None and workload["spec"]["replicas"] == 3
    await gadapter.rollback_deployment(created.backend_ref, 0, ctx())
    back = await wait_for(gadapter, created.backend_ref, deployed(3), "rollback")
    assert back.values == {"replicas": "2"}
    await gadapter.delete_deployment(created.backend_ref, ctx())
    with pytest.raises(NotFound):
        await gadapter.get_deployment(created.backend_ref)
    assert emulator.get("apps/v1", "Deployment", "shop", "apps") is None
    clone = checkout(git_root[0], tmp_path / "check")
    assert not list(clone.glob(f"{PATH}/apps/*.yaml"))


async def test_removed_from_git_is_deleting_until_flux_prunes_it(
    gadapter: FluxAdapter,
    git_root: tuple[str, Path],
    tmp_path: Path,
    emulator: KubernetesEmulator,
) -> None:
    url = git_root[0]
    syncer = FluxGitSync(emulator, url, tmp_path / "manual-sync", PATH)  # driven by hand
    pkg = await gadapter.upload_package(helm())
    spec = DeploymentSpec(deployment_id="d-3", name="gone", namespace="apps", package=pkg)
    created = await gadapter.create_deployment(spec, ctx())
    pending = await gadapter.get_deployment(created.backend_ref)
    assert pending.status is DeploymentStatus.PENDING
    await asyncio.to_thread(syncer.sync_once)
    await wait_for(gadapter, created.backend_ref, deployed(1), "synced")
    human = checkout(url, tmp_path / "human")
    git(human, "rm", "-q", f"{PATH}/apps/helmrelease-gone.yaml")
    git(human, "commit", "-q", "-m", "remove gone")
    git(human, "push", "-q", "origin", "main")
    deleting = await gadapter.get_deployment(created.backend_ref)
    assert deleting.status is DeploymentStatus.DELETING
    assert "removed from Git" in (deleting.message or "")
    await asyncio.to_thread(syncer.sync_once)  # Flux prunes it
    await wait_for(gadapter, created.backend_ref, lambda i: isinstance(i, NotFound), "pruned")
