"""Streaming inspection of an uploaded chart archive, before Helm ever sees it: the one safe
chart-archive inspector every adapter that onboards Helm charts uses (Helm, ONAP).

The archive is read once, sequentially (``tarfile`` stream mode over ``gzip``), and refused with
:class:`~netweave.errors.InvalidInput` at the first sign of trouble: not gzip (or a zip), path
traversal, absolute paths, links, device files, duplicate entries, too many entries, too deep,
a file or total size over the limits, a decompression ratio typical of a bomb, or a metadata file
that is not valid YAML/JSON, or a ``values.schema.json`` (of the chart or of any subchart, also
inside vendored ``charts/*.tgz``) that refers outside itself (:mod:`netweave.adapters.chartschema`:
Helm would fetch or read what it names). Nothing is written anywhere: only ``Chart.yaml``,
``requirements.yaml``, ``values.yaml``, the schemas and vendored subchart archives are read into
memory (each bounded).

Why ``gzip.GzipFile`` under ``tarfile.open(mode="r|")`` rather than ``"r|gz"``: CPython 3.11's
stream-mode gzip reader mishandles the gzip ``FEXTRA`` header field, which Helm writes into every
archive it packages.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import yaml

from netweave.adapters.chartschema import external_references, load_schema
from netweave.errors import InvalidInput

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
#: Per-entry allowance for tar headers and padding on top of the file contents.
_HEADER_ALLOWANCE = 1536


class ArchiveLimits(Protocol):
    """The bounds an archive must stay within; an adapter's config section (Helm's
    ``limits``) or :class:`DefaultArchiveLimits`."""

    @property
    def max_entries(self) -> int: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def max_file_bytes(self) -> int: ...
    @property
    def max_uncompressed_bytes(self) -> int: ...
    @property
    def max_ratio(self) -> float: ...
    @property
    def ratio_floor_bytes(self) -> int: ...
    @property
    def max_path_length(self) -> int: ...
    @property
    def max_metadata_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DefaultArchiveLimits:
    """The limits an adapter without a ``limits`` section of its own applies (Helm's
    defaults; its loader refuses files above 5 MiB and charts above 100 MiB decompressed)."""

    max_entries: int = 10_000
    max_depth: int = 32
    max_file_bytes: int = 5 * 1024 * 1024
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    #: Decompressed/compressed ratio beyond which an archive is a bomb, once it is larger than
    #: ``ratio_floor_bytes`` (small YAML compresses very well and is harmless).
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 8 * 1024 * 1024
    max_path_length: int = 1024
    #: ``Chart.yaml`` / ``requirements.yaml`` are parsed in Python; keep them small.
    max_metadata_bytes: int = 1024 * 1024


DEFAULT_LIMITS = DefaultArchiveLimits()


class _ArchiveRefused(Exception):
    """Internal: raised from inside the stream to abort reading at once."""


class NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses YAML aliases (a cheap defence against "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed here", event.start_mark
            )
        return super().compose_node(parent, index)


class _BoundedReader(io.RawIOBase):
    """Counts decompressed bytes and stops reading beyond the limits (size and ratio)."""

    def __init__(
        self,
        source: IO[bytes] | io.BufferedIOBase,
        *,
        limit: int,
        compressed: int,
        limits: ArchiveLimits,
    ):
        self._source = source
        self._limit = limit
        self._compressed = max(compressed, 1)
        self._limits = limits
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self._source.read(len(view))
        n = len(data)
        view[:n] = data
        self.count += n
        if self.count > self._limit:
            raise _ArchiveRefused(
                f"archive expands beyond {self._limits.max_uncompressed_bytes} bytes"
            )
        if expands_too_much(self.count, self._compressed, self._limits):
            raise _ArchiveRefused(
                f"archive expands more than {self._limits.max_ratio:g} times its compressed "
                "size (a decompression bomb?)"
            )
        return n


@dataclass(frozen=True, slots=True)
class ArchiveFacts:
    """What the streaming pass learnt about a well-formed chart archive."""

    top: str
    entries: int
    uncompressed_bytes: int
    compressed_bytes: int
    chart_yaml: dict[str, Any]
    requirements: dict[str, Any] | None = None
    has_values_schema: bool = False
    #: Names under ``charts/``: sub-directories and archive file names.
    vendored: frozenset[str] = field(default_factory=frozenset)
    #: The chart's own ``values.yaml`` (``None`` without one).
    values: dict[str, Any] | None = None


def refuse(message: str, **details: Any) -> InvalidInput:
    return InvalidInput(f"invalid chart archive: {message}", details=details)


def inspect_archive(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> ArchiveFacts:
    """Check the archive at ``path`` against ``limits``; raise ``InvalidInput`` if hostile."""
    with _refusals():
        compressed = path.stat().st_size
        with path.open("rb") as raw:
            return _inspect_raw(raw, compressed, limits)[0]


def inspect_received(
    raw: IO[bytes], size_bound: int, limits: ArchiveLimits = DEFAULT_LIMITS
) -> tuple[ArchiveFacts, int]:
    """:func:`inspect_archive` of an archive while it is being received (``raw`` returns what a
    read of the finished file would), so its size is not known yet: the decompression-ratio
    check uses ``size_bound`` (at least the final size: nothing :func:`inspect_archive` accepts
    is refused) and the decompressed byte count is returned, for :func:`expands_too_much` with
    the final size once it is known. The same refusals otherwise."""
    with _refusals():
        return _inspect_raw(raw, size_bound, limits)


def expands_too_much(decompressed: int, compressed: int, limits: ArchiveLimits) -> bool:
    """The decompression-ratio rule (a bomb), as :func:`inspect_archive` applies it."""
    return (
        decompressed > limits.ratio_floor_bytes
        and decompressed / max(compressed, 1) > limits.max_ratio
    )


#: The limits' fields, in the order a key of them is made (:func:`received_facts`).
_LIMIT_FIELDS = (
    "max_entries",
    "max_depth",
    "max_file_bytes",
    "max_uncompressed_bytes",
    "max_ratio",
    "ratio_floor_bytes",
    "max_path_length",
    "max_metadata_bytes",
)
#: Archives inspected while they were received (the API's upload receiver), by the
#: ``sha256:<hex>`` of their bytes, with the limits they passed; held while their upload is
#: handled, so an adapter inspecting that upload under the same limits need not read it again.
_received: dict[str, tuple[tuple[Any, ...], ArchiveFacts]] = {}
#: At most this many are held (the oldest goes first; forgetting one only costs a re-read).
MAX_RECEIVED = 32


def _limits_key(limits: ArchiveLimits) -> tuple[Any, ...]:
    return tuple(getattr(limits, name) for name in _LIMIT_FIELDS)


def remember_received(checksum: str, facts: ArchiveFacts, limits: ArchiveLimits) -> None:
    """Record that the archive whose bytes hash to ``checksum`` passed the inspection under
    ``limits`` with ``facts`` (only a pass is recorded; :func:`forget_received` when done)."""
    _received.pop(checksum, None)
    while len(_received) >= MAX_RECEIVED:
        _received.pop(next(iter(_received)), None)
    _received[checksum] = (_limits_key(limits), facts)


def forget_received(checksum: str) -> None:
    _received.pop(checksum, None)


def received_facts(checksum: str | None, limits: ArchiveLimits) -> ArchiveFacts | None:
    """The facts :func:`inspect_archive` would give for the archive whose bytes hash to
    ``checksum`` under ``limits``, when it was inspected under the same limits as it was
    received; ``None`` otherwise (then inspect it)."""
    if checksum is None:
        return None
    found = _received.get(checksum)
    if found is None or found[0] != _limits_key(limits):
        return None
    return found[1]


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except _ArchiveRefused as exc:
        raise refuse(str(exc)) from None
    except InvalidInput:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise refuse(f"corrupt or truncated archive ({type(exc).__name__}: {exc})") from None
    except UnicodeError:
        raise refuse("an entry name is not valid UTF-8") from None
    except OSError as exc:
        raise refuse(f"unreadable archive ({type(exc).__name__})") from None


def _inspect_raw(
    raw: IO[bytes], compressed: int, limits: ArchiveLimits
) -> tuple[ArchiveFacts, int]:
    magic = raw.read(4)
    if not magic:
        raise refuse("the file is empty")
    if magic.startswith(_ZIP_MAGICS[0][:2]) and magic in _ZIP_MAGICS:
        raise refuse("a zip archive was sent where a gzip-compressed tar (.tgz) is expected")
    if not magic.startswith(_GZIP_MAGIC):
        raise refuse("not gzip data (a chart is a gzip-compressed tar, .tgz)")
    raw.seek(0)
    return _inspect_stream(raw, compressed, limits)


def _inspect_stream(
    raw: IO[bytes], compressed: int, limits: ArchiveLimits
) -> tuple[ArchiveFacts, int]:
    allowance = limits.max_uncompressed_bytes + _HEADER_ALLOWANCE * (limits.max_entries + 8)
    with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        reader = _BoundedReader(gz, limit=allowance, compressed=compressed, limits=limits)
        buffered = io.BufferedReader(reader, buffer_size=64 * 1024)
        with tarfile.open(fileobj=buffered, mode="r|", errorlevel=2) as tar:
            return _walk(tar, compressed, limits), reader.count


_METADATA_FILES = {"Chart.yaml", "requirements.yaml", "values.yaml", "values.schema.json"}


def _walk(tar: tarfile.TarFile, compressed: int, limits: ArchiveLimits) -> ArchiveFacts:
    seen: set[str] = set()
    tops: set[str] = set()
    vendored: set[str] = set()
    metadata: dict[str, bytes] = {}
    budget = _Budget(limits)  # for the vendored subchart archives, together
    total = 0
    entries = 0
    for member in tar:  # bounded: refused beyond limits.max_entries
        entries += 1
        if entries > limits.max_entries:
            raise refuse(f"more than {limits.max_entries} entries")
        parts = _check_name(member.name, limits)
        key = "/".join(parts)
        if key in seen:
            raise refuse(f"duplicate entry {member.name!r}", entry=member.name)
        seen.add(key)
        _check_type(member)
        tops.add(parts[0])
        if len(tops) > 1:
            raise refuse(
                "more than one top-level entry; a chart archive holds exactly one chart "
                f"directory (found {sorted(tops)})"
            )
        if member.isdir():
            if len(parts) == 3 and parts[1] == "charts":
                vendored.add(parts[2])
            continue
        if len(parts) == 1:
            raise refuse(f"file {member.name!r} outside the chart directory", entry=member.name)
        if member.size > limits.max_file_bytes:
            raise refuse(
                f"entry {member.name!r} is {member.size} bytes, over the {limits.max_file_bytes}"
                "-byte limit for one file",
                entry=member.name,
            )
        total += member.size
        if total > limits.max_uncompressed_bytes:
            raise refuse(f"contents exceed {limits.max_uncompressed_bytes} bytes uncompressed")
        if len(parts) >= 3 and parts[1] == "charts":
            vendored.add(parts[2])
        if len(parts) > 2 and _is_nested(parts):
            _scan_member(tar, member, "/".join(parts[1:]), limits, budget, 0)
            continue
        if len(parts) == 2 and parts[1] in _METADATA_FILES:
            bound = (
                limits.max_file_bytes
                if parts[1] in {"values.yaml", "values.schema.json"}
                else limits.max_metadata_bytes
            )
            if member.size > bound:
                raise refuse(f"{parts[1]} is larger than {bound} bytes")
            handle = tar.extractfile(member)
            if handle is None:  # pragma: no cover - regular files always have data
                raise refuse(f"{parts[1]} has no content")
            metadata[parts[1]] = handle.read(bound + 1)
    if not tops:
        raise refuse("the archive holds no files")
    top = next(iter(tops))
    if "Chart.yaml" not in metadata:
        raise refuse(f"no Chart.yaml in the chart directory {top!r}/")
    chart_yaml = _load_yaml(metadata["Chart.yaml"], "Chart.yaml", strict=True)
    if not isinstance(chart_yaml, dict):
        raise refuse("Chart.yaml is not a YAML mapping")
    requirements = None
    if "requirements.yaml" in metadata:
        loaded = _load_yaml(metadata["requirements.yaml"], "requirements.yaml", strict=True)
        if loaded is not None and not isinstance(loaded, dict):
            raise refuse("requirements.yaml is not a YAML mapping")
        requirements = loaded
    values = None
    if "values.yaml" in metadata:
        values = _load_yaml(metadata["values.yaml"], "values.yaml", strict=False)
        if values is not None and not isinstance(values, dict):
            raise refuse("values.yaml is not a YAML mapping")
    if "values.schema.json" in metadata:
        _check_schema(metadata["values.schema.json"], "values.schema.json")
    return ArchiveFacts(
        top=top,
        entries=entries,
        uncompressed_bytes=total,
        compressed_bytes=compressed,
        chart_yaml=chart_yaml,
        requirements=requirements,
        has_values_schema="values.schema.json" in metadata,
        vendored=frozenset(vendored),
        values=values,
    )


_SCHEMA_FILE = "values.schema.json"
#: Subchart archives inside subchart archives: deeper than this is refused (Helm has no bound).
MAX_NESTED_ARCHIVES = 8


class _Budget:
    """Decompressed bytes the nested archives of one chart may still expand to, together."""

    def __init__(self, limits: ArchiveLimits) -> None:
        # Tar headers and padding count too.
        self.left = limits.max_uncompressed_bytes + _HEADER_ALLOWANCE * (limits.max_entries + 8)


def _is_nested(parts: list[str]) -> bool:
    """A subchart's schema, or a vendored subchart archive (Helm loads ``charts/*.tgz``)."""
    if parts[-1] == _SCHEMA_FILE:
        return True
    return parts[-1].endswith(".tgz") and "charts" in parts[1:-1]


