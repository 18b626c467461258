"""The one place in the gateway process that touches ``helm_python`` (the Helm v4 Go SDK over a
C ABI); :mod:`netweave_helm.chartcheck` is the other, in a child process, and its errors come
back here through :func:`map_reported_error`.

Everything the SDK raises is turned into :mod:`netweave.errors` here, so no ``Helm*Error``
(including ``HelmPanicError``, which the SDK raises for some of its own bugs) leaves this module.
The SDK is blocking: :class:`SdkRunner` runs its calls on a bounded thread pool and, for calls
that accept one, cancels Helm through a ``HelmContext`` when the awaiting task is cancelled (a
timeout), so a timed-out install does not keep running unseen.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from netweave.adapters.kubernetes import kube_error_class
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)

if TYPE_CHECKING:
    import helm_python as helm
    from helm_python import Chart, Config, HelmContext, HelmError, RegistryClient

_log = logging.getLogger("netweave_helm.sdk")
_T = TypeVar("_T")


class _LazySdk:
    """``helm_python`` imported on first use: importing it loads the Go library, which costs
    the gateway's start-up a noticeable share even when no Helm call is ever made."""

    def __getattr__(self, name: str) -> Any:
        import helm_python

        return getattr(helm_python, name)


if not TYPE_CHECKING:
    helm = _LazySdk()

_SDK_NAMES = frozenset({"Chart", "Config", "HelmContext", "HelmError", "RegistryClient"})


def __getattr__(name: str) -> Any:
    # ``sdk.Config`` and friends, resolved from the SDK when first asked for.
    if name in _SDK_NAMES:
        return getattr(helm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MAX_MESSAGE = 2000


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + " …"


_RELEASE_RULES: tuple[tuple[re.Pattern[str], type[NetweaveError]], ...] = (
    (re.compile(r"cannot re-?use a name that is still in use", re.I), AlreadyExists),
    (re.compile(r"another operation \(install/upgrade/rollback\) is in progress", re.I), Conflict),
    # The cluster's state forbids it: objects owned by something else, missing CRDs.
    (re.compile(r"exists and cannot be imported into the current release", re.I), Conflict),
    (re.compile(r"ensure CRDs are installed first|no matches for kind", re.I), Conflict),
    (re.compile(r"has no deployed releases|release: not found|has no \d+ version", re.I), NotFound),
    (re.compile(r"values don't meet the specifications of the schema", re.I), InvalidInput),
    (
        re.compile(r"execution error at|error converting YAML|parse error|template:", re.I),
        InvalidInput,
    ),
    (re.compile(r"context deadline exceeded|timed out waiting", re.I), BackendTimeout),
    (
        re.compile(r"cluster reachability|connection refused|no such host|unreachable", re.I),
        BackendUnavailable,
    ),
)

_REMOTE_RULES: tuple[tuple[re.Pattern[str], type[NetweaveError]], ...] = (
    (re.compile(r"\bnot found\b|name unknown|manifest unknown|404", re.I), NotFound),
    (re.compile(r"connection refused|no such host|i/o timeout|dial tcp", re.I), BackendUnavailable),
)


#: How the Kubernetes API's 429/5xx answers read once Helm passes them on as text: client-go's
#: words for an answer without a Status of its own (k8s.io/apimachinery
#: ``NewGenericServerResponse``) and the API server's own messages for these reasons.
_KUBE_STATUS_PHRASES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"an error on the server \(.*\) has prevented the request", re.I), 500),
    (re.compile(r"\bInternal error occurred\b", re.I), 500),
    (re.compile(r"the server is currently unable to handle the request", re.I), 503),
    (re.compile(r"the server has received too many requests|\bToo many requests\b", re.I), 429),
    (
        re.compile(
            r"the server was unable to return a response in the time allotted"
            r"|\bTimeout: request did not complete within\b",
            re.I,
        ),
        504,
    ),
    (re.compile(r"the server responded with the status code (5\d\d)", re.I), 0),
)


