"""SOL004 VNF packages (CSAR zip archives): inspected on disk, streamed, before anything of them
is stored.

Layouts: with ``TOSCA-Metadata/TOSCA.meta`` (``Entry-Definitions``, ``ETSI-Entry-Manifest``,
``ETSI-Entry-Certificate``), or manifest-only (one ``.yaml`` and one ``.mf`` of the same name at
the root). The manifest is required and its digests are always checked: every file of the
package but ``TOSCA.meta``, the manifest and the certificate must be listed with a SHA-256,
SHA-384 or SHA-512 hash that matches its content. The VNFD is read and validated
(:mod:`netweave.packaging.sol001`); the one Helm chart under ``Files/kubernetes/`` is what the
adapter deploys (it checks the chart's archive with its own defences when it stores it).

Signatures (SOL004 security option 1) are verified when present
(:mod:`netweave.packaging.signatures`): the manifest's CMS signature (the PEM block at its end,
over every byte before it) and each artifact's (an entry's ``Signature`` file, with its
``Certificate`` file if given), each against the certificates in the CMS and the package's
certificate (``ETSI-Entry-Certificate``, or the ``.cert`` beside a manifest-only entry),
chained to the configured trust anchors. A signature that does not verify, a signer that does
not chain to an anchor (or no anchor configured), a certificate with nothing signed: 400
naming why, nothing stored. Artifacts outside the package (a manifest ``Source`` that is a
URL) are refused too: nothing is fetched while onboarding.

Security option 2 (SOL004 §5.1): a zip holding exactly the CSAR (``X.csar`` or ``X.zip``), the
detached CMS signature over the whole CSAR file (``X.cms``) and the signing certificate
(``X.cert``), all at its root. Such a zip is told from a CSAR by having neither
``TOSCA.meta`` nor a root manifest but a root ``.csar``/``.zip``. The inner CSAR is streamed
out once, its digest computed while it is written (never whole in memory), the signature
verified over that digest and chained to the trust anchors, then the inner CSAR is inspected
like any other (its own archive defences, manifest digests and option-1 signatures if any).
The outer zip goes through the same archive defences first; anything else in it, a missing or
misnamed ``.cms``/``.cert``, or a signed package inside a signed package: 400.

The chart may be taken out while the CSAR arrives (:class:`CsarStream`: local headers read as
the upload file grows; it stops at anything but the simple case), and its inspection follows
its bytes on another thread as they are hashed: what the stream found is used only for the
entry the central directory names at the same offset with the same name, method, sizes and
CRC, and its digest is compared with the manifest like any other.

Hostile archives are refused (400) before anything is extracted: more entries than the limit
(read from the end-of-central-directory record before the directory itself is parsed), names
that are absolute, hold ``..``, backslashes or NUL, too long or too deep, duplicates, symbolic
links and other non-regular files, encrypted entries, a file or the total over the size limits,
a compression ratio typical of a bomb; while reading, content that does not match its CRC or
declared size.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import posixpath
import queue
import stat
import struct
import tarfile
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography import x509

from netweave.errors import InvalidInput, NetweaveError
from netweave.packaging.growing import Abandoned, ForwardReader, GrowingFile
from netweave.packaging.signatures import (
    DIGESTS,
    load_certificates,
    load_cms,
    split_signed_manifest,
    verify_signature,
)
from netweave.packaging.sol001 import load_yaml, read_vnfd
from netweave.packaging.vnfd import Vnfd

_CHUNK = 1 << 20
#: What is read of a member through zipfile at a time: a large read there is put together
#: from smaller inflated pieces, copied as it grows. The bench's 98 MB chart member: 0.146 s of
#: CPU in 1 MiB reads, 0.051 s in 256 KiB ones, 0.064 s in 64 KiB ones.
_PIECE = 1 << 18
_META = "TOSCA-Metadata/TOSCA.meta"
CHART_DIR = "Files/kubernetes/"
_ALGORITHMS = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


@dataclass(frozen=True, slots=True)
class CsarLimits:
    """Bounds a CSAR must stay within (checked before and while reading)."""

    max_entries: int = 10_000
    max_depth: int = 32
    max_path_length: int = 1024
    #: One file, decompressed (a chart archive is stored, so its own size).
    max_file_bytes: int = 1 << 30
    max_uncompressed_bytes: int = 2 << 30
    #: Decompressed/compressed ratio beyond which an entry is a bomb (over the floor).
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 8 << 20
    #: TOSCA.meta, the manifest and each VNFD file.
    max_text_bytes: int = 4 << 20
    #: A chart's Chart.yaml, read to name the chart.
    max_chart_yaml_bytes: int = 1 << 20


@dataclass(frozen=True, slots=True)
class Artifact:
    path: str
    algorithm: str
    hash: str
    non_mano_set: str | None = None
    #: The artifact's own CMS signature file and certificate file (SOL004), if any.
    signature: str | None = None
    certificate: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "artifactPath": self.path,
            "checksum": {"algorithm": self.algorithm, "hash": self.hash},
            "isEncrypted": False,
            **({"nonManoArtifactSetId": self.non_mano_set} if self.non_mano_set else {}),
        }


@dataclass(slots=True)
class CsarInfo:
    layout: str
    entry_definitions: str
    manifest: str
    vnfd: Vnfd
    chart: str
    artifacts: list[Artifact]
    manifest_metadata: dict[str, str] = field(default_factory=dict)
    compatible_versions: list[str] = field(default_factory=list)
    #: Every VNFD file (the entry and what it imports from the package).
    vnfd_files: list[str] = field(default_factory=list)
    #: Whether signatures were verified (security option 1), the manifest signer's subject,
    #: and the package's certificate file.
    signed: bool = False
    signer: str | None = None
    certificate: str | None = None
    #: SOL004's packageSecurityOption: OPTION_1 (signatures inside), OPTION_2 (the whole CSAR
    #: signed in an outer zip), None (unsigned).
    security_option: str | None = None
    #: Option 2: the inner CSAR's name in the outer zip.
    signed_csar: str | None = None
    #: What ``chart_follower`` returned for the chart (see :func:`inspect_csar`).
    chart_followed: object = None


def refuse(message: str, **details: Any) -> InvalidInput:
    return InvalidInput(f"invalid VNF package: {message}", details={"field": "package", **details})


# -- the archive ------------------------------------------------------------------------------


def _entry_count(path: Path) -> int:
    """Entries the end-of-central-directory record declares (zip64 too), read before
    ``zipfile`` builds an object per entry."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        tail = min(size, 65_557)
        handle.seek(size - tail)
        data = handle.read(tail)
        at = data.rfind(b"PK\x05\x06")
        if at < 0 or len(data) - at < 22:
            raise refuse("not a zip archive (no end of central directory)")
        count = int(struct.unpack("<H", data[at + 10 : at + 12])[0])
        if count != 0xFFFF or at < 20 or data[at - 20 : at - 16] != b"PK\x06\x07":
            return count
        (offset,) = struct.unpack("<Q", data[at - 12 : at - 4])
        if offset + 40 > size:
            raise refuse("corrupt zip64 end of central directory")
        handle.seek(offset)
        record = handle.read(40)
        if record[:4] != b"PK\x06\x06":
            raise refuse("corrupt zip64 end of central directory")
        return int(struct.unpack("<Q", record[32:40])[0])


