"""Streaming ``multipart/form-data`` for package uploads.

Litestar's built-in form parsing collects the whole body in memory before a handler runs, which
a 1 GiB chart archive must not do. Here the raw ``request.stream()`` goes through
``multipart.PushMultipartParser`` (the sans-IO parser Litestar itself depends on, so no new
dependency): the archive part is written to a temporary file chunk by chunk while its sha256 is
computed, and the size limit is enforced up front from ``Content-Length`` and again on the bytes
actually received, so an oversize upload is refused with 413 before the body is read.

While the archive is written, a thread reads it back as it grows and runs the chart-archive
inspection (:func:`netweave.adapters.charts.inspect_received`, under the default limits) on it,
so that a chart's safety checks are done when its last byte arrives instead of after: an
archive that passes is recorded by its checksum (:func:`~netweave.adapters.charts.
remember_received`) until the upload is handled, and an adapter inspecting it under the same
limits takes that result. Anything else (not a chart, refused, other limits) is inspected by
the adapter as before, so this only ever saves work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import multipart  # type: ignore[import-untyped]
from litestar import Request

from netweave.adapters.charts import (
    DEFAULT_LIMITS,
    ArchiveFacts,
    expands_too_much,
    forget_received,
    inspect_received,
    remember_received,
)
from netweave.errors import InvalidInput, PayloadTooLarge
from netweave.packaging.growing import Abandoned, GrowingFile

_log = logging.getLogger("netweave.api.uploads")

#: Form fields other than the archive are small; their total is capped separately.
MAX_FIELDS_BYTES = 64 * 1024
#: Room for boundaries, part headers and the small fields on top of the archive limit.
ENVELOPE_BYTES = MAX_FIELDS_BYTES + 16 * 1024
ARCHIVE_FIELDS = ("chart", "package")
TEXT_FIELDS = frozenset(
    {"name", "artifactVersion", "adapter", "packageType", "description", "provider"}
)


@dataclass(slots=True)
class ReceivedUpload:
    fields: dict[str, str] = field(default_factory=dict)
    archive: Path | None = None
    filename: str | None = None
    size: int = 0
    checksum: str | None = None
    #: Whether the archive passed the inspection while it was received (and is remembered).
    inspected: bool = False

    def discard(self) -> None:
        if self.inspected and self.checksum is not None:
            forget_received(self.checksum)
            self.inspected = False
        if self.archive is not None:
            with contextlib.suppress(FileNotFoundError):
                self.archive.unlink()
            self.archive = None


#: Archives read back and inspected while they are received, at most this many at once (a
#: thread each); past it, the adapter inspects the archive after it arrived, as before.
MAX_FOLLOWED = 4
_followed = threading.BoundedSemaphore(MAX_FOLLOWED)


def _follow(
    follower: GrowingFile,
    size_bound: int,
    outcome: concurrent.futures.Future[tuple[ArchiveFacts, int] | None],
) -> None:
    try:
        with io.BufferedReader(follower, buffer_size=64 * 1024) as raw:
            result: tuple[ArchiveFacts, int] | None = inspect_received(
                raw, size_bound, DEFAULT_LIMITS
            )
    except InvalidInput:
        result = None  # the adapter inspects it again and says why
    except Abandoned:
        result = None
    except BaseException as exc:  # pragma: no cover - a bug: reported where it is awaited
        outcome.set_exception(exc)
        return
    finally:
        _followed.release()
    outcome.set_result(result)


def _start_following(path: Path, size_bound: int) -> tuple[GrowingFile, asyncio.Future[Any]] | None:
    if not _followed.acquire(blocking=False):
        return None
    try:
        follower = GrowingFile(path)
    except OSError:
        _followed.release()
        return None
    outcome: concurrent.futures.Future[tuple[ArchiveFacts, int] | None] = (
        concurrent.futures.Future()
    )
    threading.Thread(
        target=_follow,
        args=(follower, size_bound, outcome),
        name="netweave-upload-inspect",
        daemon=True,
    ).start()
    return follower, asyncio.wrap_future(outcome)


async def _inspected(
    following: tuple[GrowingFile, asyncio.Future[Any]], received: ReceivedUpload
) -> None:
    """Wait for the inspection of the complete archive (it has followed the stream, so
    little is left) and remember a pass."""
    follower, outcome = following
    follower.end()
    try:
        result = await outcome
    except Exception:  # a defect of its own must not fail the upload: the adapter inspects
        _log.exception("the inspection of a received archive failed")
        return
    if result is None or received.checksum is None:
        return
    facts, decompressed = result
    # The ratio rule with the real size (the thread knew only a bound of it).
    if expands_too_much(decompressed, received.size, DEFAULT_LIMITS):
        return
    remember_received(
        received.checksum,
        dataclasses.replace(facts, compressed_bytes=received.size),
        DEFAULT_LIMITS,
    )
    received.inspected = True


def _write_all(sink: IO[bytes], data: Any) -> None:
    view = memoryview(data)
    while view:
        written = sink.write(view)
        if not written:
            raise OSError("the upload's temporary file took no bytes")
        view = view[written:]


def _boundary(content_type: str) -> str:
    media, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if media != "multipart/form-data" or not boundary:
        raise InvalidInput(
            "a multipart/form-data body with a boundary is required",
            details={"header": "Content-Type"},
        )
    return str(boundary)


async def receive_upload(
    request: Request[Any, Any, Any], *, max_bytes: int, tmp_dir: Path, inspect: bool = False
) -> ReceivedUpload:
    """Parse the form, stream the archive part to ``tmp_dir``. The caller deletes the file
    (:meth:`ReceivedUpload.discard`). ``inspect``: inspect a chart archive as it arrives (the
    caller's ``discard`` forgets the result)."""
    boundary = _boundary(request.headers.get("content-type", ""))
    announced = request.headers.get("content-length")
    if announced is not None:
        try:
            announced_size = int(announced)
        except ValueError:
            raise InvalidInput(
                "Content-Length is not a number", details={"header": "Content-Length"}
            ) from None
        if announced_size > max_bytes + ENVELOPE_BYTES:
            raise PayloadTooLarge(
                f"the upload is {announced_size} bytes; the limit is {max_bytes}",
                details={"limit": max_bytes},
            )
    # The archive is at most this large (its inspection's ratio rule needs a bound of it).
    size_bound = min(announced_size, max_bytes) if announced is not None else max_bytes
    tmp_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  (one cheap syscall)
    received = ReceivedUpload()
    parser = multipart.PushMultipartParser(
        boundary, max_header_size=8192, max_header_count=8, max_segment_count=16
    )
    sink: IO[bytes] | None = None
    following: tuple[GrowingFile, asyncio.Future[Any]] | None = None
    digest: Any = None
    text_buffer: bytearray | None = None
    text_name: str | None = None
    text_total = 0
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_bytes + ENVELOPE_BYTES:
                raise PayloadTooLarge(
                    f"the upload exceeds the limit of {max_bytes} bytes",
                    details={"limit": max_bytes},
                )
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    name = event.name or ""
                    if name in ARCHIVE_FIELDS:
                        if received.archive is not None:
                            raise InvalidInput(
                                "only one archive part (chart or package) is allowed",
                                details={"field": name},
                            )
                        fd, path = tempfile.mkstemp(prefix="upload-", suffix=".tgz", dir=tmp_dir)
                        # Unbuffered: what was written is in the file for the inspecting thread.
                        sink = os.fdopen(fd, "wb", buffering=0)
                        received.archive = Path(path)
                        received.filename = event.filename
                        digest = hashlib.sha256()
                        if inspect:
                            following = _start_following(received.archive, size_bound)
                    elif name in TEXT_FIELDS:
                        if name in received.fields:
                            raise InvalidInput(
                                f"form field {name!r} given twice", details={"field": name}
                            )
                        text_name, text_buffer = name, bytearray()
                    else:
                        raise InvalidInput(
                            f"unknown form field {name!r}; expected one of "
                            f"{sorted(TEXT_FIELDS | set(ARCHIVE_FIELDS))}",
                            details={"field": name},
                        )
                elif event is None:
                    if sink is not None:
                        sink.close()
                        sink = None
                        received.checksum = f"sha256:{digest.hexdigest()}"
                        if following is not None:
                            inspection, following = following, None
                            await _inspected(inspection, received)
                    elif text_buffer is not None and text_name is not None:
                        try:
                            received.fields[text_name] = text_buffer.decode("utf-8")
                        except UnicodeDecodeError:
                            raise InvalidInput(
                                f"form field {text_name!r} is not UTF-8",
                                details={"field": text_name},
                            ) from None
                        text_buffer, text_name = None, None
                elif sink is not None:
                    received.size += len(event)
                    if received.size > max_bytes:
                        raise PayloadTooLarge(
                            f"the archive exceeds the limit of {max_bytes} bytes",
                            details={"limit": max_bytes},
                        )
                    digest.update(event)
                    _write_all(sink, event)
                    if following is not None:
                        following[0].wrote(received.size)
                elif text_buffer is not None:
                    text_total += len(event)
                    if text_total > MAX_FIELDS_BYTES:
                        raise InvalidInput(
                            "form fields are too large", details={"field": text_name}
                        )
                    text_buffer.extend(event)
        parser.close()
    except multipart.MultipartError as exc:
        if following is not None:
            following[0].end(abandoned=True)
        if sink is not None:
            sink.close()
        received.discard()
        raise InvalidInput(
            f"malformed multipart body: {exc}", details={"header": "Content-Type"}
        ) from None
    except BaseException:
        if following is not None:
            following[0].end(abandoned=True)
        if sink is not None:
            sink.close()
        received.discard()
        raise
    if following is not None:
        following[0].end(abandoned=True)
    if sink is not None:  # stream ended inside the archive part (close() would have raised)
        sink.close()
    return received