def _kube_failure(message: str, text: str) -> NetweaveError | None:
    """The core's error for the Kubernetes API failing with a 429/5xx that ``message`` reports
    (core's Kubernetes table, :mod:`netweave.adapters.kubernetes`, as for the client's errors)."""
    for pattern, status in _KUBE_STATUS_PHRASES:
        found = pattern.search(message)
        if found is not None:
            status = status or int(found.group(1))
            kind = kube_error_class(status)
            return kind(f"{text} (the Kubernetes API answered HTTP {status})")
    return None


def map_error(exc: BaseException, what: str) -> NetweaveError:
    """The netweave error for an SDK exception raised while doing ``what``."""
    if isinstance(exc, NetweaveError):
        return exc
    message = _short(str(exc) or type(exc).__name__)
    text = f"{what}: {message}"
    if isinstance(exc, helm.HelmNotFoundError):
        return NotFound(text)
    if isinstance(
        exc,
        helm.HelmInvalidArgError
        | helm.HelmChartLoadError
        | helm.HelmChartInvalidError
        | helm.HelmValuesError
        | helm.HelmRenderError,
    ):
        return InvalidInput(text)
    if isinstance(exc, helm.HelmCancelledError):
        return BackendTimeout(f"{what}: cancelled (timeout)")
    if isinstance(exc, helm.HelmKubeError | helm.HelmReleaseError | helm.HelmStorageError):
        failure = _kube_failure(message, text)
        if failure is not None:
            return failure
    if isinstance(exc, helm.HelmKubeError):
        return BackendUnavailable(f"{what}: Kubernetes API unavailable: {message}")
    if isinstance(exc, helm.HelmReleaseError | helm.HelmStorageError):
        for pattern, kind in _RELEASE_RULES:
            if pattern.search(message):
                return kind(text)
        return BackendError(text)
    if isinstance(exc, helm.HelmRegistryError | helm.HelmRepoError):
        # Credentials first: "basic credential not found" is not a missing chart.
        if re.search(r"\b401\b|\b403\b|unauthori[sz]ed|credential", message, re.I):
            return BackendError(f"{what}: the repository refused the gateway's credentials")
        for pattern, kind in _REMOTE_RULES:
            if pattern.search(message):
                return kind(text)
        return BackendError(text)
    if isinstance(exc, helm.HelmPanicError):
        # A bug inside the SDK; the text is an internal Go panic, useless to a client.
        _log.error("helm SDK panic during %s: %s", what, message)
        return BackendError(f"{what}: the Helm SDK failed internally")
    if isinstance(exc, helm.HelmError):
        # HelmIOError, HelmUnknownError, HelmLibraryError, handle errors.
        return BackendError(text)
    raise TypeError(f"not a Helm SDK error: {type(exc).__name__}")  # pragma: no cover