def _check_schema(data: bytes, where: str) -> None:
    """Refuse a schema that is not JSON or that refers outside itself."""
    try:
        schema = load_schema(data)
    except ValueError as exc:
        raise refuse(f"{where} is not valid JSON ({_one_line(str(exc))})", file=where) from None
    if not isinstance(schema, dict | bool):
        raise refuse(f"{where} is not a JSON Schema object", file=where)
    found = external_references(schema)
    if found:
        first = found[0]
        raise InvalidInput(
            f"{where} refers outside itself ({first.keyword} {first.value!r} at "
            f"{first.pointer or '/'}): the gateway does not let Helm fetch schema references "
            "from the network or read them from the file system; bundle the referenced schema "
            "into the chart's schema (under $defs or definitions) and refer to it with '#/...'",
            details={
                "file": where,
                "references": [
                    {"keyword": r.keyword, "value": r.value, "pointer": r.pointer or "/"}
                    for r in found
                ],
            },
        )


def _scan_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    where: str,
    limits: ArchiveLimits,
    budget: _Budget,
    depth: int,
) -> None:
    """Check one schema file, or every schema inside one vendored subchart archive."""
    if not member.isreg():
        return
    if member.size > limits.max_file_bytes:
        raise refuse(f"{where} is larger than {limits.max_file_bytes} bytes", entry=where)
    handle = tar.extractfile(member)
    if handle is None:  # pragma: no cover - regular files always have data
        return
    data = handle.read(limits.max_file_bytes + 1)
    if member.name.rsplit("/", 1)[-1] == _SCHEMA_FILE:
        _check_schema(data, where)
    else:
        _scan_archive(io.BytesIO(data), len(data), f"{where}:", limits, budget, depth + 1)


