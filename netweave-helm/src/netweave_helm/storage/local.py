"""A Helm chart repository directory: ``<name>-<version>.tgz`` files plus ``index.yaml``.

The gateway serves it as a standard Helm HTTP repository, so ``helm repo add`` works against it.
Writes are atomic: an archive is staged inside the directory (same filesystem), linked into its
final name (``os.link`` fails if the name exists, so two concurrent uploads of one version
cannot both win), and ``index.yaml`` is rewritten to a temporary file and renamed over the old
one. A ``flock`` on ``.lock`` serialises writers across processes sharing the directory.

Archives dropped into the directory by other means show up: listing reconciles ``index.yaml``
with the ``*.tgz`` files present (a new file is inspected like an upload, minus lint).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from netweave.errors import AlreadyExists, BackendError, NetweaveError, NotFound

from netweave_helm.archives import inspect_archive
from netweave_helm.config import ArchiveLimits
from netweave_helm.storage.base import ChartEntry, ChartStore
from netweave_helm.validation import file_digest

_log = logging.getLogger("netweave_helm.storage.local")
ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.tgz$")
INDEX = "index.yaml"
#: Index fields that are repository bookkeeping, not chart metadata.
_BOOKKEEPING = ("urls", "created", "digest", "removed")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def archive_filename(name: str, version: str) -> str:
    return f"{name}-{version}.tgz"


class LocalChartStore(ChartStore):
    kind = "local"

    def __init__(self, directory: Path, limits: ArchiveLimits, *, served_at: str | None) -> None:
        self.directory = directory
        self.limits = limits
        self.served_at = served_at
        self._lock = asyncio.Lock()

    @property
    def location(self) -> str:
        return self.served_at or str(self.directory)

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)

    def _prepare(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / ".tmp").mkdir(exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"cannot create the chart repository directory {self.directory}: {exc.strerror}"
            ) from exc

    # -- locking ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        self._prepare()
        with (self.directory / ".lock").open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------------------------

    async def list_charts(self) -> list[ChartEntry]:
        async with self._lock:
            index = await asyncio.to_thread(self._reconciled_index)
        return self._entries(index)

    async def index_bytes(self) -> bytes:
        """``index.yaml`` as served, reconciled with the directory first."""
        async with self._lock:
            await asyncio.to_thread(self._reconciled_index)
            return await asyncio.to_thread((self.directory / INDEX).read_bytes)

    def archive_path(self, filename: str) -> Path | None:
        """The archive a client asks for by file name, or ``None`` (never outside the dir)."""
        if not ARCHIVE_NAME.match(filename):
            return None
        path = self.directory / filename
        return path if path.is_file() and not path.is_symlink() else None

    async def fetch(self, name: str, version: str, directory: Path) -> Path:
        # The usual file name first: no index read on the deployment path. One stat in the
        # local data directory (where the store's SQLite file is, read inline as well) costs
        # less than a hand-over to a thread and back.
        direct = self.archive_path(archive_filename(name, version))
        if direct is not None:
            return direct
        entry = await self.get(name, version)
        filename = str(entry.extra.get("filename", archive_filename(name, version)))
        path = self.archive_path(filename)
        if path is None:
            raise NotFound(f"chart {name}:{version}: archive {filename} is missing")
        return path

    def _entries(self, index: dict[str, Any]) -> list[ChartEntry]:
        entries: list[ChartEntry] = []
        for name, versions in sorted((index.get("entries") or {}).items()):
            for item in versions or []:
                metadata = {k: v for k, v in item.items() if k not in _BOOKKEEPING}
                urls = item.get("urls") or []
                filename = str(urls[0]) if urls else archive_filename(name, item["version"])
                digest = item.get("digest")
                entries.append(
                    ChartEntry(
                        name=str(name),
                        version=str(item.get("version")),
                        metadata=metadata,
                        digest=f"sha256:{digest}" if digest else None,
                        uri=f"{self.served_at}/{filename}" if self.served_at else None,
                        created=str(item.get("created")) if item.get("created") else None,
                        extra={"filename": filename},
                    )
                )
        return entries

    def _read_index(self) -> dict[str, Any]:
        path = self.directory / INDEX
        try:
            with path.open("rb") as handle:
                loaded = yaml.load(handle, Loader=yaml.CSafeLoader)
        except FileNotFoundError:
            return {"apiVersion": "v1", "entries": {}}
        except (OSError, yaml.YAMLError) as exc:
            _log.warning("%s is unreadable (%s); rebuilding it", path, exc)
            return {"apiVersion": "v1", "entries": {}}
        if not isinstance(loaded, dict) or not isinstance(loaded.get("entries") or {}, dict):
            return {"apiVersion": "v1", "entries": {}}
        loaded.setdefault("entries", {})
        if loaded["entries"] is None:
            loaded["entries"] = {}
        return loaded

    def _reconciled_index(self) -> dict[str, Any]:
        """Read ``index.yaml``; add archives it lacks, drop entries whose file is gone."""
        self._prepare()
        index = self._read_index()
        files = {
            entry.name
            for entry in os.scandir(self.directory)
            if entry.is_file(follow_symlinks=False) and ARCHIVE_NAME.match(entry.name)
        }
        known: set[str] = set()
        changed = False
        for name in list(index["entries"]):
            versions = index["entries"][name] or []
            kept = [v for v in versions if (v.get("urls") or [""])[0] in files]
            known.update((v.get("urls") or [""])[0] for v in kept)
            if len(kept) != len(versions):
                changed = True
            if kept:
                index["entries"][name] = kept
            else:
                del index["entries"][name]
        for filename in sorted(files - known):
            item = self._describe_foreign(filename)
            if item is not None:
                index["entries"].setdefault(item["name"], []).append(item)
                changed = True
        if changed or not (self.directory / INDEX).exists():
            with self._file_lock():
                self._write_index(index)
        return index

    def _describe_foreign(self, filename: str) -> dict[str, Any] | None:
        """Index entry for an archive netweave did not write (inspected, never trusted)."""
        path = self.directory / filename
        try:
            facts = inspect_archive(path, self.limits)
        except NetweaveError as exc:
            _log.warning("ignoring %s in the chart repository: %s", path, exc.message)
            return None
        metadata = dict(facts.chart_yaml)
        if "name" not in metadata or "version" not in metadata:
            _log.warning("ignoring %s: Chart.yaml lacks name or version", path)
            return None
        if facts.requirements and "dependencies" not in metadata:
            metadata["dependencies"] = facts.requirements.get("dependencies") or []
        metadata["name"] = str(metadata["name"])
        metadata["version"] = str(metadata["version"])
        return self._index_item(metadata, file_digest(path), filename)

    @staticmethod
    def _index_item(metadata: dict[str, Any], digest: str, filename: str) -> dict[str, Any]:
        item = {k: v for k, v in metadata.items() if k not in _BOOKKEEPING}
        item.update(
            {
                "urls": [filename],
                "created": _now(),
                "digest": digest.removeprefix("sha256:"),
            }
        )
        return item

    def _write_index(self, index: dict[str, Any]) -> None:
        for versions in index["entries"].values():
            versions.sort(key=lambda v: str(v.get("created", "")), reverse=True)
        index["apiVersion"] = "v1"
        index["generated"] = _now()
        text = yaml.dump(index, Dumper=yaml.CSafeDumper, sort_keys=True, allow_unicode=True)
        fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".yaml", dir=self.directory / ".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / INDEX)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # -- writing ---------------------------------------------------------------------------

    async def put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        filename = archive_filename(name, version)
        if not ARCHIVE_NAME.match(filename):
            raise BackendError(f"cannot store {name}:{version} under a safe file name")
        async with self._lock:
            await asyncio.to_thread(self._put, archive, filename, metadata, digest)
        return await self.get(name, version)

    def _put(self, archive: Path, filename: str, metadata: dict[str, Any], digest: str) -> None:
        with self._file_lock():
            index = self._read_index()
            name = str(metadata["name"])
            version = str(metadata["version"])
            if (
                any(str(v.get("version")) == version for v in index["entries"].get(name) or [])
                or (self.directory / filename).exists()
            ):
                raise AlreadyExists(
                    f"chart {name}:{version} already exists in the repository",
                    details={"name": name, "version": version},
                )
            fd, staged = tempfile.mkstemp(
                prefix=".upload-", suffix=".tgz", dir=self.directory / ".tmp"
            )
            os.close(fd)
            final = self.directory / filename
            linked = False
            try:
                try:
                    # Same filesystem (the usual case for the gateway's upload spool): a hard
                    # link of the validated file, no copy of a possibly large archive.
                    os.unlink(staged)
                    os.link(archive, staged)
                except OSError:
                    shutil.copyfile(archive, staged)
                try:
                    os.link(staged, final)
                except FileExistsError:
                    raise AlreadyExists(
                        f"chart {name}:{version} already exists in the repository",
                        details={"name": name, "version": version},
                    ) from None
                linked = True
                index["entries"].setdefault(name, []).append(
                    self._index_item(metadata, digest, filename)
                )
                self._write_index(index)
            except BaseException:
                if linked:
                    with contextlib.suppress(OSError):
                        final.unlink()
                raise
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(staged)

    async def delete(self, name: str, version: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self._reconciled_index)
            await asyncio.to_thread(self._delete, name, version)

    def _delete(self, name: str, version: str) -> None:
        with self._file_lock():
            index = self._read_index()
            versions = index["entries"].get(name) or []
            match = [v for v in versions if str(v.get("version")) == version]
            if not match:
                raise NotFound(f"chart {name}:{version} not found in the repository")
            remaining = [v for v in versions if str(v.get("version")) != version]
            if remaining:
                index["entries"][name] = remaining
            else:
                del index["entries"][name]
            self._write_index(index)
            for item in match:
                filename = (item.get("urls") or [archive_filename(name, version)])[0]
                path = self.archive_path(str(filename))
                if path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()


__all__ = ["ARCHIVE_NAME", "LocalChartStore", "archive_filename"]