def _check_name(name: str, limits: CsarLimits) -> str:
    if not name or "\x00" in name or "\\" in name:
        raise refuse(f"entry name {name!r} is not a plain relative path", entry=name)
    if len(name) > limits.max_path_length:
        raise refuse(f"an entry name is longer than {limits.max_path_length}", entry=name[:80])
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise refuse(f"entry {name!r} has an absolute path", entry=name)
    parts = [p for p in name.rstrip("/").split("/")]
    if any(p in {"", ".", ".."} for p in parts):
        raise refuse(f"entry {name!r} leaves its directory (zip slip) or is malformed", entry=name)
    if len(parts) > limits.max_depth:
        raise refuse(f"entry {name!r} is deeper than {limits.max_depth}", entry=name)
    return "/".join(parts)


def _check_type(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
        raise refuse(f"entry {info.filename!r} is {what}", entry=info.filename)
    if info.flag_bits & 0x1:
        raise refuse(f"entry {info.filename!r} is encrypted", entry=info.filename)


class Archive:
    """A CSAR opened for inspection: every entry checked, then members read bounded."""

    def __init__(self, path: Path, limits: CsarLimits) -> None:
        self.path = path
        self.limits = limits
        count = _entry_count(path)
        if count > limits.max_entries:
            raise refuse(f"more than {limits.max_entries} entries ({count})")
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise refuse(f"not a readable zip archive ({type(exc).__name__})") from None
        self.files: dict[str, zipfile.ZipInfo] = {}
        total = 0
        try:
            for info in self._zip.infolist():
                name = _check_name(info.filename, limits)
                _check_type(info)
                if info.is_dir():
                    continue
                if name in self.files:
                    raise refuse(f"duplicate entry {name!r}", entry=name)
                if info.file_size > limits.max_file_bytes:
                    raise refuse(
                        f"entry {name!r} is {info.file_size} bytes, over the "
                        f"{limits.max_file_bytes}-byte limit",
                        entry=name,
                    )
                total += info.file_size
                if total > limits.max_uncompressed_bytes:
                    raise refuse(f"contents exceed {limits.max_uncompressed_bytes} bytes")
                if (
                    info.file_size > limits.ratio_floor_bytes
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)
                ):
                    raise refuse(
                        f"entry {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                        " times (a decompression bomb)",
                        entry=name,
                    )
                self.files[name] = info
        except BaseException:
            self._zip.close()
            raise

    def close(self) -> None:
        self._zip.close()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        info = self.files[name]
        try:
            with self._zip.open(info) as handle:
                yield handle
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise refuse(f"entry {name!r} is corrupt ({type(exc).__name__})", entry=name) from None

    def read_text(self, name: str) -> bytes:
        """A small member whole (``KeyError`` when absent; 400 over ``max_text_bytes``)."""
        info = self.files[name]
        if info.file_size > self.limits.max_text_bytes:
            raise refuse(f"{name} is larger than {self.limits.max_text_bytes} bytes", entry=name)
        with self.open(name) as handle:
            return handle.read(self.limits.max_text_bytes + 1)

    def digest(self, name: str, algorithm: str, copy_to: Path | None = None) -> str:
        """The member's digest; with ``copy_to``, written there in the same pass."""
        return self.digest_following(name, algorithm, copy_to)[0]

    def digest_following(
        self,
        name: str,
        algorithm: str,
        copy_to: Path | None = None,
        follower: ChartFollower | None = None,
    ) -> tuple[str, object]:
        """:meth:`digest`, and with ``follower``, what it returned having read the member's
        bytes as they were read here. With a follower (a large chart), three threads share the
        work: this one inflates and checks the CRC, one hashes and writes, the follower reads
        (hashlib, zlib and file writes release the GIL on 1 MiB chunks)."""
        hasher = hashlib.new(algorithm)
        with self.open(name) as handle, contextlib.ExitStack() as stack:
            sink = stack.enter_context(copy_to.open("wb")) if copy_to is not None else None

            def absorb(chunk: bytes) -> None:
                hasher.update(chunk)
                if sink is not None:
                    sink.write(chunk)

            if follower is None:
                while chunk := handle.read(_PIECE):
                    absorb(chunk)
                return hasher.hexdigest(), None
            following = _Following(follower, self.files[name].file_size)
            try:
                absorbing = _Worker(absorb)
                try:
                    while chunk := handle.read(_PIECE):
                        following.pipe.put(chunk)
                        absorbing.put(chunk)
                finally:
                    absorbing.finish()
            finally:
                followed = following.result()
        return hasher.hexdigest(), followed

    def extract(self, name: str, target: Path) -> Path:
        """Stream one member to ``target`` (its size was bounded when opened)."""
        with self.open(name) as handle, target.open("wb") as sink:
            while chunk := handle.read(_PIECE):
                sink.write(chunk)
        return target


