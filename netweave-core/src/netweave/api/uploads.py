"""Streaming ``multipart/form-data`` for package uploads.

Litestar's built-in form parsing collects the whole body in memory before a handler runs, which
a 1 GiB chart archive must not do. Here the raw ``request.stream()`` goes through
``multipart.PushMultipartParser`` (the sans-IO parser Litestar itself depends on, so no new
dependency): the archive part is written to a temporary file chunk by chunk while its sha256 is
computed, and the size limit is enforced up front from ``Content-Length`` and again on the bytes
actually received, so an oversize upload is refused with 413 before the body is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import multipart  # type: ignore[import-untyped]
from litestar import Request

from netweave.errors import InvalidInput, PayloadTooLarge

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

    def discard(self) -> None:
        if self.archive is not None:
            with contextlib.suppress(FileNotFoundError):
                self.archive.unlink()
            self.archive = None


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
    request: Request[Any, Any, Any], *, max_bytes: int, tmp_dir: Path
) -> ReceivedUpload:
    """Parse the form, stream the archive part to ``tmp_dir``. The caller deletes the file."""
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
    tmp_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  (one cheap syscall)
    received = ReceivedUpload()
    parser = multipart.PushMultipartParser(
        boundary, max_header_size=8192, max_header_count=8, max_segment_count=16
    )
    sink: IO[bytes] | None = None
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
                        sink = os.fdopen(fd, "wb")
                        received.archive = Path(path)
                        received.filename = event.filename
                        digest = hashlib.sha256()
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
                    sink.write(event)
                elif text_buffer is not None:
                    text_total += len(event)
                    if text_total > MAX_FIELDS_BYTES:
                        raise InvalidInput(
                            "form fields are too large", details={"field": text_name}
                        )
                    text_buffer.extend(event)
        parser.close()
    except multipart.MultipartError as exc:
        if sink is not None:
            sink.close()
        received.discard()
        raise InvalidInput(
            f"malformed multipart body: {exc}", details={"header": "Content-Type"}
        ) from None
    except BaseException:
        if sink is not None:
            sink.close()
        received.discard()
        raise
    if sink is not None:  # stream ended inside the archive part (close() would have raised)
        sink.close()
    return received
