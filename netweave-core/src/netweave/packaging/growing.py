"""A file read by one thread while another still writes it (an upload's temporary file read
back as the body arrives: the chart inspection of :mod:`netweave.api.uploads`, the CSAR's chart
taken out by :class:`netweave.packaging.csar.CsarStream`)."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

#: A read waits for this much (or what it asks for, if less) before it reads: woken for a
#: whole piece, not for each write of the receiver (fewer switches between the threads).
WAKE_BYTES = 1 << 20


class Abandoned(Exception):
    """The file will not be completed (the upload failed): the reader stops."""


class ForwardReader(io.RawIOBase):
    """A raw reader that knows its position (``_position``) and says it is seekable; each
    subclass's ``seek`` decides which positions it can go back to."""

    _position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position


class GrowingFile(ForwardReader):
    """Raw reads of ``path`` that wait until the bytes asked for are written, or the file
    ended: they return what a read of the finished file would. The writer says
    :meth:`wrote` with the total written (and in the file: unbuffered) after each write, then
    :meth:`end`; or ``end(abandoned=True)``, which makes the reader raise :class:`Abandoned`.
    Seekable from the start and the current position (a reader sniffing magic bytes goes
    back), not from the end, which is not known yet."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._changed = threading.Condition()
        self._written = 0
        self._ended = False
        self._abandoned = False
        self._position = 0

    # The writer's side.
    def wrote(self, total: int) -> None:
        with self._changed:
            self._written = total
            self._changed.notify()

    def end(self, *, abandoned: bool = False) -> None:
        with self._changed:
            self._ended = True
            self._abandoned = self._abandoned or abandoned
            self._changed.notify()

    # The reader's side.
    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._position = offset
        elif whence == io.SEEK_CUR:
            self._position += offset
        else:
            raise io.UnsupportedOperation("the end of a file still written is not known")
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), WAKE_BYTES)
        while True:
            with self._changed:
                while not self._ended and self._written - self._position < wanted:
                    self._changed.wait()
                if self._abandoned:
                    raise Abandoned
                count = max(0, min(len(view), self._written - self._position))
                ended = self._ended
            read = os.preadv(self._fd, [view[:count]], self._position) if count else 0
            if read or ended or not count:
                self._position += read
                return read
            with self._changed:  # announced but not in the file yet: never returned as EOF
                self._changed.wait(0.01)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


__all__ = ["WAKE_BYTES", "Abandoned", "ForwardReader", "GrowingFile"]