#: Reads a member as it is read for its digest (a buffered stream of its bytes, and their
#: count, known from the zip directory), on a thread of its own; what it returns is kept.
ChartFollower = Callable[[IO[bytes], int], object]


class _Pipe(ForwardReader):
    """The chunks of a member handed to another thread (at most a few buffered: bounded
    memory). Seekable only back to the start while still in the first chunk (a reader that
    sniffs the magic bytes first)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._first = b""
        self._chunk = memoryview(b"")
        self._position = 0
        self._ended = False

    def put(self, chunk: bytes | None) -> None:
        self._queue.put(chunk)

    def _next(self) -> bool:
        item = self._queue.get()
        if item is None:
            self._ended = True
            return False
        if self._position == 0:
            self._first = item
        self._chunk = memoryview(item)
        return True

    def drain(self) -> None:
        """Take what is still sent (the sender never waits on a reader that stopped)."""
        while not self._ended:
            if self._queue.get() is None:
                self._ended = True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._position + offset
        if whence == io.SEEK_END or not (
            target == self._position or (target == 0 and self._position <= len(self._first))
        ):
            raise io.UnsupportedOperation("a member being read is seekable only to its start")
        if target != self._position:
            self._chunk = memoryview(self._first)
            self._position = 0
        return self._position

    def readinto(self, buffer: Any) -> int:
        if not self._chunk and (self._ended or not self._next()):
            return 0
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._chunk))
        view[:count] = self._chunk[:count]
        self._chunk = self._chunk[count:]
        self._position += count
        return count


class _Worker:
    """Calls ``work`` with each chunk put, in order, on a thread of its own (a few chunks
    queued at most); :meth:`finish` waits for the last and raises what ``work`` raised."""

    def __init__(self, work: Callable[[bytes], None]) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._work = work
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="netweave-csar-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._work(chunk)
                except BaseException as exc:  # raised by finish(); the rest is only drained
                    self._error = exc

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class _Following:
    """A follower running on its own thread over a :class:`_Pipe`."""

    def __init__(self, follower: ChartFollower, size: int) -> None:
        self.pipe = _Pipe()
        self._follower = follower
        self._size = size
        self._outcome: object = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="netweave-csar-follow", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with io.BufferedReader(self.pipe, 1 << 16) as reader:
                self._outcome = self._follower(reader, self._size)
        except BaseException as exc:  # a defect of the follower: raised where it is joined
            self._error = exc
        finally:
            self.pipe.drain()

    def result(self) -> object:
        """The follower's answer once the member has been sent whole (or its reading failed)."""
        self.pipe.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._outcome


