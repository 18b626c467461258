"""Dry-run previews rendered in a capped child process, not in the gateway.

A preview renders whatever the chart's templates and the request's values ask for: a loop over
``.Values.n`` with ``n = 2e7`` grew the gateway by ~750 MB and answered 20 MB when Helm ran
in-process, and Go does not hand such memory back soon. The same child as the upload's lint
(:class:`netweave_helm.validation.HelmChild`) renders instead, under the adapter's ``render``
caps (memory, time, output size); over a cap the request is refused with a 400 naming it.

Installs, upgrades and scales are rendered by Helm as part of its install or upgrade call, so
that whole call runs in a capped process too: a :class:`RenderPool` of persistent workers
(``python -m netweave_helm.chartcheck --serve``), each with the Helm SDK loaded once, under
``RLIMIT_DATA`` (``render.memoryBytes``) and, per request, ``RLIMIT_CPU`` (twice
``render.timeSeconds`` from the CPU time used so far). The worker makes the real SDK call,
so Helm's release storage is exactly what the SDK writes, and Helm renders before it stores
anything: a render bomb kills the worker with nothing stored, and the request is refused with
the cap's 400. One request runs in a worker at a time (a bomb takes no other request down); a
worker whose data segment grew past half the cap is replaced after its request, one that died
is replaced on demand. Workers do not inherit the gateway's sockets or files (``close_fds``),
run in their own session, and die with the gateway (``PR_SET_PDEATHSIG``) so that none goes on
installing behind a restarted gateway's back. Previews use the pool as well (an idempotent
render is retried once on a fresh worker when its worker was killed from outside).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from netweave.errors import BackendError, BackendTimeout, InvalidInput

from netweave_helm import sdk
from netweave_helm.chartcheck import LIMITS_ENV, PARENT_ENV
from netweave_helm.config import ClusterSettings, RenderLimits
from netweave_helm.validation import (
    _OUT_OF_MEMORY,
    CHECK_COMMAND,
    HelmChild,
    _child_path,
    _over_cap,
)

_log = logging.getLogger("netweave_helm.rendering")


def cluster_options(settings: ClusterSettings) -> dict[str, Any]:
    """How the child reaches the cluster the gateway uses (sent on its stdin, not argv)."""
    return {
        "kubeconfig": str(settings.kubeconfig) if settings.kubeconfig is not None else None,
        "kubeconfigContent": (
            settings.kubeconfig_content.get_secret_value()
            if settings.kubeconfig_content is not None
            else None
        ),
        "context": settings.context,
        "storageDriver": settings.storage_driver,
        "qps": settings.qps,
        "burst": settings.burst,
    }


#: stderr bytes kept per request, from its start and its end: Go's "fatal error: out of
#: memory" comes first, before its goroutine dump.
_STDERR_KEPT = 4096
#: A worker whose data segment grew by more than this share of the room it had at start
#: (``render.memoryBytes`` less what the SDK maps up front, ~140 MB) is replaced after its
#: request: Go keeps the address space it grew, so the next request would have less room.
_RECYCLE_SHARE = 0.5
#: Seconds a new worker may take to load the Helm SDK.
_START_SECONDS = 60.0
_SIGXCPU = int(signal.SIGXCPU)


def _late_outcome(what: str, job: asyncio.Future[Any]) -> None:
    """Take the outcome of a request its caller stopped waiting for (else asyncio logs
    "exception was never retrieved")."""
    if job.cancelled():
        return
    error = job.exception()
    if error is not None:
        _log.info("%s ended after its caller stopped waiting: %s", what, error)


class WorkerLost(BackendError):
    """The worker running a request died of something other than a cap (killed from outside,
    a crash): nothing says the request itself was at fault."""


class _Worker:
    """One persistent ``chartcheck --serve`` process and the tail of what it said on stderr."""

    def __init__(self, process: asyncio.subprocess.Process, tmp: str) -> None:
        self.process = process
        self.tmp = tmp
        #: Its data segment when ready, and after its last request.
        self.vm_start = 0
        self.vm_data = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._drain = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def start(cls, caps: RenderLimits, work_dir: Path, limit: int) -> _Worker:
        tmp = tempfile.mkdtemp(dir=work_dir, prefix="render-")
        env = {
            **os.environ,
            "TMPDIR": tmp,
            "PYTHONPATH": _child_path(),
            PARENT_ENV: str(os.getpid()),
            # Memory for the worker's life; CPU time is set per request.
            LIMITS_ENV: json.dumps({"dataBytes": caps.memory_bytes}),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *CHECK_COMMAND,
                "--serve",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                limit=limit,
                # Only the three pipes: never the listening socket or a client's connection
                # (else a worker outliving the gateway would hold its port or a request open).
                close_fds=True,
                # Not in the gateway's process group: a terminal's Ctrl-C is the gateway's to
                # handle; it stops its workers itself.
                start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            _log.error("a Helm render worker could not start: %s", exc)
            raise BackendError("the Helm render worker could not start") from None
        worker = cls(process, tmp)
        try:
            ready = await asyncio.wait_for(worker.receive(), _START_SECONDS)
        except (TimeoutError, ValueError, asyncio.CancelledError) as exc:
            worker.kill()
            await asyncio.shield(worker.finish())
            if isinstance(exc, asyncio.CancelledError):
                raise
            ready = None
        if ready is None or not ready.get("ready"):
            await worker.finish()
            _log.error("a Helm render worker did not start; its stderr: %s", worker.said())
            raise BackendError("the Helm render worker could not start")
        worker.vm_start = worker.vm_data = int(ready.get("vmData") or 0)
        return worker

    async def _drain_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            if len(self._head) < _STDERR_KEPT:
                self._head += chunk[: _STDERR_KEPT - len(self._head)]
            self._tail = (self._tail + chunk)[-_STDERR_KEPT:]

    def mark(self) -> None:
        """A request starts: what the worker says from now on belongs to it."""
        self._head = bytearray()
        self._tail = bytearray()

    def said(self) -> str:
        return (bytes(self._head) + b"\n" + bytes(self._tail)).decode("utf-8", "replace")

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(message).encode() + b"\n")
        await stdin.drain()

    async def receive(self) -> dict[str, Any] | None:
        """The next answer line; ``None`` when the worker's stdout ended (it died)."""
        stdout = self.process.stdout
        assert stdout is not None
        line = await stdout.readline()
        if not line:
            return None
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ValueError("not a JSON object")
        return answer

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def finish(self, grace: float = 5.0) -> int | None:
        """End the worker (end of stdin, then SIGKILL after ``grace`` seconds), reap it and
        remove its temporary directory; its exit status."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            self.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 10)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._drain, 1)
        await asyncio.to_thread(shutil.rmtree, self.tmp, True)
        return self.process.returncode


#: Seconds an idle worker is kept (one always is).
_IDLE_SECONDS = 60.0


class RenderPool:
    """Persistent capped workers that render charts: previews, installs and upgrades.

    At most ``size`` workers, started on demand (each start costs ~0.3 s of CPU, once), the
    most recently used taken first, and ended after a minute unused (but one); one request
    per worker at a time. A burst gets its workers at once: installs that wait on the cluster
    need the concurrency from the start.
    """

    def __init__(self, caps: RenderLimits, size: int, work_dir: Path) -> None:
        self.caps = caps
        self.size = size
        self._work_dir = work_dir
        #: Idle workers, the longest idle first, with the time each became idle.
        self._idle: list[tuple[_Worker, float]] = []
        self._busy: set[_Worker] = set()
        #: Workers alive or starting.
        self._count = 0
        #: Set (and replaced) whenever a worker may have become available.
        self._changed: asyncio.Event | None = None
        self._reaper: asyncio.TimerHandle | None = None
        self._ending: set[asyncio.Future[Any]] = set()
        self._ids = itertools.count(1)
        self._closed = False
        self._starting: set[asyncio.Future[None]] = set()
        #: Background starts in flight, and the requests waiting for one of them: a request
        #: that finds no idle worker waits for a start no other request waits for rather than
        #: start a second worker (two SDK loads at a gateway's start on a loaded machine).
        self._prestarting = 0
        self._leaning = 0
        # Answers are bounded by the workers (previews and install results over
        # ``maxOutputBytes`` are not sent); a line longer than this is a broken worker.
        self._limit = 2 * caps.max_output_bytes + (1 << 20)

    @property
    def cpu_seconds(self) -> int:
        return max(1, round(2 * self.caps.time_seconds))

    def pids(self) -> list[int]:
        """The workers' process ids (idle and busy)."""
        return [w.process.pid for w in [*(i for i, _ in self._idle), *self._busy] if w.alive]

    async def run(
        self,
        action: str,
        argument: str,
        options: dict[str, Any],
        *,
        what: str,
        wall: float | None,
        capped_wall: bool = True,
        unwind: float = 30.0,
        retry: bool = False,
    ) -> dict[str, Any]:
        """The worker's answer to one request. ``wall``: seconds before the worker is killed
        (a time cap when ``capped_wall``, else a ``BackendTimeout``). ``retry``: an idempotent
        request whose worker was killed from outside runs once more on a fresh worker.

        Cancelling the awaiting task (a timeout) asks the worker to cancel Helm's call and
        waits up to ``unwind`` seconds for it; a call still running then goes on (Helm's
        release storage writes ignore cancellation, and one already sent would land even if
        the worker were killed) and is handed to :data:`netweave_helm.sdk.outliving`, so that
        a release lock passes on only when it has returned. A template loop that ignores
        cancellation ends at the CPU cap."""
        cancel = asyncio.Event()
        job = asyncio.ensure_future(
            self._attempts(action, argument, options, what, wall, capped_wall, retry, cancel)
        )
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            cancel.set()
            job.add_done_callback(functools.partial(_late_outcome, what))
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(job), unwind)
            if not job.done():
                late = sdk.outliving.get()
                if late is not None:
                    late.append(job)
            raise

    async def _attempts(
        self,
        action: str,
        argument: str,
        options: dict[str, Any],
        what: str,
        wall: float | None,
        capped_wall: bool,
        retry: bool,
        cancel: asyncio.Event,
    ) -> dict[str, Any]:
        request = (action, argument, options, what, wall, capped_wall, cancel)
        try:
            return await self._run_once(*request)
        except WorkerLost as lost:
            if not retry or self._closed:
                raise
            _log.warning("%s; running it once more on a fresh worker", lost.message)
        return await self._run_once(*request)

    async def _run_once(
        self,
        action: str,
        argument: str,
        options: dict[str, Any],
        what: str,
        wall: float | None,
        capped_wall: bool,
        cancel: asyncio.Event,
    ) -> dict[str, Any]:
        worker = await self._take(what)
        healthy = False
        try:
            answer = await self._exchange(
                worker, action, argument, options, what, wall, capped_wall, cancel
            )
            healthy = True
            return answer
        finally:
            self._give_back(worker, healthy)

    async def _take(self, what: str) -> _Worker:
        """An idle worker (the most recently used), a new one, or the first of either to come
        once one is free."""
        while True:
            if self._closed:
                raise BackendError(f"{what}: the Helm adapter is stopping")
            while self._idle:
                worker, _since = self._idle.pop()
                if worker.alive:
                    self._busy.add(worker)
                    return worker
                self._retire(worker)
            leaning = self._prestarting > self._leaning
            if not leaning and self._count < self.size:
                break
            if self._changed is None:
                self._changed = asyncio.Event()
            self._leaning += leaning
            try:
                await self._changed.wait()
            finally:
                self._leaning -= leaning
        self._count += 1
        try:
            worker = await _Worker.start(self.caps, self._work_dir, self._limit)
        except BaseException:
            self._count -= 1
            self._notify()
            raise
        self._busy.add(worker)
        return worker

    def prestart(self, count: int) -> None:
        """Start workers in the background until ``count`` (at most ``size``) are alive or
        starting, so that the first requests need not wait for one to load the Helm SDK
        (~0.3 s on a quiet machine; the first install after a gateway start paid it)."""
        for _ in range(min(count, self.size) - self._count):
            self._count += 1
            self._prestarting += 1
            started = asyncio.ensure_future(self._start_idle())
            self._starting.add(started)
            started.add_done_callback(self._starting.discard)

    async def _start_idle(self) -> None:
        try:
            worker = await _Worker.start(self.caps, self._work_dir, self._limit)
        except asyncio.CancelledError:
            self._prestarting -= 1
            self._count -= 1
            self._notify()
            raise
        except Exception:
            self._prestarting -= 1
            self._count -= 1  # logged by the start; a request starts another on demand
            self._notify()
            return
        self._prestarting -= 1
        self._give_back(worker, healthy=True)

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        self._busy.discard(worker)
        room = self.caps.memory_bytes - worker.vm_start
        recycle = worker.vm_data - worker.vm_start > _RECYCLE_SHARE * room
        if healthy and worker.alive and not recycle and not self._closed:
            loop = asyncio.get_running_loop()
            self._idle.append((worker, loop.time()))
            if self._reaper is None:
                self._reaper = loop.call_later(_IDLE_SECONDS, self._reap)
        else:
            self._retire(worker)
        self._notify()

    def _retire(self, worker: _Worker) -> None:
        self._count -= 1
        self._end(worker)

    def _reap(self) -> None:
        """End the workers idle for longer than :data:`_IDLE_SECONDS`, but the last one."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        while len(self._idle) > 1 and self._idle[0][1] < loop.time() - _IDLE_SECONDS:
            worker, _since = self._idle.pop(0)
            self._retire(worker)
        if len(self._idle) > 1:
            self._reaper = loop.call_later(_IDLE_SECONDS, self._reap)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def _exchange(
        self,
        worker: _Worker,
        action: str,
        argument: str,
        options: dict[str, Any],
        what: str,
        wall: float | None,
        capped_wall: bool,
        cancel: asyncio.Event,
    ) -> dict[str, Any]:
        ident = str(next(self._ids))
        request = {
            **options,
            "id": ident,
            "action": action,
            "argument": argument,
            "cpuSeconds": self.cpu_seconds,
        }
        worker.mark()
        with contextlib.suppress(ConnectionError):
            await worker.send(request)  # a dead worker shows as the end of its stdout below
        receiving = asyncio.ensure_future(worker.receive())
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {receiving, cancelled}, timeout=wall, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                worker.kill()
                if capped_wall:
                    raise self._over(what, "time", f"more than {self.caps.time_seconds:g} s")
                raise BackendTimeout(f"{what}: did not finish within {wall:g} s")
            if receiving not in done:
                # The caller gave up: ask Helm to stop; the answer still comes.
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await worker.send({"cancel": ident})
            line = await receiving
        except ValueError:
            worker.kill()  # an answer over the line limit, or not JSON: a broken worker
            raise BackendError(
                f"{what}: the Helm render worker gave an unreadable answer"
            ) from None
        except asyncio.CancelledError:
            worker.kill()  # the pool is closing, or the loop
            raise
        finally:
            receiving.cancel()
            cancelled.cancel()
        if line is None:
            raise await self._died(worker, what)
        worker.vm_data = int(line.get("vmData") or 0)
        if line.get("id") != ident or not isinstance(line.get("answer"), dict):
            worker.kill()
            raise BackendError(f"{what}: the Helm render worker gave an unreadable answer")
        answer: dict[str, Any] = line["answer"]
        return answer

    async def _died(self, worker: _Worker, what: str) -> BackendError | InvalidInput:
        """Why ``worker`` died mid-request: a cap (the request's doing) or anything else."""
        try:
            returncode = await asyncio.wait_for(worker.process.wait(), 10)
        except TimeoutError:
            worker.kill()
            returncode = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(worker._drain), 1)
        said = worker.said()
        if returncode == -_SIGXCPU:
            return self._over(what, "time", f"more than {self.cpu_seconds} s of CPU time")
        if _OUT_OF_MEMORY.search(said):
            return self._over(
                what, "memory", f"more than {self.caps.memory_bytes // (1024 * 1024)} MiB"
            )
        how = (
            f"killed by signal {-returncode}"
            if returncode is not None and returncode < 0
            else f"exit status {returncode}"
        )
        _log.error("a Helm render worker died (%s) during %s; its stderr: %s", how, what, said)
        return WorkerLost(f"{what}: the Helm render worker running it died ({how})")

    def _over(self, what: str, cap: str, needed: str) -> InvalidInput:
        exc = _over_cap(cap, needed)
        return InvalidInput(f"{what}: {exc.message}", details=exc.details)

    def _end(self, worker: _Worker) -> None:
        """Retire ``worker`` in the background (it may be mid-exit or still busy)."""
        ending = asyncio.ensure_future(worker.finish())
        self._ending.add(ending)
        ending.add_done_callback(self._ending.discard)

    async def close(self) -> None:
        """Stop every worker (a busy one is killed) and wait until all are reaped."""
        self._closed = True
        for started in list(self._starting):
            started.cancel()
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for worker in self._busy:
            worker.kill()
        idle, self._idle = self._idle, []
        for worker, _since in idle:
            self._retire(worker)
        self._notify()
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)


