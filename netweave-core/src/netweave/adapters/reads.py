"""When an adapter's backend read began, for the operation runner (see :func:`read_begins`).

Here, in the adapter contract, because adapters call it and the runner reads it: an adapter
distribution imports nothing of ``netweave.operations``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: When the reads of the adapter call the runner is making began (see :func:`read_begins`).
_reads: ContextVar[list[float] | None] = ContextVar("netweave_backend_reads", default=None)


def read_begins() -> None:
    """Called by an adapter right before the backend read whose report it returns: the
    runner then knows every change of the backend made before this moment is in that report
    (the reconciler need not read the deployment again for them). Without it the runner
    takes the start of the adapter call, which covers less. A no-op outside an operation."""
    reads = _reads.get()
    if reads is not None:
        reads.append(time.monotonic())


@contextmanager
def reads_marked() -> Iterator[list[float]]:
    """Around an adapter call: the times its :func:`read_begins` calls gave, in order."""
    reads: list[float] = []
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)
