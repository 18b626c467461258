"""The upload receiver inspects a chart archive while it arrives (netweave.api.uploads): what it
remembers must be exactly what the adapter's own inspection of the finished file would say
(core's inspector under the default limits), nothing when that would refuse, and an upload that
breaks off must leave no reading thread and no file behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from netweave.adapters.charts import DEFAULT_LIMITS, inspect_archive, received_facts
from netweave.api import uploads
from netweave.api.uploads import ReceivedUpload, receive_upload
from netweave.errors import InvalidInput
from netweave.testing.archives import CORPUS, NAME, VERSION, chart_files, valid_chart, write_tgz

BOUNDARY = "netweave-test-boundary"
MAX_BYTES = 64 * 1024 * 1024


def _body(archive: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{NAME}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="chart"; '
        f'filename="{NAME}-{VERSION}.tgz"\r\nContent-Type: application/gzip\r\n\r\n'
    ).encode()
    return head + archive + f"\r\n--{BOUNDARY}--\r\n".encode()


class _Request:
    """What receive_upload reads of a Litestar request: headers and the body's chunks."""

    def __init__(
        self, body: bytes, *, chunk: int, length: bool = True, break_at: int | None = None
    ) -> None:
        self.headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        if length:
            self.headers["content-length"] = str(len(body))
        self._body = body
        self._chunk = chunk
        self._break_at = break_at

    async def stream(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), self._chunk):
            if self._break_at is not None and start >= self._break_at:
                raise ConnectionResetError("the client went away")
            yield self._body[start : start + self._chunk]
            await asyncio.sleep(0)  # as from a socket: the reading thread runs meanwhile


async def _receive(request: _Request, tmp: Path) -> ReceivedUpload:
    return await receive_upload(request, max_bytes=MAX_BYTES, tmp_dir=tmp, inspect=True)  # type: ignore[arg-type]


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "netweave-upload-inspect"]


def _file_verdict(path: Path) -> object:
    try:
        return inspect_archive(path, DEFAULT_LIMITS)
    except InvalidInput:
        return None


def _big_chart(path: Path) -> Path:
    files = chart_files(NAME, VERSION)
    files.update({f"files/blob{i}.bin": os.urandom(1024 * 1024) for i in range(3)})
    return write_tgz(path, files, top=NAME)


CASES = {**CORPUS, "valid": valid_chart, "big": _big_chart}


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("case", sorted(CASES))
async def test_what_is_remembered_is_what_the_file_inspection_says(
    case: str, length: bool, tmp_path: Path
) -> None:
    """Every hostile archive of the corpus, a valid chart and a 3 MB one, sent in 16 KiB
    chunks with and without Content-Length (then the ratio rule has only the upload limit as
    a bound of the size while it reads, and applies the real size at the end)."""
    archive = CASES[case](tmp_path / f"{NAME}-{VERSION}.tgz")
    data = archive.read_bytes()
    received = await _receive(_Request(_body(data), chunk=16 * 1024, length=length), tmp_path / "t")
    try:
        assert received.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
        assert received.archive is not None and received.archive.read_bytes() == data
        expected = _file_verdict(received.archive)
        remembered = received_facts(received.checksum, DEFAULT_LIMITS)
        assert remembered == expected
        assert received.inspected == (expected is not None)
    finally:
        received.discard()
    assert received_facts(received.checksum, DEFAULT_LIMITS) is None
    assert list((tmp_path / "t").iterdir()) == []


async def test_other_limits_find_nothing_remembered(tmp_path: Path) -> None:
    from dataclasses import replace

    archive = valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    received = await _receive(_Request(_body(archive.read_bytes()), chunk=4096), tmp_path / "t")
    try:
        assert received_facts(received.checksum, DEFAULT_LIMITS) is not None
        other = replace(DEFAULT_LIMITS, max_entries=DEFAULT_LIMITS.max_entries - 1)
        assert received_facts(received.checksum, other) is None
    finally:
        received.discard()


async def _no_readers_left() -> None:
    for _ in range(200):  # up to 10 s
        if not _readers():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a reading thread outlived its upload")


async def test_an_upload_that_breaks_off_leaves_no_reader_and_no_file(tmp_path: Path) -> None:
    archive = _big_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    body = _body(archive.read_bytes())
    request = _Request(body, chunk=16 * 1024, break_at=len(body) // 2)
    with pytest.raises(ConnectionResetError):
        await _receive(request, tmp_path / "t")
    await _no_readers_left()
    assert list((tmp_path / "t").iterdir()) == []
    # Every reader's slot is free again.
    taken = [uploads._followed.acquire(blocking=False) for _ in range(uploads.MAX_FOLLOWED)]
    for _ in range(sum(taken)):
        uploads._followed.release()
    assert all(taken)


async def test_past_the_readers_bound_the_upload_is_received_uninspected(tmp_path: Path) -> None:
    """Uploads beyond MAX_FOLLOWED at once are not inspected as they arrive (the adapter
    inspects them), and are received as before."""
    archive = valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    data = archive.read_bytes()
    for _ in range(uploads.MAX_FOLLOWED):
        assert uploads._followed.acquire(blocking=False)
    try:
        received = await _receive(_Request(_body(data), chunk=4096), tmp_path / "t")
    finally:
        for _ in range(uploads.MAX_FOLLOWED):
            uploads._followed.release()
    try:
        assert not received.inspected
        assert received_facts(received.checksum, DEFAULT_LIMITS) is None
        assert received.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
        assert received.archive is not None and received.archive.read_bytes() == data
    finally:
        received.discard()


async def test_without_inspect_nothing_is_read_back_or_remembered(tmp_path: Path) -> None:
    """Callers that do not forget what was remembered (ETSI VNF packages) do not ask for it."""
    archive = valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    request = _Request(_body(archive.read_bytes()), chunk=4096)
    received = await receive_upload(request, max_bytes=MAX_BYTES, tmp_dir=tmp_path / "t")  # type: ignore[arg-type]
    try:
        assert not received.inspected
        assert received_facts(received.checksum, DEFAULT_LIMITS) is None
    finally:
        received.discard()


def test_what_is_remembered_is_bounded(tmp_path: Path) -> None:
    from netweave.adapters import charts

    facts = inspect_archive(valid_chart(tmp_path / "c-1.0.0.tgz"))
    keys = [f"sha256:{i:064x}" for i in range(charts.MAX_RECEIVED + 1)]
    try:
        for key in keys:
            charts.remember_received(key, facts, DEFAULT_LIMITS)
        assert received_facts(keys[0], DEFAULT_LIMITS) is None
        assert all(received_facts(k, DEFAULT_LIMITS) == facts for k in keys[1:])
    finally:
        for key in keys:
            charts.forget_received(key)
