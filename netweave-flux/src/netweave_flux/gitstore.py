"""Git mode: desired objects are YAML files in a Git repository that Flux syncs.

The ``git`` command line does the work (through ``subprocess`` in a thread): it speaks every
transport Flux users have (https with credential helpers, ssh with agents and known_hosts, git://,
file://) and its push semantics are the reference ones; dulwich has no equivalent of the
credential and ssh configuration users already have.

Every write is: fetch the branch, reset the working copy to it, apply the change to the file,
commit, push. A rejected push (the branch moved: another replica or a human pushed) starts over
from the new tip and re-applies the same change — bounded by ``pushAttempts``, never forced.

Layout: ``<path>/<namespace>/<kind>-<name>.yaml`` (kind lower-case), one object per file.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
)

from netweave_flux.config import GitSettings
from netweave_flux.manifests import Kind, labels, to_yaml
from netweave_flux.store import Change, Mutation

_USERINFO = re.compile(r"://[^/@\s]+@")
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "[remote rejected]")
_UNREACHABLE = (
    "could not resolve host",
    "connection refused",
    "unable to access",
    "could not read from remote",
    "unable to connect",
    "connection timed out",
    "does not appear to be a git repository",
    "failed to connect",
)


class GitStore:
    def __init__(self, settings: GitSettings, instance: str) -> None:
        self.settings = settings
        self.instance = instance
        self._lock = asyncio.Lock()
        self._own_dir = settings.workdir is None
        self.workdir = settings.workdir or Path(tempfile.mkdtemp(prefix="netweave-flux-git-"))
        self._fetched_at = 0.0
        #: Pushes the remote rejected because the branch had moved (each retried from its tip).
        self.rejected_pushes = 0
        self.commits = 0

    # -- git plumbing -----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "TMPDIR")
        }
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_CONFIG_NOSYSTEM="1",
            LC_ALL="C",
            GIT_AUTHOR_NAME=self.settings.author_name,
            GIT_AUTHOR_EMAIL=self.settings.author_email,
            GIT_COMMITTER_NAME=self.settings.author_name,
            GIT_COMMITTER_EMAIL=self.settings.author_email,
        )
        return env

    def _scrub(self, text: str) -> str:
        text = text.replace(self.settings.url.get_secret_value(), "<repository>")
        return _USERINFO.sub("://***@", text)

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=self.workdir,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=self.settings.command_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendTimeout(
                f"git {args[0]} did not finish within {self.settings.command_timeout:g} s"
            ) from exc
        except FileNotFoundError as exc:
            raise BackendError("git mode needs the git command line on the gateway's PATH") from exc
        if check and done.returncode != 0:
            raise self._error(args[0], done.stderr)
        return done

    def _error(self, command: str, stderr: str) -> BackendUnavailable | BackendError:
        text = self._scrub(stderr.strip())[-500:]
        if any(marker in stderr.lower() for marker in _UNREACHABLE):
            return BackendUnavailable(f"the Git repository is unreachable (git {command}): {text}")
        return BackendError(f"git {command} failed: {text}")

    def _ensure_repo(self) -> None:
        if (self.workdir / ".git").is_dir():
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q")
        self._git("remote", "add", "origin", self.settings.url.get_secret_value())

    def _sync(self, max_age: float = 0.0) -> None:
        """Make the working copy the remote branch's tip (or an empty branch)."""
        self._ensure_repo()
        if max_age > 0 and time.monotonic() - self._fetched_at < max_age:
            return
        branch = self.settings.branch
        self._git("fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*")
        remote = f"refs/remotes/origin/{branch}"
        has_remote = self._git("rev-parse", "-q", "--verify", remote, check=False).returncode == 0
        self._git("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        if has_remote:
            self._git("reset", "-q", "--hard", remote)
        else:
            # The branch does not exist yet: start it from nothing.
            self._git("update-ref", "-d", f"refs/heads/{branch}", check=False)
            self._git("rm", "-rq", "--cached", "--ignore-unmatch", ".")
        self._git("clean", "-fdxq")
        self._fetched_at = time.monotonic()

    def _file(self, kind: Kind, namespace: str, name: str) -> Path:
        return self.workdir / self.settings.path / namespace / f"{kind.kind.lower()}-{name}.yaml"

    def _read(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise BackendError(f"{path.name} in the Git repository is not valid YAML") from exc
        return data if isinstance(data, dict) else None

    def _commit_and_push(self, path: Path, message: str) -> bool:
        """Commit ``path``'s change and push; False when the push was rejected (branch moved)."""
        rel = str(path.relative_to(self.workdir))
        self._git("add", "-A", "--", rel)
        if self._git("diff", "--cached", "--quiet", check=False).returncode == 0:
            return True  # nothing to commit
        self._git("commit", "-q", "-m", message)
        done = self._git(
            "push",
            "-q",
            "--porcelain",
            "origin",
            f"HEAD:refs/heads/{self.settings.branch}",
            check=False,
        )
        if done.returncode == 0:
            self.commits += 1
            return True
        output = (done.stdout + done.stderr).lower()
        if any(marker in output for marker in _REJECTED):
            self.rejected_pushes += 1
            return False
        raise self._error("push", done.stdout + done.stderr)

    def _message(self, change: Change, kind: Kind, namespace: str, name: str) -> str:
        try:
            return self.settings.commit_message.format(
                action=change.action,
                kind=kind.kind,
                namespace=namespace,
                name=name,
                operation=change.operation,
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(
                "git.commitMessage may use {action}, {kind}, {namespace}, {name}, {operation}"
            ) from exc

    def _write(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        change: Change,
        edit: Any,
    ) -> Any:
        """Fetch, ``edit(path)`` → (result, wrote), commit, push; retried when the push is
        rejected."""
        message = self._message(change, kind, namespace, name)
        for _ in range(self.settings.push_attempts):
            self._sync()
            path = self._file(kind, namespace, name)
            result, wrote = edit(path)
            if not wrote or self._commit_and_push(path, message):
                return result
        raise Conflict(
            f"the Git branch {self.settings.branch!r} kept moving: {self.settings.push_attempts} "
            "pushes were rejected; nothing was forced"
        )

    # -- ObjectStore ------------------------------------------------------------------------

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        async with self._lock:

            def run() -> dict[str, Any] | None:
                self._sync(self.settings.read_cache_seconds)
                return self._read(self._file(kind, namespace, name))

            return await asyncio.to_thread(run)

    async def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        async with self._lock:

            def run() -> list[dict[str, Any]]:
                self._sync(self.settings.read_cache_seconds)
                root = self.workdir / self.settings.path
                pattern = f"{namespace or '*'}/{kind.kind.lower()}-*.yaml"
                out = []
                for path in sorted(root.glob(pattern))[:10_000]:
                    obj = self._read(path)
                    if obj is not None and obj.get("kind") == kind.kind:
                        out.append(obj)
                return out

            return await asyncio.to_thread(run)

    async def create(self, obj: dict[str, Any], change: Change) -> dict[str, Any]:
        meta = obj["metadata"]
        kind = _kind(obj)

        def edit(path: Path) -> tuple[dict[str, Any], bool]:
            if path.exists():
                raise AlreadyExists(f"{kind.kind} {meta['namespace']}/{meta['name']} exists in Git")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(to_yaml(obj), encoding="utf-8")
            return obj, True

        async with self._lock:
            result: dict[str, Any] = await asyncio.to_thread(
                self._write, kind, meta["namespace"], meta["name"], change, edit
            )
            return result

    async def mutate(
        self, kind: Kind, namespace: str, name: str, fn: Mutation, change: Change
    ) -> dict[str, Any]:
        from netweave.errors import NotFound

        def edit(path: Path) -> tuple[dict[str, Any], bool]:
            cur = self._read(path)
            if cur is None:
                raise NotFound(f"{kind.kind} {namespace}/{name} is not in the Git repository")
            if not fn(cur):
                return cur, False
            path.write_text(to_yaml(cur), encoding="utf-8")
            return cur, True

        async with self._lock:
            result: dict[str, Any] = await asyncio.to_thread(
                self._write, kind, namespace, name, change, edit
            )
            return result

    async def delete(self, kind: Kind, namespace: str, name: str, change: Change) -> bool:
        def edit(path: Path) -> tuple[bool, bool]:
            if not path.exists():
                return False, False
            path.unlink()
            return True, True

        async with self._lock:
            result: bool = await asyncio.to_thread(self._write, kind, namespace, name, change, edit)
            return result

    async def remote_head(self) -> str:
        def run() -> str:
            self._ensure_repo()
            done = self._git("ls-remote", "origin", f"refs/heads/{self.settings.branch}")
            return done.stdout.split("\t", 1)[0] or "(branch not created yet)"

        async with self._lock:
            return await asyncio.to_thread(run)

    async def close(self) -> None:
        if self._own_dir:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)

    def managed_labels(self) -> dict[str, str]:
        return labels(self.instance)


def _kind(obj: dict[str, Any]) -> Kind:
    from netweave_flux.manifests import DEPLOYMENT_KINDS, SOURCE_KINDS

    kind = {**SOURCE_KINDS, **DEPLOYMENT_KINDS}.get(str(obj.get("kind")))
    if kind is None:
        raise InvalidInput(f"netweave-flux does not write {obj.get('kind')!r} objects")
    return kind


__all__ = ["GitStore"]
