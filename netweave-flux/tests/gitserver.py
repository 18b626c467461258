"""Real Git for the git-mode tests: bare repositories served by ``git daemon`` on 127.0.0.1, and a
stand-in for Flux's own sync (the ``flux-system`` GitRepository + Kustomization with prune) that
applies the committed manifests to the K8s emulator through the real ``kubernetes`` client."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from netweave.testing import require_backend
from netweave.testing.k8s import KubernetesEmulator
from netweave_flux.manifests import DEPLOYMENT_KINDS, SOURCE_KINDS

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "someone-else",
    "GIT_AUTHOR_EMAIL": "someone@example.org",
    "GIT_COMMITTER_NAME": "someone-else",
    "GIT_COMMITTER_EMAIL": "someone@example.org",
}


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GitDaemon:
    """``git daemon`` serving every bare repository under ``root``; stoppable and restartable on
    the same port (for outages)."""

    def __init__(self, root: Path) -> None:
        if shutil.which("git") is None:
            require_backend("git is not installed (needed for the git-mode tests)")
        self.root = root
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # git daemon's access hook refuses a push while the flag file exists: the daemon then
        # closes the connection without a word (see crashing()).
        self._crash_flag = root.parent / f".git-daemon-{self.port}-crashing"
        self._hook = root.parent / f".git-daemon-{self.port}-hook"
        self._hook.write_text(
            f'#!/bin/sh\n[ "$1" = receive-pack ] && [ -e "{self._crash_flag}" ] && exit 1\nexit 0\n'
        )
        self._hook.chmod(0o755)

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={self.root}",
                "--export-all",
                "--enable=receive-pack",
                f"--access-hook={self._hook}",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    @contextlib.contextmanager
    def crashing(self) -> Iterator[None]:
        """Every push in the block loses its connection before the server answers (reads are
        served): a Git server dying mid-request, for the kit's KitFaults."""
        self._crash_flag.touch()
        try:
            yield
        finally:
            self._crash_flag.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None


@contextlib.contextmanager
def git_daemon(root: Path) -> Iterator[str]:
    """Serve every bare repository under ``root``; yields ``git://127.0.0.1:<port>``."""
    daemon = GitDaemon(root)
    daemon.start()
    try:
        yield daemon.url
    finally:
        daemon.stop()


def bare_repo(root: Path, name: str, branch: str = "main") -> Path:
    path = root / name
    git(root, "init", "-q", "--bare", "-b", branch, str(path))
    return path


class FluxGitSync:
    """Applies ``<path>/**/*.yaml`` of the branch to the cluster and prunes netweave's objects
    that left Git, like a Flux Kustomization with ``prune: true`` syncing that path."""

    def __init__(
        self, emulator: KubernetesEmulator, url: str, workdir: Path, path: str, branch: str = "main"
    ) -> None:
        self.api = k8s.CustomObjectsApi(emulator.kubernetes_client())
        self.url = url
        self.workdir = workdir
        self.path = path
        self.branch = branch
        self.applied_revisions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flux-git-sync", daemon=True)

    def __enter__(self) -> FluxGitSync:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.sync_once()
            except Exception as exc:  # a sync error is reported, like a Ready=False Kustomization
                self.errors.append(repr(exc))

    def sync_once(self) -> None:
        if not (self.workdir / ".git").is_dir():
            self.workdir.mkdir(parents=True, exist_ok=True)
            git(self.workdir, "init", "-q")
            git(self.workdir, "remote", "add", "origin", self.url)
        if "refs/heads/" + self.branch not in git(self.workdir, "ls-remote", "origin"):
            return
        git(self.workdir, "fetch", "-q", "origin", self.branch)
        git(self.workdir, "reset", "-q", "--hard", "FETCH_HEAD")
        head = git(self.workdir, "rev-parse", "HEAD").strip()
        wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        for file in sorted((self.workdir / self.path).glob("**/*.yaml")):
            doc = yaml.safe_load(file.read_text())
            meta = doc["metadata"]
            wanted[(doc["kind"], meta["namespace"], meta["name"])] = doc
        # Sources first, as Flux orders them (HelmReleases reference them).
        for key in sorted(wanted, key=lambda k: k[0] not in SOURCE_KINDS):
            self._apply(wanted[key])
        self._prune(set(wanted))
        if not self.applied_revisions or self.applied_revisions[-1] != head:
            self.applied_revisions.append(head)

    def _apply(self, doc: dict[str, Any]) -> None:
        kind = {**SOURCE_KINDS, **DEPLOYMENT_KINDS}[doc["kind"]]
        meta = doc["metadata"]
        try:
            cur = self.api.get_namespaced_custom_object(
                kind.group, kind.version, meta["namespace"], kind.plural, meta["name"]
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.api.create_namespaced_custom_object(
                kind.group,
                kind.version,
                meta["namespace"],
                kind.plural,
                doc,
                field_validation="Strict",
            )
            return
        cmeta = cur["metadata"]
        if cmeta.get("deletionTimestamp"):
            return
        same = (
            cur.get("spec") == doc.get("spec")
            and cmeta.get("labels") == meta.get("labels")
            and cmeta.get("annotations") == meta.get("annotations")
        )
        if same:
            return
        new = dict(doc)
        new["metadata"] = dict(meta)
        new["metadata"]["resourceVersion"] = cmeta["resourceVersion"]
        if cmeta.get("finalizers"):
            new["metadata"]["finalizers"] = cmeta["finalizers"]
        self.api.replace_namespaced_custom_object(
            kind.group,
            kind.version,
            meta["namespace"],
            kind.plural,
            meta["name"],
            new,
            field_validation="Strict",
        )

    def _prune(self, wanted: set[tuple[str, str, str]]) -> None:
        for kind in {**SOURCE_KINDS, **DEPLOYMENT_KINDS}.values():
            listed = self.api.list_cluster_custom_object(
                kind.group,
                kind.version,
                kind.plural,
                label_selector="app.kubernetes.io/managed-by=netweave",
            )
            for obj in listed["items"]:
                meta = obj["metadata"]
                key = (kind.kind, meta["namespace"], meta["name"])
                if key in wanted or meta.get("deletionTimestamp"):
                    continue
                with contextlib.suppress(ApiException):
                    self.api.delete_namespaced_custom_object(
                        kind.group, kind.version, meta["namespace"], kind.plural, meta["name"]
                    )