# -- the chart while the CSAR arrives --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamedChart:
    """The chart of a CSAR, taken out while the CSAR arrived (its local header and bytes,
    as read before the central directory was known): written to ``path`` with its SHA-256.
    :func:`inspect_csar` uses it only for the entry the central directory places at the same
    offset with the same name, method, sizes and CRC: the bytes zipfile would read."""

    name: str
    header_offset: int
    method: int
    compress_size: int
    file_size: int
    crc: int
    sha256: str
    path: Path
    followed: object = None


class CsarStream:
    """Takes the chart out of a CSAR while its body is written to ``upload``, on a thread
    of its own (the arriving file read back as it grows: nothing of it held in memory).
    Only the simple case is handled (local headers with sizes, the chart stored or
    deflated, within the size and ratio limits); otherwise it stops and the CSAR's checks
    read the chart from the complete file as before. The caller says :meth:`wrote` after each
    flushed write, :meth:`end` when the body is complete, then takes :meth:`result`; or
    :meth:`abandon` (the file removed by the caller)."""

    def __init__(
        self,
        upload: Path,
        chart_to: Path,
        limits: CsarLimits | None = None,
        follower: ChartFollower | None = None,
    ) -> None:
        self._file = GrowingFile(upload)
        # Header fields read a few bytes at a time; the chart's pieces bypass the buffer.
        self._reader = io.BufferedReader(self._file, 1 << 16)
        self._chart_to = chart_to
        self._limits = limits or CsarLimits()
        self._follower = follower
        self._result: StreamedChart | None = None
        self._thread = threading.Thread(target=self._run, name="netweave-csar-stream", daemon=True)
        self._thread.start()

    def wrote(self, total: int) -> None:
        self._file.wrote(total)

    def end(self) -> None:
        self._file.end()

    def abandon(self) -> None:
        self._file.end(abandoned=True)
        self._thread.join()
        self._chart_to.unlink(missing_ok=True)

    def result(self) -> StreamedChart | None:
        """Once :meth:`end` was called: the chart, or None (then ``chart_to`` is removed)."""
        self._thread.join()
        if self._result is None:
            self._chart_to.unlink(missing_ok=True)
        return self._result

    def _run(self) -> None:
        try:
            self._result = self._scan()
        except (Abandoned, OSError, zlib.error, UnicodeDecodeError, NetweaveError):
            self._result = None
        except Exception:  # a defect here must not fail the upload: its checks read it
            self._result = None
        finally:
            self._reader.close()

    def _scan(self) -> StreamedChart | None:
        read = self._reader.read
        offset = 0
        for _ in range(self._limits.max_entries):
            header = read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                return None
            (flags, method, crc, csize, usize, name_len, extra_len) = struct.unpack(
                "<2xHH4xIIIHH", header[4:]
            )
            name_raw = read(name_len)
            read(extra_len)
            name = name_raw.decode("utf-8" if flags & 0x800 else "cp437")
            if flags & 0x9 or 0xFFFFFFFF in (csize, usize):
                return None  # encrypted, sizes in a data descriptor, or zip64: not here
            if (
                name.startswith(CHART_DIR)
                and name.endswith((".tgz", ".tar.gz"))
                and method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
                and usize <= self._limits.max_file_bytes
                and not (
                    usize > self._limits.ratio_floor_bytes
                    and usize > self._limits.max_ratio * max(csize, 1)
                )
            ):
                return self._chart(name, offset, flags, method, crc, csize, usize)
            left = csize
            while left > 0:
                skipped = len(read(min(left, _CHUNK)))
                if not skipped:
                    return None
                left -= skipped
            offset += 30 + name_len + extra_len + csize
        return None

    def _chart(
        self, name: str, offset: int, flags: int, method: int, crc: int, csize: int, usize: int
    ) -> StreamedChart | None:
        hasher = hashlib.sha256()
        inflate = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        check = 0
        produced = 0
        with self._chart_to.open("wb") as sink:

            def absorb(chunk: bytes) -> None:
                hasher.update(chunk)
                sink.write(chunk)

            following = _Following(self._follower, usize) if self._follower is not None else None
            try:
                absorbing = _Worker(absorb)
                try:
                    left = csize
                    while left > 0:
                        data = self._reader.read(min(left, _CHUNK))
                        if not data:
                            return None
                        left -= len(data)
                        if inflate is not None:
                            # At most what the header declares (+1 to see more): bounded.
                            data = inflate.decompress(data, usize - produced + 1)
                            if inflate.unconsumed_tail:
                                return None
                        produced += len(data)
                        if produced > usize:
                            return None
                        check = zlib.crc32(data, check)
                        if following is not None:
                            following.pipe.put(data)
                        absorbing.put(data)
                    if inflate is not None:
                        rest = inflate.flush()
                        if rest or not inflate.eof:
                            return None
                finally:
                    absorbing.finish()
            finally:
                followed = following.result() if following is not None else None
        if produced != usize or check != crc:
            return None
        return StreamedChart(
            name=name,
            header_offset=offset,
            method=method,
            compress_size=csize,
            file_size=usize,
            crc=crc,
            sha256=hasher.hexdigest(),
            path=self._chart_to,
            followed=followed,
        )