def _scan_archive(
    raw: IO[bytes],
    compressed: int,
    prefix: str,
    limits: ArchiveLimits,
    budget: _Budget,
    depth: int,
) -> None:
    """Every schema in a (sub)chart archive, leniently: Helm loads the archive, the gateway
    never extracts it, so only its schemas and its own subchart archives matter here."""
    if depth > MAX_NESTED_ARCHIVES:
        raise refuse(f"subchart archives nested more than {MAX_NESTED_ARCHIVES} deep ({prefix})")
    where = prefix.rstrip(":") or "the chart"
    if raw.read(2) != _GZIP_MAGIC:
        raise refuse(f"{where} is not a gzip-compressed chart archive", entry=where)
    raw.seek(0)
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            reader = _BoundedReader(gz, limit=budget.left, compressed=compressed, limits=limits)
            buffered = io.BufferedReader(reader, buffer_size=64 * 1024)
            with tarfile.open(fileobj=buffered, mode="r|", errorlevel=2) as tar:
                for member in tar:  # bounded by the budget of decompressed bytes
                    parts = member.name.rstrip("/").split("/")
                    if len(parts) >= 2 and _is_nested(parts):
                        _scan_member(
                            tar, member, prefix + "/".join(parts[1:]), limits, budget, depth
                        )
            budget.left -= reader.count
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeError):
        raise refuse(f"{where} is not a readable chart archive", entry=where) from None