async def render_preview(
    chart: Path,
    *,
    release: str,
    namespace: str,
    values: dict[str, Any],
    upgrade: bool,
    cluster: dict[str, Any] | None,
    caps: RenderLimits,
    time_limit: float,
    work_dir: Path,
    pool: RenderPool | None = None,
) -> dict[str, Any]:
    """Helm's dry-run release (``manifest``, ``notes``, ``chart_name``, ``chart_version``,
    ``revision``) of ``chart``; ``cluster``: :func:`cluster_options`, or ``None`` to render
    offline. SDK errors map as in-process; over a cap: ``InvalidInput``. ``pool``: render in
    one of its persistent workers (else in a child started for this preview)."""
    what = f"previewing {'upgrade of' if upgrade else 'release'} {release}"
    options = {
        "action": "render",
        "release": release,
        "namespace": namespace,
        "values": values,
        "upgrade": upgrade,
        "cluster": cluster,
        "maxOutputBytes": caps.max_output_bytes,
    }
    if pool is not None:
        capped = caps.time_seconds < time_limit
        answer = await pool.run(
            "render",
            str(chart),
            options,
            what=what,
            wall=caps.time_seconds if capped else time_limit,
            capped_wall=capped,
            retry=True,
        )
    else:
        async with HelmChild(str(chart), work_dir, caps) as child:
            answer = await child.answer(options, time_limit)
    step = answer.get("render")
    if not isinstance(step, dict):
        raise BackendError(f"{what}: the Helm render child gave no result")
    if "error" in step:
        raise sdk.map_reported_error(step["error"], what)
    if "tooLarge" in step:
        raise InvalidInput(
            f"{what}: the rendered manifests are {step['tooLarge']} bytes, over the gateway's "
            f"preview cap of {caps.max_output_bytes} bytes (the Helm adapter's "
            "render.maxOutputBytes)",
            details={"cap": "output", "setting": "render.maxOutputBytes"},
        )
    result = step.get("result")
    if not isinstance(result, dict):
        raise BackendError(f"{what}: the Helm render child gave an unreadable result")
    return result