@contextlib.contextmanager
def open_archive(path: Path, limits: CsarLimits | None = None) -> Iterator[Archive]:
    archive = Archive(path, limits or CsarLimits())
    try:
        yield archive
    finally:
        archive.close()


# -- TOSCA.meta and the manifest --------------------------------------------------------------


def _key_values(text: str, where: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise refuse(f"{where}: line {line[:60]!r} is not 'Name: value'", file=where)
        values[key.strip()] = value.strip()
    return values


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"{where} is not UTF-8 text", file=where) from None


@dataclass(slots=True)
class Manifest:
    metadata: dict[str, str] = field(default_factory=dict)
    entries: list[Artifact] = field(default_factory=list)


def parse_manifest(text: str, where: str) -> Manifest:
    """SOL004 §4.3.2: a ``metadata:`` block, then ``Source``/``Algorithm``/``Hash`` blocks,
    optional ``non_mano_artifact_sets``, optionally a CMS signature."""
    manifest = Manifest()
    lines = text.splitlines()
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines) or lines[index].strip() != "metadata:":
        raise refuse(f"{where} does not start with 'metadata:'", file=where)
    index += 1
    while index < len(lines) and lines[index].strip():
        key, sep, value = lines[index].strip().partition(":")
        if not sep:
            raise refuse(f"{where}: metadata line {lines[index][:60]!r} is not 'name: value'")
        manifest.metadata[key.strip()] = value.strip()
        index += 1
    current: dict[str, str] = {}
    non_mano: dict[str, str] = {}
    set_name: str | None = None
    in_sets = False

    def flush() -> None:
        if not current:
            return
        source = current.get("Source")
        if source is None:
            raise refuse(f"{where}: an entry has no Source", file=where)
        if in_sets:
            if set_name is not None:
                non_mano[source] = set_name
            current.clear()
            return
        algorithm = current.get("Algorithm", "").upper().replace("SHA256", "SHA-256")
        algorithm = algorithm.replace("SHA384", "SHA-384").replace("SHA512", "SHA-512")
        if algorithm not in _ALGORITHMS:
            raise refuse(
                f"{where}: {source} has the digest algorithm {current.get('Algorithm')!r} "
                "(SHA-256, SHA-384 or SHA-512)",
                file=where,
                entry=source,
            )
        digest = current.get("Hash", "").lower()
        if not digest or any(c not in "0123456789abcdef" for c in digest):
            raise refuse(f"{where}: {source} has no hexadecimal Hash", file=where, entry=source)
        manifest.entries.append(
            Artifact(
                source,
                algorithm,
                digest,
                signature=current.get("Signature") or None,
                certificate=current.get("Certificate") or None,
            )
        )
        current.clear()

    while index < len(lines):
        raw = lines[index]
        index += 1
        line = raw.strip()
        if line.startswith("-----BEGIN CMS-----"):
            break  # the signature (split_signed_manifest): not part of what it signs
        if not line or line.startswith("#"):
            flush()
            continue
        if line == "non_mano_artifact_sets:":
            flush()
            in_sets = True
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise refuse(f"{where}: line {line[:60]!r} is not 'Name: value'", file=where)
        key, value = key.strip(), value.strip()
        if in_sets and not value and key != "Source":
            flush()
            set_name = key
            continue
        if key == "Source" and current:
            flush()
        current[key] = value
    flush()
    manifest.entries = [
        Artifact(a.path, a.algorithm, a.hash, non_mano.get(a.path), a.signature, a.certificate)
        for a in manifest.entries
    ]
    return manifest


# -- the package ------------------------------------------------------------------------------