def check_schema_references(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Refuse the chart archive at ``path`` when any schema in it (or in its vendored
    subcharts) refers outside itself; run before Helm loads an archive not inspected here."""
    try:
        with path.open("rb") as raw:
            _scan_archive(raw, path.stat().st_size, "", limits, _Budget(limits), 0)
    except _ArchiveRefused as exc:
        raise refuse(str(exc)) from None
    except OSError as exc:
        raise refuse(f"unreadable archive ({type(exc).__name__})") from None


def _check_name(name: str, limits: ArchiveLimits) -> list[str]:
    if not name or "\x00" in name:
        raise refuse("an entry has an empty or NUL-containing name")
    if len(name) > limits.max_path_length:
        raise refuse(f"entry name longer than {limits.max_path_length} characters")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise refuse(f"absolute path {name!r}", entry=name)
    if "\\" in name:
        raise refuse(f"backslash in entry name {name!r}", entry=name)
    parts = name.rstrip("/").split("/")
    for part in parts:
        if part in {"", ".", ".."}:
            raise refuse(f"path traversal or empty component in {name!r}", entry=name)
    if len(parts) > limits.max_depth:
        raise refuse(f"entry {name!r} is nested deeper than {limits.max_depth} levels", entry=name)
    return parts


def _check_type(member: tarfile.TarInfo) -> None:
    if member.issparse() or member.type == tarfile.GNUTYPE_SPARSE:
        # Sparse members expand beyond their stored bytes; charts never need them.
        raise refuse(f"sparse file {member.name!r} is not allowed", entry=member.name)
    if member.isreg() or member.isdir():
        return
    if member.issym():
        kind = "symbolic link"
    elif member.islnk():
        kind = "hard link"
    elif member.ischr() or member.isblk():
        kind = "device file"
    elif member.isfifo():
        kind = "FIFO"
    else:
        kind = f"special entry (type {member.type!r})"
    raise refuse(f"{kind} {member.name!r} is not allowed", entry=member.name)


def _load_yaml(data: bytes, what: str, *, strict: bool) -> Any:
    loader: type[yaml.SafeLoader] = NoAliasLoader if strict else yaml.SafeLoader
    try:
        return yaml.load(data, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise refuse(f"{what} is not valid YAML: {_one_line(str(exc))}") from None
    except (UnicodeDecodeError, RecursionError):
        raise refuse(f"{what} is not valid UTF-8 YAML") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def safe_extract(path: Path, destination: Path) -> None:
    """Extract an archive that already passed :func:`inspect_archive` (defence in depth:
    ``tarfile``'s ``data`` filter refuses links, devices and paths leaving ``destination``)."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            tar.extractall(destination, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise refuse(f"cannot extract archive ({type(exc).__name__})") from None


__all__ = [
    "DEFAULT_LIMITS",
    "MAX_NESTED_ARCHIVES",
    "ArchiveFacts",
    "ArchiveLimits",
    "DefaultArchiveLimits",
    "NoAliasLoader",
    "check_schema_references",
    "expands_too_much",
    "forget_received",
    "inspect_archive",
    "inspect_received",
    "received_facts",
    "refuse",
    "remember_received",
    "safe_extract",
]