async def deploy_release(
    pool: RenderPool,
    action: str,
    chart: Path,
    *,
    release: str,
    values: dict[str, Any],
    namespace: str,
    cluster: dict[str, Any],
    options: dict[str, Any],
    what: str,
    unwind: float,
) -> dict[str, Any]:
    """A real Helm ``install`` or ``upgrade`` (``action``) of ``chart`` made by a worker of
    ``pool``; ``options``: the SDK call's keyword arguments (namespace, timeout, wait,
    labels, ...). The release summary as the SDK answers it; SDK errors map as in-process;
    over a cap: ``InvalidInput`` (Helm renders before it stores anything: nothing is left).
    Cancelling the awaiting task cancels the SDK call (given ``unwind`` seconds)."""
    request = {
        "release": release,
        "namespace": namespace,
        "values": values,
        "cluster": cluster,
        "kwargs": {**options, "namespace": namespace},
        "maxOutputBytes": pool.caps.max_output_bytes,
    }
    answer = await pool.run(action, str(chart), request, what=what, wall=None, unwind=unwind)
    step = answer.get("deploy")
    if not isinstance(step, dict):
        raise BackendError(f"{what}: the Helm render worker gave no result")
    if "error" in step:
        raise sdk.map_reported_error(step["error"], what)
    result = step.get("result")
    if not isinstance(result, dict):
        raise BackendError(f"{what}: the Helm render worker gave an unreadable result")
    return result


__all__ = [
    "RenderPool",
    "WorkerLost",
    "cluster_options",
    "deploy_release",
    "render_preview",
]