def _layout(archive: Archive) -> tuple[str, str, str, str | None]:
    """(layout, entry definitions, manifest, certificate)."""
    if _META in archive.files:
        meta = _key_values(_decode(archive.read_text(_META), _META), _META)
        for key in ("TOSCA-Meta-File-Version", "CSAR-Version", "Entry-Definitions"):
            if not meta.get(key):
                raise refuse(f"{_META} has no {key}", file=_META)
        entry = meta["Entry-Definitions"]
        manifest = meta.get("ETSI-Entry-Manifest") or meta.get("Entry-Manifest")
        if not manifest:
            stem = posixpath.splitext(entry)[0]
            candidates = [
                f"{stem}.mf",
                *(n for n in archive.files if "/" not in n and n.endswith(".mf")),
            ]
            manifest = next((c for c in candidates if c in archive.files), None)
        if not manifest:
            raise refuse(f"{_META} names no manifest (ETSI-Entry-Manifest) and none was found")
        certificate = meta.get("ETSI-Entry-Certificate")
        return "TOSCA-Metadata", entry, manifest, certificate
    roots = [n for n in archive.files if "/" not in n]
    yamls = [n for n in roots if n.endswith((".yaml", ".yml"))]
    if len(yamls) != 1:
        raise refuse(
            "no TOSCA-Metadata/TOSCA.meta, and not exactly one .yaml file at the root "
            f"(found {sorted(yamls)[:5]})"
        )
    entry = yamls[0]
    manifest = posixpath.splitext(entry)[0] + ".mf"
    if manifest not in archive.files:
        raise refuse(f"no manifest {manifest} beside {entry}")
    certificate = posixpath.splitext(entry)[0] + ".cert"
    return "manifest-only", entry, manifest, certificate if certificate in archive.files else None


_SIGNED_CSAR_SUFFIXES = (".csar", ".zip")


def inspect_csar(
    path: Path,
    limits: CsarLimits | None = None,
    chart_to: Path | None = None,
    anchors: Sequence[x509.Certificate] = (),
    csar_to: Path | None = None,
    chart_follower: ChartFollower | None = None,
    streamed: StreamedChart | None = None,
) -> CsarInfo:
    """Check the CSAR at ``path`` (see the module docstring); 400 naming what is wrong.
    ``chart_to``: where to write the chart while its digest is checked (one pass over it);
    ``anchors``: the CA certificates a signature must chain to; ``csar_to``: where the inner
    CSAR of a security-option-2 package is written (a temporary file, removed, without it);
    ``chart_follower``: reads the chart's bytes on another thread while they are hashed and
    written (its answer in ``CsarInfo.chart_followed``; it is told nothing of the digest's
    outcome: a result of it is worth anything only once this returned); ``streamed``: the
    chart as :class:`CsarStream` took it out while the CSAR arrived (used when it is the
    entry the central directory names, its digest compared like any other)."""
    try:
        with open_archive(path, limits) as archive:
            names = _signed_package_names(archive)
            if names is None:
                return _inspect(archive, chart_to, anchors, chart_follower, streamed)
            if csar_to is None:
                with tempfile.TemporaryDirectory(prefix="netweave-csar-") as tmp:
                    return _inspect_signed(
                        archive, names, Path(tmp) / "inner.csar", chart_to, anchors, chart_follower
                    )
            return _inspect_signed(archive, names, csar_to, chart_to, anchors, chart_follower)
    except NetweaveError:
        raise
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, UnicodeError) as exc:
        raise refuse(f"unreadable archive ({type(exc).__name__})") from None


def _signed_package_names(archive: Archive) -> tuple[str, str, str] | None:
    """Option 2's (CSAR, signature, certificate) entries when ``archive`` is such a zip (no
    TOSCA.meta, no root manifest, a root ``.csar``/``.zip``); None for a CSAR."""
    names = sorted(archive.files)
    if _META in archive.files or any("/" not in n and n.endswith(".mf") for n in names):
        return None
    inner = [n for n in names if n.lower().endswith(_SIGNED_CSAR_SUFFIXES)]
    if not inner:
        return None
    option = "a signed package (SOL004 security option 2)"
    if len(inner) != 1 or "/" in inner[0]:
        raise refuse(
            f"{option} holds exactly one CSAR (.csar or .zip) at its root (found {inner[:5]})",
            entry=inner[0],
        )
    stem = posixpath.splitext(inner[0])[0]
    wanted = (f"{stem}.cms", f"{stem}.cert")
    for name, what in zip(wanted, ("signature", "certificate"), strict=True):
        if name not in archive.files:
            suffix = posixpath.splitext(name)[1]
            others = [n for n in names if n.endswith(suffix)]
            hint = f" (it holds {others[:3]}: the three files share one name)" if others else ""
            raise refuse(
                f"{option} has no {what} file {name!r} beside {inner[0]!r}{hint}", entry=name
            )
    extra = [n for n in names if n not in {inner[0], *wanted}]
    if extra:
        raise refuse(
            f"{option} holds only the CSAR, its .cms and its .cert; it also holds "
            f"{len(extra)} other file(s), e.g. {extra[0]!r}",
            entry=extra[0],
        )
    return inner[0], wanted[0], wanted[1]