def map_reported_error(reported: Any, what: str) -> NetweaveError:
    """The netweave error for an SDK exception reported as JSON by the chart-check child
    (``{"type": "HelmChartLoadError", "message": ..., "code": ...}``): the same one
    :func:`map_error` gives for that exception raised in-process."""
    if not isinstance(reported, dict):
        return BackendError(f"{what}: the chart check gave an unreadable answer")
    kind = getattr(helm, str(reported.get("type")), None)
    if not (isinstance(kind, type) and issubclass(kind, helm.HelmError)):
        kind = helm.HelmUnknownError
    code = reported.get("code")
    exc = kind(str(reported.get("message") or ""), code=code if isinstance(code, int) else None)
    return map_error(exc, what)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn any Helm SDK exception raised inside the block into a netweave error."""
    try:
        yield
    except helm.HelmError as exc:
        raise map_error(exc, what) from exc


#: Set by a caller that serialises the work on one release (the adapter's release lock): the
#: SDK calls it stopped waiting for (a timeout) that are still running, so that it passes the
#: lock on only when they have returned. Helm's release storage writes ignore cancellation.
outliving: contextvars.ContextVar[list[asyncio.Future[Any]] | None] = contextvars.ContextVar(
    "netweave_helm_outliving", default=None
)


class SdkRunner:
    """Runs blocking SDK calls on a bounded pool of threads.

    ``unwind``: how long a cancelled call is awaited to let Helm unwind before the cancellation
    goes on (at most that; a call still running then is handed to :data:`outliving`)."""

    def __init__(self, max_workers: int, *, unwind: float = 30.0) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="netweave-helm"
        )
        self._unwind = unwind

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, what: str, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        call = functools.partial(_call_translated, what, func, *args, **kwargs)
        future = loop.run_in_executor(self._pool, call)
        late = outliving.get()
        if late is None:
            return await future
        # Under a release lock: a call that cannot be cancelled (rollback, uninstall, reads)
        # and outlives its caller keeps the lock until it returns.
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(functools.partial(_late_outcome, what))
            if not future.done():
                late.append(future)
            raise

    async def run_cancellable(
        self, what: str, func: Callable[..., _T], *args: Any, **kwargs: Any
    ) -> _T:
        """Like :meth:`run`, passing ``context=HelmContext()`` that is cancelled with us.

        The context is made and freed on the worker thread, not on the event loop: each costs
        milliseconds of C calls, which under many concurrent installs would hold up the loop
        (and with it the store's writes)."""
        cancel = _Cancellation()
        loop = asyncio.get_running_loop()
        call = functools.partial(_call_with_context, cancel, what, func, *args, **kwargs)
        future = loop.run_in_executor(self._pool, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.cancel()
            # Nobody may await the call's outcome any more (we stop waiting below, or are
            # cancelled again meanwhile): take it here, or asyncio logs "Future exception was
            # never retrieved" when the call ends.
            future.add_done_callback(functools.partial(_late_outcome, what))
            # Let Helm unwind (bounded) so the release is not left mid-write behind our back.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(future), self._unwind)
            if not future.done():
                late = outliving.get()
                if late is not None:
                    late.append(future)
            raise


def _late_outcome(what: str, future: asyncio.Future[Any]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        _log.info("%s ended after its caller stopped waiting: %s", what, error)


class _Cancellation:
    """The ``HelmContext`` of one call running on a worker thread, cancellable from the loop
    before, during or after the call (before: the call starts already cancelled)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: helm.HelmContext | None = None
        self._cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._context is not None:
                self._context.cancel()

    def open(self) -> helm.HelmContext:
        context = helm.HelmContext()
        with self._lock:
            self._context = context
            if self._cancelled:
                context.cancel()
        return context

    def close(self) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            context.close()


def _call_with_context(
    cancel: _Cancellation, what: str, func: Callable[..., _T], *args: Any, **kwargs: Any
) -> _T:
    with translated(what):
        context = cancel.open()
        try:
            return func(*args, context=context, **kwargs)
        finally:
            cancel.close()


def _call_translated(what: str, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    with translated(what):
        return func(*args, **kwargs)


def sdk_version() -> str:
    with translated("helm SDK version"):
        return helm.helm_sdk_version()


# -- typed helpers over the module-level SDK functions --------------------------------------


def digest(path: str) -> str:
    return helm.digest(path)


def push(
    archive: str, remote: str, client: helm.RegistryClient, *, plain_http: bool, insecure: bool
) -> dict[str, Any]:
    return helm.push(
        archive, remote, client=client, plain_http=plain_http, insecure_skip_tls_verify=insecure
    )


__all__ = [
    "Chart",
    "Config",
    "HelmContext",
    "HelmError",
    "RegistryClient",
    "SdkRunner",
    "digest",
    "map_error",
    "map_reported_error",
    "push",
    "sdk_version",
    "translated",
]
