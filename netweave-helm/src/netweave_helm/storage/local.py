"""A Helm chart repository directory: ``<name>-<version>.tgz`` files plus ``index.yaml``.

The gateway serves it as a standard Helm HTTP repository, so ``helm repo add`` works against it.

Cost per call is O(changed), not O(charts stored):

* The index lives in memory as one raw JSON entry per archive (no parsed ``index.yaml``), and is
  persisted under ``.index/`` as a snapshot plus an append-only journal: an upload or a delete
  appends one line; the snapshot is rewritten only once the journal is as long as the index
  (amortised O(1)). Replicas sharing the directory read each other's journal lines (a stat per
  call tells whether there are new ones).
* ``index.yaml`` is served from memory: rendered from the raw entries (JSON, which is YAML)
  only when something changed and someone reads it, kept with its ``ETag`` until the next
  change. The file in the directory is a courtesy copy (for whoever reads the directory itself,
  and a seed if the saved index is ever lost): it is written at ``close()`` and at most every
  ``flush_interval`` seconds after a change, rendered from a copy of the index with no lock
  held, so writes never wait for a rewrite of a 100 000-entry file. The saved index, not this
  file, is what a restart reads.
* Archives added or removed by other means are noticed by directory delta: the directory's
  mtime is compared on each call (journal lines carry the mtime before and after each change
  made through netweave, so those do not trigger a scan); when it moved, the file *names* are
  listed and only new archives are inspected. A scan also runs every ``rescan_interval``
  seconds, for changes landing within one mtime tick of ours. Each scan records (``.index/
  scanned``) the journal position and the directory mtime it found in step, so a start whose
  directory moved only by journaled changes since then skips the listing.
* The first load (snapshot + journal; or, without them, a corrupt or foreign ``index.yaml`` and
  inspection of unknown archives) starts in ``start()``, which waits for it up to
  ``start_wait`` seconds and then lets it run in the background. Calls wait for it up to
  ``load_wait`` seconds, then get 503 with ``Retry-After`` — never an empty or partial
  catalogue presented as complete.

Writes are atomic: an archive is staged inside the directory (same filesystem), linked into its
final name (``os.link`` fails if the name exists, so two concurrent uploads of one version
cannot both win), and its journal line is appended under a ``flock`` on ``.lock`` that
serialises writers across processes sharing the directory.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import yaml
from netweave.errors import AlreadyExists, BackendError, BackendUnavailable, NetweaveError, NotFound

from netweave_helm.archives import inspect_archive
from netweave_helm.config import ArchiveLimits
from netweave_helm.storage.base import ChartEntry, ChartListing, ChartStore, Skip
from netweave_helm.validation import file_digest

_log = logging.getLogger("netweave_helm.storage.local")
ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.tgz$")
INDEX = "index.yaml"
STATE_DIR = ".index"
SNAPSHOT = "snapshot.jsonl"
JOURNAL = "journal.jsonl"
#: "<head> <journal position> <directory mtime ns>" of the last directory listing that found
#: the index in step: a start that finds all three unchanged need not list the directory.
SCANNED = "scanned"
#: Index fields that are repository bookkeeping, not chart metadata.
_BOOKKEEPING = ("urls", "created", "digest", "removed")
#: How many recent additions are remembered for ``listing_since`` (older tokens: full listing).
_CHANGES_KEPT = 65536


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def archive_filename(name: str, version: str) -> str:
    return f"{name}-{version}.tgz"


class _Line(msgspec.Struct, omit_defaults=True):
    """One line of the snapshot or the journal."""

    #: ``head`` (first line: ``file`` is the generation id), ``add``, ``del``, ``dir`` or
    #: ``bad`` (an archive that failed inspection, with its size and mtime).
    op: str
    file: str = ""
    name: str = ""
    version: str = ""
    created: str = ""
    #: The ``index.yaml`` entry, kept as raw JSON (decoded only when a caller reads it).
    item: msgspec.Raw = msgspec.Raw()
    #: The directory's mtime (ns) before and after the change (-1: not recorded).
    before: int = -1
    after: int = -1
    size: int = -1
    mtime: int = -1


class _Chart(msgspec.Struct, frozen=True, gc=False):
    """One chart of the index. Never tracked by the garbage collector (it holds only strings
    and bytes): 100 000 tracked entries made each full collection walk them, 100-200 ms
    pauses of the event loop under load."""

    name: str
    version: str
    created: str
    item: bytes


_decode_line = msgspec.json.Decoder(_Line).decode
_encode = msgspec.json.Encoder().encode
_decode_item = msgspec.json.Decoder(dict[str, Any]).decode


class LocalChartStore(ChartStore):
    kind = "local"

    def __init__(
        self,
        directory: Path,
        limits: ArchiveLimits,
        *,
        served_at: str | None,
        load_wait: float = 10.0,
        flush_interval: float = 300.0,
        rescan_interval: float = 30.0,
        start_wait: float = 1.0,
    ) -> None:
        self.directory = directory
        self.limits = limits
        self.served_at = served_at
        self.load_wait = load_wait
        self.flush_interval = flush_interval
        self.rescan_interval = rescan_interval
        self.start_wait = start_wait
        self._lock = asyncio.Lock()
        self._lock_depth = 0
        self._state = directory / STATE_DIR
        self._reset()
        self._load_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._instance = secrets.token_hex(4)

    def _reset(self) -> None:
        self._charts: dict[str, _Chart] = {}
        self._files: dict[tuple[str, str], str] = {}
        #: Chart name -> its archive files, and the served index's piece per chart name
        #: (``"name":[entries]``), re-rendered only for the names changed since (``_dirty``):
        #: a read after a change costs O(changed) encoding plus one join, not a regrouping of
        #: every entry (~1 s at 100 000 charts).
        self._names: dict[str, tuple[str, ...]] = {}  # tuples: 100 000 sets cost ~20 MB
        self._pieces: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        #: The chart names in order, kept up to date by bisection once a read has sorted them
        #: (None until then: a load's 100 000 insertions would cost seconds).
        self._order: list[str] | None = None
        #: Archives that failed inspection: (size, mtime) so they are not re-inspected per scan.
        self._ignored: dict[str, tuple[int, int]] = {}
        self._loaded = False
        self._head = ""
        self._journal_ino: int | None = None
        self._journal_pos = 0
        self._journal_lines = 0
        self._dir_mtime: int | None = None
        self._scanned_at = 0.0
        self._generation = 0
        #: (generation, archive file) of recent additions, for ``listing_since``.
        self._changes: collections.deque[tuple[int, str]] = collections.deque(maxlen=_CHANGES_KEPT)
        self._rendered: tuple[int, bytes, str] | None = None
        self._disk_generation = -1
        self._scanned_record = b""
        #: How far the first load got (archives inspected, archives to inspect), for messages.
        self._progress = (0, 0)

    @property
    def location(self) -> str:
        return self.served_at or str(self.directory)

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)
        if self._load_task is None or self._load_task.done():
            self._reset()
            self._load_task = asyncio.create_task(self._first_load(), name="netweave-helm-index")
        # A small repository is ready when start returns; a large one goes on loading in the
        # background (calls meanwhile wait or get 503), so the gateway starts at once.
        await asyncio.wait({self._load_task}, timeout=self.start_wait)

    async def close(self) -> None:
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        self._flush_task = None
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._load_task
        self._load_task = None
        if self._loaded:
            async with self._lock:
                await asyncio.to_thread(self._flush_disk)

    def _prepare(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / ".tmp").mkdir(exist_ok=True)
            self._state.mkdir(exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"cannot create the chart repository directory {self.directory}: {exc.strerror}"
            ) from exc

    # -- locking ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Re-entrant: a flock taken again through another descriptor of the same process
        # would wait for itself. One thread at a time gets here (``_lock`` is held).
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with (self.directory / ".lock").open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- the first load ----------------------------------------------------------------------

    async def _first_load(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._load)
        if self._disk_generation != self._generation:
            self._schedule_flush()  # rebuilt, or archives found by the delta: refresh the copy

    async def _ready(self) -> None:
        """Wait for the first load (up to ``load_wait``), else 503 with ``Retry-After``."""
        if self._loaded:
            return
        if self._load_task is None:
            await self.start()
        assert self._load_task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._load_task), self.load_wait)
        except TimeoutError:
            done, total = self._progress
            raise BackendUnavailable(
                f"the chart repository {self.location} is still being indexed "
                f"({done} of {total} archives inspected); retry shortly",
                details={"repository": self.location},
                retry_after=max(1, min(30, int(self.load_wait) or 1)),
            ) from None
        except BaseException:
            if self._load_task is not None and self._load_task.done():
                self._load_task = None  # a failed load: the next call tries again
            raise

    def _load(self) -> None:
        """Snapshot + journal; without them (or if unusable), rebuild from the directory."""
        self._prepare()
        with self._file_lock():
            if self._read_state():
                # The copy in the directory was written at the last close (a crash may have
                # left it behind; the next change or close rewrites it).
                self._disk_generation = self._generation
            else:
                self._dir_mtime = None  # whatever a rejected saved state suggested
                self._rebuild()
            self._loaded = True
            if self._dir_mtime is None or self._dir_mtime != self._dir_stat():
                self._reconcile_directory(locked=True)
            else:
                # The directory is as the last listing found it, moved since only by changes
                # journaled with their mtimes: at 100 000 archives that listing was most of a
                # start's load. The periodic rescan still comes (changes within one mtime
                # tick, as at run time).
                self._scanned_at = time.monotonic()

    def _read_state(self) -> bool:
        """Apply the snapshot and the journal; False when they are missing or inconsistent."""
        try:
            snapshot = (self._state / SNAPSHOT).read_bytes()
            journal_handle = (self._state / JOURNAL).open("rb")
        except FileNotFoundError:
            return False
        except OSError as exc:
            _log.warning("%s: the saved index is unreadable (%s); rebuilding it", self._state, exc)
            return False
        with journal_handle:
            journal = journal_handle.read()
            ino = os.fstat(journal_handle.fileno()).st_ino
        lines = snapshot.split(b"\n")
        head = self._head_of(lines[0])
        if head is None or head != self._head_of(journal.split(b"\n", 1)[0]):
            _log.warning("%s: the saved index does not match its journal; rebuilding", self._state)
            return False
        self._clear_index()
        for raw in lines[1:]:
            if raw:
                self._apply(raw, track=False)
        end = journal.rfind(b"\n") + 1
        first = journal.find(b"\n") + 1
        # Where the last directory listing found the index in step, the directory's mtime
        # then; the journal's later lines carry how our own changes moved it.
        hint = self._scan_hint(head)
        position = first
        if hint is not None and hint[0] == position:
            self._dir_mtime = hint[1]
        for raw in journal[first:end].split(b"\n"):
            position += len(raw) + 1
            if raw:
                self._apply(raw, track=False)
                self._journal_lines += 1
            if hint is not None and hint[0] == position:
                self._dir_mtime = hint[1]
        self._head = head
        self._journal_ino = ino
        self._journal_pos = end
        return True

    @staticmethod
    def _head_of(raw: bytes) -> str | None:
        try:
            line = _decode_line(raw)
        except msgspec.DecodeError:
            return None
        return line.file if line.op == "head" and line.file else None

    def _rebuild(self) -> None:
        """The index from ``index.yaml`` (if readable) and the archives present, then saved."""
        seeded = self._index_yaml_entries()
        names = self._archive_names()
        self._clear_index()
        unknown = []
        for filename in sorted(names):
            item = seeded.get(filename)
            if item is None:
                unknown.append(filename)
                continue
            self._put_chart(filename, self._chart_of(item))
        self._progress = (0, len(unknown))
        for done, filename in enumerate(unknown, 1):
            described = self._describe_foreign(filename)
            if described is not None:
                self._put_chart(filename, described)
            self._progress = (done, len(unknown))
        self._compact()
        self._disk_generation = -1  # index.yaml is rewritten from what was found

    def _index_yaml_entries(self) -> dict[str, dict[str, Any]]:
        """Entries of an existing ``index.yaml`` by archive file name ({} if corrupt)."""
        path = self.directory / INDEX
        try:
            with path.open("rb") as handle:
                loaded = yaml.load(handle, Loader=yaml.CSafeLoader)
        except FileNotFoundError:
            return {}
        except (OSError, yaml.YAMLError) as exc:
            _log.warning("%s is unreadable (%s); rebuilding it from the archives", path, exc)
            return {}
        entries = loaded.get("entries") if isinstance(loaded, dict) else None
        if not isinstance(entries, dict):
            if loaded is not None:
                _log.warning("%s is not a chart index; rebuilding it from the archives", path)
            return {}
        found: dict[str, dict[str, Any]] = {}
        for name, versions in entries.items():
            for item in versions if isinstance(versions, list) else []:
                if not isinstance(item, dict) or "version" not in item:
                    continue
                urls = item.get("urls") or []
                filename = str(urls[0]) if urls else archive_filename(str(name), item["version"])
                if ARCHIVE_NAME.match(filename) and item.get("digest"):
                    found[filename] = dict(
                        item, name=str(item.get("name", name)), version=str(item["version"])
                    )
        return found

    @staticmethod
    def _chart_of(item: dict[str, Any]) -> _Chart:
        encoded = _encode(item)
        return _Chart(
            str(item["name"]), str(item["version"]), str(item.get("created") or ""), encoded
        )

    # -- applying journal lines --------------------------------------------------------------

    def _clear_index(self) -> None:
        self._charts.clear()
        self._files.clear()
        self._names.clear()
        self._pieces.clear()
        self._dirty.clear()
        self._order = None

    def _put_chart(self, filename: str, chart: _Chart) -> None:
        self._drop_chart(filename)
        self._charts[filename] = chart
        self._files[(chart.name, chart.version)] = filename
        known = self._names.get(chart.name, ())
        self._names[chart.name] = (*known, filename)
        if not known and self._order is not None:
            bisect.insort(self._order, chart.name)
        self._dirty.add(chart.name)

    def _drop_chart(self, filename: str) -> _Chart | None:
        old = self._charts.pop(filename, None)
        if old is not None:
            self._files.pop((old.name, old.version), None)
            files = tuple(f for f in self._names.get(old.name, ()) if f != filename)
            if files:
                self._names[old.name] = files
            elif self._names.pop(old.name, None) is not None and self._order is not None:
                at = bisect.bisect_left(self._order, old.name)
                if at < len(self._order) and self._order[at] == old.name:
                    del self._order[at]
            self._dirty.add(old.name)
        return old

    def _apply(self, raw: bytes, *, track: bool = True) -> None:
        try:
            line = _decode_line(raw)
        except msgspec.DecodeError:
            _log.warning("%s: skipping an unreadable journal line", self._state)
            return
        if line.op == "add" and line.file and line.name and line.version:
            self._put_chart(
                line.file, _Chart(line.name, line.version, line.created, bytes(line.item))
            )
            self._generation += 1
            if track:
                self._changes.append((self._generation, line.file))
        elif line.op == "bad":
            self._ignored[line.file] = (line.size, line.mtime)
        elif line.op == "del" and self._drop_chart(line.file) is not None:
            self._generation += 1
        # Changes made through netweave say how they moved the directory's mtime: a replica
        # that was in step follows along instead of listing the directory again.
        if line.before >= 0 and line.before == self._dir_mtime:
            self._dir_mtime = line.after

    def _tail(self) -> None:
        """Apply journal lines written since the last call (by this or another process)."""
        try:
            handle = (self._state / JOURNAL).open("rb")
        except FileNotFoundError:
            self._reload()
            return
        with handle:
            ino = os.fstat(handle.fileno()).st_ino
            if ino != self._journal_ino:
                handle.close()
                self._reload()
                return
            handle.seek(self._journal_pos)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        for raw in data[:end].split(b"\n"):
            if raw:
                self._apply(raw)
                self._journal_lines += 1
        self._journal_pos += end

    def _reload(self) -> None:
        """Another process compacted (or removed) the saved index: read it again, and remember
        what differs so ``listing_since`` tokens stay valid."""
        before = dict(self._charts)
        with self._file_lock():
            self._journal_lines = 0
            if not self._read_state():
                self._rebuild()
        for filename, chart in self._charts.items():
            if before.get(filename) != chart:
                self._generation += 1
                self._changes.append((self._generation, filename))
        if set(before) - set(self._charts):
            self._generation += 1

    def _append(self, lines: Iterable[_Line]) -> None:
        """Append lines to the journal (caller holds the file lock), then apply them."""
        data = b"".join(_encode(line) + b"\n" for line in lines)
        if not data:
            return
        path = self._state / JOURNAL
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a crashed writer's torn line stays on its own
            os.write(fd, data)
        finally:
            os.close(fd)
        self._tail()

    def _compact(self) -> None:
        """Write a snapshot of the index and start an empty journal (caller holds the lock)."""
        head = secrets.token_hex(8)
        header = _encode(_Line(op="head", file=head)) + b"\n"
        body = b"".join(
            _encode(
                _Line(
                    op="add",
                    file=filename,
                    name=chart.name,
                    version=chart.version,
                    created=chart.created,
                    item=msgspec.Raw(chart.item),
                )
            )
            + b"\n"
            for filename, chart in self._charts.items()
        )
        self._state.mkdir(exist_ok=True)
        self._replace(self._state / SNAPSHOT, header + body, fsync=True)
        self._replace(self._state / JOURNAL, header, fsync=True)
        self._head = head
        self._journal_ino = os.stat(self._state / JOURNAL).st_ino
        self._journal_pos = len(header)
        self._journal_lines = 0

    def _maybe_compact(self) -> None:
        if self._journal_lines > max(1000, len(self._charts)):
            self._compact()

    # -- directory delta ---------------------------------------------------------------------

    def _archive_names(self) -> set[str]:
        return {
            entry.name
            for entry in os.scandir(self.directory)
            if ARCHIVE_NAME.match(entry.name) and entry.is_file(follow_symlinks=False)
        }

    def _dir_stat(self) -> int:
        return os.stat(self.directory).st_mtime_ns

    def _reconcile_directory(self, *, locked: bool = False) -> None:
        """Notice archives added or removed by other means (names listed; new ones inspected)."""
        mtime = self._dir_stat()  # before listing: a change during the listing shows next time
        names = self._archive_names()
        self._scanned_at = time.monotonic()
        gone = set(self._charts) - names
        new = [n for n in names - set(self._charts) if self._ignored.get(n) != self._signature(n)]
        for name in list(self._ignored):
            if name not in names:
                del self._ignored[name]
        if gone or new:
            with contextlib.ExitStack() as stack:
                if not locked:
                    stack.enter_context(self._file_lock())
                    self._tail()  # another replica may have recorded them already
                lines = [_Line(op="del", file=n) for n in sorted(gone) if n in self._charts]
                for filename in sorted(new):
                    if filename in self._charts:
                        continue
                    if self._ignored.get(filename) == self._signature(filename):
                        continue  # another replica found it unusable already
                    chart = self._describe_foreign(filename)
                    if chart is None:
                        size, mtime = self._signature(filename)
                        lines.append(_Line(op="bad", file=filename, size=size, mtime=mtime))
                        continue
                    lines.append(
                        _Line(
                            op="add",
                            file=filename,
                            name=chart.name,
                            version=chart.version,
                            created=chart.created,
                            item=msgspec.Raw(chart.item),
                        )
                    )
                self._append(lines)
                self._maybe_compact()
        self._dir_mtime = mtime
        self._note_scanned(mtime)

    def _note_scanned(self, mtime: int) -> None:
        """Record (a hint, not fsynced) that the index at this journal position was in step
        with the directory at ``mtime``."""
        record = f"{self._head} {self._journal_pos} {mtime}\n".encode()
        if record == self._scanned_record or not self._head:
            return
        try:
            self._replace(self._state / SCANNED, record, fsync=False)
        except OSError as exc:
            _log.info("cannot write %s: %s", self._state / SCANNED, exc)
            return
        self._scanned_record = record

    def _scan_hint(self, head: str) -> tuple[int, int] | None:
        """(journal position, directory mtime) of the last listing that found the index of
        generation ``head`` in step; None without a usable record."""
        try:
            record = (self._state / SCANNED).read_bytes()
        except OSError:
            return None
        parts = record.split()
        if len(parts) != 3 or parts[0] != head.encode() or not parts[1].isdigit():
            return None
        if not parts[2].isdigit():
            return None
        self._scanned_record = record
        return int(parts[1]), int(parts[2])

    def _signature(self, filename: str) -> tuple[int, int]:
        try:
            st = os.stat(self.directory / filename)
        except OSError:
            return (-1, -1)
        return (st.st_size, st.st_mtime_ns)

    def _describe_foreign(self, filename: str) -> _Chart | None:
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
        return self._chart_of(self._index_item(metadata, file_digest(path), filename))

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

    # -- keeping in step ---------------------------------------------------------------------

    def _stale(self) -> bool:
        """Two stats: has another process written, or has the directory changed?"""
        try:
            st = os.stat(self._state / JOURNAL)
        except FileNotFoundError:
            return True
        if st.st_ino != self._journal_ino or st.st_size != self._journal_pos:
            return True
        if self._dir_stat() != self._dir_mtime:
            return True
        return time.monotonic() - self._scanned_at > self.rescan_interval

    def _sync(self) -> None:
        """Catch up with the journal and the directory (caller holds ``_lock``; a thread)."""
        self._tail()
        if self._dir_stat() != self._dir_mtime or (
            time.monotonic() - self._scanned_at > self.rescan_interval
        ):
            self._reconcile_directory()

    async def _current(self) -> None:
        """Ready and in step with the disk; a thread only when something changed."""
        await self._ready()
        if self._stale():
            async with self._lock:
                if self._stale():
                    await asyncio.to_thread(self._sync)

    # -- reading ---------------------------------------------------------------------------

    def _entry(self, filename: str, chart: _Chart) -> ChartEntry:
        item = _decode_item(chart.item)
        metadata = {k: v for k, v in item.items() if k not in _BOOKKEEPING}
        digest = item.get("digest")
        return ChartEntry(
            name=chart.name,
            version=chart.version,
            metadata=metadata,
            digest=f"sha256:{digest}" if digest else None,
            uri=f"{self.served_at}/{filename}" if self.served_at else None,
            created=str(item.get("created")) if item.get("created") else None,
            extra={"filename": filename},
        )

    async def list_charts(self) -> list[ChartEntry]:
        await self._current()
        async with self._lock:
            charts = sorted(self._charts.items(), key=lambda fc: (fc[1].name, fc[1].version))
        return [self._entry(filename, chart) for filename, chart in charts]

    async def listing_since(self, token: str | None, skip: Skip | None = None) -> ChartListing:
        """Charts added since ``token`` (every chart when the token is unknown or too old),
        without those ``skip`` names: compared by name and version before an entry is built,
        so a caller that knows most of a large repository pays for strings, not entries."""
        await self._current()
        async with self._lock:
            generation = self._generation
            new_token = f"{self._instance}:{generation}"
            since = self._parse_token(token)
            oldest = self._changes[0][0] if self._changes else generation + 1
            if since is not None and since >= generation:
                return ChartListing(new_token, [], complete=False)
            complete = since is None or since < oldest - 1
            if since is None or complete:
                charts = list(self._charts.items())
            else:
                files = {f for g, f in self._changes if g > since}
                charts = [(f, self._charts[f]) for f in files if f in self._charts]
            if skip is not None:
                charts = [(f, c) for f, c in charts if not skip(c.name, c.version)]
            entries = [self._entry(f, c) for f, c in charts]
        return ChartListing(new_token, entries, complete=complete)

    def _parse_token(self, token: str | None) -> int | None:
        if token is None:
            return None
        instance, _, generation = token.partition(":")
        if instance != self._instance or not generation.isdigit():
            return None
        return int(generation)

    async def _find(self, name: str, version: str) -> tuple[str, _Chart] | None:
        """One chart, at O(1) cost even right after the directory changed: the journal is
        followed, a known archive is checked with one stat, and an unknown one under its
        usual file name is inspected alone; only a miss lists the directory (a full delta)."""
        await self._ready()
        if self._journal_moved():
            async with self._lock:
                await asyncio.to_thread(self._tail)
        found = self._known(name, version)
        if found is not None:
            return found
        canonical = archive_filename(name, version)
        # One stat on the loop, as in ``fetch``: cheaper than a hand-over to a thread.
        if (name, version) not in self._files and self.archive_path(canonical) is not None:
            async with self._lock:
                await asyncio.to_thread(self._adopt_file, canonical)
            found = self._known(name, version)
            if found is not None:
                return found
        await self._current()
        return self._known(name, version)

    def _known(self, name: str, version: str) -> tuple[str, _Chart] | None:
        filename = self._files.get((name, version))
        chart = self._charts.get(filename) if filename is not None else None
        if filename is None or chart is None:
            return None
        if not os.path.isfile(self.directory / filename):
            return None  # removed on disk: the full delta below records it
        return filename, chart

    def _journal_moved(self) -> bool:
        try:
            st = os.stat(self._state / JOURNAL)
        except FileNotFoundError:
            return True
        return st.st_ino != self._journal_ino or st.st_size != self._journal_pos

    def _adopt_file(self, filename: str) -> None:
        """Inspect and journal one archive that appeared by other means (a thread)."""
        with self._file_lock():
            self._tail()
            if filename in self._charts or self._ignored.get(filename) == self._signature(filename):
                return
            chart = self._describe_foreign(filename)
            if chart is None:
                size, mtime = self._signature(filename)
                self._append([_Line(op="bad", file=filename, size=size, mtime=mtime)])
                return
            self._append(
                [
                    _Line(
                        op="add",
                        file=filename,
                        name=chart.name,
                        version=chart.version,
                        created=chart.created,
                        item=msgspec.Raw(chart.item),
                    )
                ]
            )

    async def get(self, name: str, version: str) -> ChartEntry:
        found = await self._find(name, version)
        if found is None:
            raise NotFound(f"chart {name}:{version} not found in {self.location}")
        return self._entry(*found)

    async def exists(self, name: str, version: str) -> bool:
        return await self._find(name, version) is not None

    async def health(self) -> tuple[bool, str | None]:
        ok = await asyncio.to_thread(self.directory.is_dir)
        if not ok:
            return False, f"the chart repository directory {self.directory} is missing"
        if not self._loaded:
            done, total = self._progress
            return True, f"indexing the repository ({done} of {total} archives inspected)"
        return True, None

    async def index(self) -> tuple[bytes, str]:
        """``index.yaml`` as served and its ``ETag``; rendered only when the index changed."""
        await self._current()
        async with self._lock:
            rendered = self._rendered
            if rendered is None or rendered[0] != self._generation:
                rendered = await asyncio.to_thread(self._render)
        # No disk write here: the file is a courtesy copy, written rarely (``_flush_later``).
        return rendered[1], rendered[2]

    async def index_bytes(self) -> bytes:
        return (await self.index())[0]

    @staticmethod
    def _piece(name: str, charts: Iterable[_Chart]) -> bytes:
        versions = sorted(charts, key=lambda c: c.created, reverse=True)
        return _encode(name) + b":[" + b",".join(c.item for c in versions) + b"]"

    def _render_parts(self, charts: Iterable[_Chart] | None = None) -> Iterator[bytes]:
        """``index.yaml`` (JSON, which is YAML) piece by piece, one piece per chart name:
        from the kept pieces (caller holds ``_lock``), or grouped anew from ``charts``."""
        pieces: dict[str, bytes]
        if charts is None:
            for name in self._dirty:
                files = self._names.get(name)
                if files:
                    self._pieces[name] = self._piece(name, (self._charts[f] for f in files))
                else:
                    self._pieces.pop(name, None)
            self._dirty.clear()
            if self._order is None:
                self._order = sorted(self._names)
            order = self._order
            pieces = self._pieces
        else:
            groups: dict[str, list[_Chart]] = {}
            for chart in charts:
                groups.setdefault(chart.name, []).append(chart)
            pieces = {name: self._piece(name, group) for name, group in groups.items()}
            order = sorted(pieces)
        yield b'{"apiVersion":"v1","entries":{'
        if charts is None:
            yield b",".join([pieces[name] for name in order])  # served: one body anyway
        else:
            # Written to the file piece by piece, not built whole (~25 MB at 100 000 charts).
            for n, name in enumerate(order):
                yield (b"," + pieces[name]) if n else pieces[name]
        yield b'},"generated":' + _encode(_now()) + b"}\n"

    def _render(self) -> tuple[int, bytes, str]:
        body = b"".join(self._render_parts())
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        self._rendered = (self._generation, body, etag)
        return self._rendered

    def _flush_disk(self) -> None:
        """Write ``index.yaml`` now if it lags behind (caller holds ``_lock``: at close)."""
        if not self._loaded or self._disk_generation == self._generation:
            return
        rendered = self._rendered
        parts: Iterable[bytes]
        if rendered is not None and rendered[0] == self._generation:
            parts = (rendered[1],)
        else:
            # Streamed to the file, not built and kept: ~30 MB at 100 000 charts.
            parts = self._render_parts()
        fd, staged = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self.directory / ".tmp")
        try:
            self._write_staged(fd, parts)
            self._swap_index(staged, self._generation)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(staged)

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush_later(), name="netweave-helm-flush")

    async def _flush_later(self) -> None:
        """Coalesced: one write per ``flush_interval`` at most, whatever the number of changes.
        The body is rendered and written from a copy of the index with ``_lock`` free (uploads
        and deletes go on); only the rename and its journal line take the lock."""
        await asyncio.sleep(self.flush_interval)
        if not self._loaded or self._disk_generation == self._generation:
            return
        async with self._lock:  # writers mutate the index in threads while holding it
            generation = self._generation
            charts = list(self._charts.values())
        fd, staged = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self.directory / ".tmp")
        try:
            try:
                await asyncio.to_thread(self._write_staged, fd, self._render_parts(charts))
                async with self._lock:
                    await asyncio.to_thread(self._swap_index, staged, generation)
            except OSError as exc:
                _log.warning("cannot write %s: %s", self.directory / INDEX, exc)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(staged)
        if self._disk_generation != self._generation:
            self._flush_task = asyncio.create_task(self._flush_later(), name="netweave-helm-flush")

    @staticmethod
    def _write_staged(fd: int, parts: Iterable[bytes]) -> None:
        with os.fdopen(fd, "wb") as handle:
            handle.writelines(parts)

    def _swap_index(self, staged: str, generation: int) -> None:
        """The staged file into place, with the ``dir`` journal line that tells replicas the
        directory's mtime moved by our hand (no rescan for them)."""
        with self._file_lock():
            before = self._dir_stat()
            os.replace(staged, self.directory / INDEX)
            self._append([_Line(op="dir", before=before, after=self._dir_stat())])
        self._disk_generation = max(self._disk_generation, generation)

    def _replace(self, target: Path, data: bytes | Iterable[bytes], *, fsync: bool) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self.directory / ".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(data, bytes):
                    handle.write(data)
                else:
                    handle.writelines(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

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

    # -- writing ---------------------------------------------------------------------------

    async def put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        filename = archive_filename(name, version)
        if not ARCHIVE_NAME.match(filename):
            raise BackendError(f"cannot store {name}:{version} under a safe file name")
        await self._ready()
        async with self._lock:
            await asyncio.to_thread(self._put, archive, filename, metadata, digest)
            chart = self._charts[filename]
        self._schedule_flush()
        return self._entry(filename, chart)

    def _put(self, archive: Path, filename: str, metadata: dict[str, Any], digest: str) -> None:
        name = str(metadata["name"])
        version = str(metadata["version"])
        with self._file_lock():
            self._tail()
            final = self.directory / filename
            if (name, version) in self._files or final.exists():
                raise AlreadyExists(
                    f"chart {name}:{version} already exists in the repository",
                    details={"name": name, "version": version},
                )
            chart = self._chart_of(self._index_item(metadata, digest, filename))
            fd, staged = tempfile.mkstemp(
                prefix=".upload-", suffix=".tgz", dir=self.directory / ".tmp"
            )
            os.close(fd)
            linked = False
            try:
                try:
                    # Same filesystem (the usual case for the gateway's upload spool): a hard
                    # link of the validated file, no copy of a possibly large archive.
                    os.unlink(staged)
                    os.link(archive, staged)
                except OSError:
                    shutil.copyfile(archive, staged)
                before = self._dir_stat()
                try:
                    os.link(staged, final)
                except FileExistsError:
                    raise AlreadyExists(
                        f"chart {name}:{version} already exists in the repository",
                        details={"name": name, "version": version},
                    ) from None
                linked = True
                line = _Line(
                    op="add",
                    file=filename,
                    name=name,
                    version=version,
                    created=chart.created,
                    item=msgspec.Raw(chart.item),
                    before=before,
                    after=self._dir_stat(),
                )
                self._append([line])
            except BaseException:
                if linked:
                    with contextlib.suppress(OSError):
                        final.unlink()
                raise
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(staged)
            self._maybe_compact()

    async def delete(self, name: str, version: str) -> None:
        if await self._find(name, version) is None:  # O(1), as for get
            raise NotFound(f"chart {name}:{version} not found in the repository")
        async with self._lock:
            await asyncio.to_thread(self._delete, name, version)
        self._schedule_flush()

    async def set_deprecated(self, name: str, version: str, deprecated: bool) -> None:
        """Helm's ``deprecated: true`` on the chart's index entry (or removed), journaled like
        an upload, so restarts and replicas sharing the directory serve it too."""
        if await self._find(name, version) is None:
            raise NotFound(f"chart {name}:{version} not found in the repository")
        async with self._lock:
            await asyncio.to_thread(self._set_deprecated, name, version, deprecated)
        self._schedule_flush()

    def _set_deprecated(self, name: str, version: str, deprecated: bool) -> None:
        with self._file_lock():
            self._tail()
            filename = self._files.get((name, version))
            if filename is None:
                return
            chart = self._charts[filename]
            item = _decode_item(chart.item)
            if bool(item.get("deprecated")) == deprecated:
                return
            if deprecated:
                item["deprecated"] = True
            else:
                item.pop("deprecated", None)
            # An "add" of the same file replaces its entry (no directory change: no mtimes).
            line = _Line(
                op="add",
                file=filename,
                name=chart.name,
                version=chart.version,
                created=chart.created,
                item=msgspec.Raw(_encode(item)),
            )
            self._append([line])
            self._maybe_compact()

    def _delete(self, name: str, version: str) -> None:
        with self._file_lock():
            self._tail()
            filename = self._files.get((name, version))
            if filename is None:
                raise NotFound(f"chart {name}:{version} not found in the repository")
            before = self._dir_stat()
            path = self.archive_path(filename)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._append([_Line(op="del", file=filename, before=before, after=self._dir_stat())])
            self._maybe_compact()


__all__ = ["ARCHIVE_NAME", "LocalChartStore", "archive_filename"]