def _inspect_signed(
    archive: Archive,
    names: tuple[str, str, str],
    csar_to: Path,
    chart_to: Path | None,
    anchors: Sequence[x509.Certificate],
    chart_follower: ChartFollower | None = None,
) -> CsarInfo:
    inner, cms_name, cert_name = names
    cms = archive.read_text(cms_name)
    certificates = load_certificates(archive.read_text(cert_name), cert_name)
    # The digests the signers used, computed while the CSAR is written out: one pass.
    hashers = {
        DIGESTS[s.digest_oid][0]: hashlib.new(DIGESTS[s.digest_oid][0])
        for s in load_cms(cms).signers
        if s.digest_oid in DIGESTS
    }
    with archive.open(inner) as handle, csar_to.open("wb") as sink:
        while chunk := handle.read(_PIECE):
            for hasher in hashers.values():
                hasher.update(chunk)
            sink.write(chunk)
    digests = {name: hasher.digest() for name, hasher in hashers.items()}
    signer = verify_signature(
        cms,
        digests.__getitem__,
        certificates=certificates,
        anchors=anchors,
        what=f"the CSAR {inner}",
    )
    with open_archive(csar_to, archive.limits) as csar:
        if _signed_package_names(csar) is not None:
            raise refuse(f"{inner} is itself a signed package: one level of signing only")
        info = _inspect(csar, chart_to, anchors, chart_follower)
    info.signed = True
    info.signer = signer.subject.rfc4514_string()
    info.certificate = cert_name
    info.security_option = "OPTION_2"
    info.signed_csar = inner
    return info


def _inspect(
    archive: Archive,
    chart_to: Path | None = None,
    anchors: Sequence[x509.Certificate] = (),
    chart_follower: ChartFollower | None = None,
    streamed: StreamedChart | None = None,
) -> CsarInfo:
    layout, entry, manifest_name, certificate = _layout(archive)
    for name in (entry, manifest_name):
        if name not in archive.files:
            raise refuse(f"{name} is not in the package", entry=name)
    signed_part, manifest_signature = split_signed_manifest(archive.read_text(manifest_name))
    manifest = parse_manifest(_decode(signed_part, manifest_name), manifest_name)
    package_certs: list[x509.Certificate] = []
    if certificate is not None:
        if certificate not in archive.files:
            raise refuse(f"the certificate {certificate} is not in the package", entry=certificate)
        package_certs = load_certificates(archive.read_text(certificate), certificate)
    signatures = {a.signature for a in manifest.entries if a.signature}
    if certificate is not None and manifest_signature is None and not signatures:
        raise refuse(
            f"the package carries the certificate {certificate} but nothing signed with it "
            "(no CMS signature in the manifest, no artifact Signature)",
            entry=certificate,
        )
    signer = None
    if manifest_signature is not None:
        signer = verify_signature(
            manifest_signature,
            lambda algorithm: hashlib.new(algorithm, signed_part).digest(),
            certificates=package_certs,
            anchors=anchors,
            what=f"the manifest {manifest_name}",
        )
    # The signature and certificate files are not listed with digests of their own.
    exempt = {_META, manifest_name}
    if certificate is not None:
        exempt.add(certificate)
    for artifact in manifest.entries:
        for ref in (artifact.signature, artifact.certificate):
            if ref is None:
                continue
            if ref not in archive.files:
                raise refuse(
                    f"{manifest_name}: {artifact.path} names {ref!r}, which is not in the package",
                    entry=ref,
                )
            exempt.add(ref)
    listed: dict[str, Artifact] = {}
    for artifact in manifest.entries:
        if "://" in artifact.path:
            raise refuse(
                f"{manifest_name} lists the external artifact {artifact.path!r}: artifacts "
                "outside the package are not supported (nothing is fetched while onboarding)",
                entry=artifact.path,
            )
        name = posixpath.normpath(artifact.path)
        if name not in archive.files:
            raise refuse(f"{manifest_name} lists {artifact.path!r}, which is not in the package")
        listed[name] = artifact
    unlisted = sorted(n for n in archive.files if n not in listed and n not in exempt)
    if unlisted:
        raise refuse(
            f"{manifest_name} does not list {len(unlisted)} file(s) of the package, e.g. "
            f"{unlisted[0]!r} (every file needs its digest)",
            entry=unlisted[0],
        )
    charts = sorted(
        n for n in archive.files if n.startswith(CHART_DIR) and n.endswith((".tgz", ".tar.gz"))
    )
    if len(charts) != 1:
        raise refuse(
            f"a package netweave deploys holds exactly one Helm chart archive under {CHART_DIR} "
            f"(found {len(charts)})",
            entry=CHART_DIR,
        )
    digests: dict[tuple[str, str], bytes] = {}
    followed: object = None
    for name, artifact in listed.items():
        algorithm = _ALGORITHMS[artifact.algorithm]
        if name == charts[0] and algorithm == "sha256" and _same_entry(archive, name, streamed):
            assert streamed is not None
            # Taken out while the CSAR arrived: the very bytes the entry holds (same offset,
            # name, method, sizes, CRC checked), hashed then.
            actual, followed = streamed.sha256, streamed.followed
            if chart_to is not None:
                os.replace(streamed.path, chart_to)
        elif name == charts[0]:
            actual, followed = archive.digest_following(name, algorithm, chart_to, chart_follower)
        else:
            actual = archive.digest(name, algorithm)
        if actual != artifact.hash:
            raise refuse(
                f"the {artifact.algorithm} digest of {name} does not match {manifest_name}",
                entry=name,
            )
        digests[name, algorithm] = bytes.fromhex(actual)
    for name, artifact in listed.items():
        if artifact.signature is not None:
            _verify_artifact(archive, name, artifact, digests, package_certs, anchors)
    files: list[str] = []

    def read(name: str) -> bytes:
        files.append(name)
        return archive.read_text(name)

    vnfd = read_vnfd(entry, read)
    versions = [
        v.strip()
        for v in manifest.metadata.get("compatible_specification_versions", "").split(",")
        if v.strip()
    ]
    return CsarInfo(
        layout=layout,
        entry_definitions=entry,
        manifest=manifest_name,
        vnfd=vnfd,
        chart=charts[0],
        artifacts=[listed[n] for n in sorted(listed)],
        manifest_metadata=manifest.metadata,
        compatible_versions=versions,
        vnfd_files=sorted(set(files)),
        signed=manifest_signature is not None or bool(signatures),
        security_option="OPTION_1" if manifest_signature is not None or signatures else None,
        signer=signer.subject.rfc4514_string() if signer is not None else None,
        certificate=certificate,
        chart_followed=followed,
    )


def _same_entry(archive: Archive, name: str, streamed: StreamedChart | None) -> bool:
    if streamed is None:
        return False
    info = archive.files[name]
    return (
        info.filename == streamed.name
        and info.header_offset == streamed.header_offset
        and info.compress_type == streamed.method
        and info.compress_size == streamed.compress_size
        and info.file_size == streamed.file_size
        and streamed.crc == info.CRC
        and not info.flag_bits & 0x1
    )


def _verify_artifact(
    archive: Archive,
    name: str,
    artifact: Artifact,
    digests: dict[tuple[str, str], bytes],
    package_certs: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
) -> None:
    """An artifact's own signature (its content's digest reused when the signer used the
    manifest's algorithm: a large chart is read once)."""
    assert artifact.signature is not None
    certs = list(package_certs)
    if artifact.certificate is not None:
        certs += load_certificates(archive.read_text(artifact.certificate), artifact.certificate)

    def digest_of(algorithm: str) -> bytes:
        if (name, algorithm) not in digests:
            digests[name, algorithm] = bytes.fromhex(archive.digest(name, algorithm))
        return digests[name, algorithm]

    verify_signature(
        archive.read_text(artifact.signature),
        digest_of,
        certificates=certs,
        anchors=anchors,
        what=name,
    )


# -- the chart inside -------------------------------------------------------------------------


class _Capped(io.RawIOBase):
    """Stops reading beyond ``limit`` decompressed bytes (a bomb inside the chart)."""

    def __init__(self, source: IO[bytes] | gzip.GzipFile, limit: int) -> None:
        self._source = source
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self._source.read(min(len(view), self._left + 1))
        if len(data) > self._left:
            raise refuse("the chart archive expands beyond the size limit")
        self._left -= len(data)
        view[: len(data)] = data
        return len(data)


def chart_identity(path: Path, limits: CsarLimits | None = None) -> tuple[str, str]:
    """The name and version of the chart archive at ``path`` (its ``Chart.yaml``), read by
    streaming at most the size limits; the adapter checks the whole archive when storing it."""
    limits = limits or CsarLimits()
    try:
        with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            capped = io.BufferedReader(_Capped(gz, limits.max_uncompressed_bytes), 1 << 16)
            with tarfile.open(fileobj=capped, mode="r|", errorlevel=2) as tar:
                for count, member in enumerate(tar):
                    if count > limits.max_entries:
                        break
                    parts = member.name.strip("/").split("/")
                    if len(parts) != 2 or parts[1] != "Chart.yaml" or not member.isfile():
                        continue
                    if member.size > limits.max_chart_yaml_bytes:
                        break
                    handle = tar.extractfile(member)
                    if handle is None:
                        break
                    chart = load_yaml(handle.read(limits.max_chart_yaml_bytes), "Chart.yaml")
                    name, version = chart.get("name"), chart.get("version")
                    if isinstance(name, str) and isinstance(version, str | int | float):
                        return name, str(version)
                    break
    except NetweaveError as exc:
        raise refuse(f"the chart archive: {exc.message}") from None
    except (OSError, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise refuse(f"the chart archive is not a readable .tgz ({type(exc).__name__})") from None
    raise refuse("the chart archive has no Chart.yaml naming the chart and its version")


__all__ = [
    "CHART_DIR",
    "Archive",
    "Artifact",
    "ChartFollower",
    "CsarInfo",
    "CsarLimits",
    "CsarStream",
    "Manifest",
    "StreamedChart",
    "chart_identity",
    "inspect_csar",
    "open_archive",
    "parse_manifest",
]
