"""Structured logging: structlog in front, the standard library routed through it.

* ``configure_logging(log_format, level)`` — JSON lines when ``log_format`` is ``json`` (or
  ``auto`` and stderr is not a terminal: production, containers), a readable console format
  otherwise. Records from the standard library (uvicorn, litestar, stevedore, adapters using
  ``logging.getLogger``) go through the same processors, so every line has the same fields.
* A request id: the API binds one per request with :func:`bind_request_id`; every line logged
  while that request is handled carries ``requestId`` (the operation runner binds the id of the
  request that created an operation, so the worker's lines carry it too).
* Structured keys: the names below (:data:`LOG_KEYS`) are keys on the line, not words in the
  message, in JSON and console output alike. structlog callers pass them as keyword arguments;
  standard-library callers as ``extra={...}`` (copied onto the line).
* Redaction, last before output: bearer tokens, passwords in URLs, values of keys that name
  secrets (``token``, ``password``, ``authorization`` …), ``SecretStr`` objects and every value
  registered with :func:`register_secret` (the configuration loader registers its secrets) are
  replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import logging
import random as _random
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import IO, Any, Literal, cast

import msgspec
import structlog
from pydantic import SecretBytes, SecretStr

LogFormat = Literal["auto", "json", "console"]

REDACTED = "[REDACTED]"

#: The keys an operator follows one package, deployment, operation or request by: each is a
#: key of its own on every line that knows it.
LOG_KEYS = (
    "adapter",
    "packageId",
    "deploymentId",
    "operationId",
    "requestId",
    "size",
    "checksum",
    "durationMs",
)

#: The id of the request being handled, bound by the API per request (``None`` outside one).
request_id_var: ContextVar[str | None] = ContextVar("netweave_request_id", default=None)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HANDLER_NAME = "netweave"
_FRAMEWORK_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar")

# Keys whose values are secrets whatever they look like.
_SECRET_KEY_RE = re.compile(
    r"(?i)(^|[_-])(token|password|passwd|secret|authorization|api[_-]?key|private[_-]?key|"
    r"client[_-]?secret|credentials?)$"
)
# Each with a word every match contains (compared in lower case), tested first: a plain
# substring test is far cheaper than a regex scan, and every log line goes through these.
_TEXT_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # "Bearer <token>" anywhere (headers echoed into messages, curl lines …).
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + REDACTED),
    # JWTs without a scheme in front.
    ("eyj", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # user:password@ in URLs (database URLs, git remotes).
    (
        "://",
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"),
        r"\1" + REDACTED + "@",
    ),
)
_MIN_SECRET_LENGTH = 4
_MAX_DEPTH = 8

_registered: set[str] = set()
_registered_re: re.Pattern[str] | None = None


def register_secret(value: str | SecretStr | None) -> None:
    """Never let ``value`` reach a log line (replaced by ``[REDACTED]`` wherever it appears).

    Values shorter than four characters are ignored: redacting them would mangle ordinary text.
    """
    global _registered_re
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not value or len(value) < _MIN_SECRET_LENGTH or value in _registered:
        return
    _registered.add(value)
    # Longest first, so a secret that contains another is replaced whole.
    alternatives = sorted(_registered, key=len, reverse=True)
    _registered_re = re.compile("|".join(re.escape(v) for v in alternatives))


def redact_text(text: str) -> str:
    """``text`` with registered secrets, bearer tokens, JWTs and URL passwords replaced."""
    if _registered_re is not None:
        text = _registered_re.sub(REDACTED, text)
    lowered = text.lower()
    for word, pattern, replacement in _TEXT_PATTERNS:
        if word in lowered:
            text = pattern.sub(replacement, text)
            lowered = text.lower()
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SECRET_KEY_RE.search(k) and v is not None
                else _redact_value(v, depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v, depth + 1) for v in value)
    return value


def redact_event(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact secrets in every value of the event."""
    for key in list(event_dict):
        value = event_dict[key]
        if _SECRET_KEY_RE.search(key) and value is not None:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(value)
    return event_dict


def _redact_rendered(logger: Any, method_name: str, rendered: Any) -> Any:
    # After rendering: catches what only exists in the output (a formatted traceback).
    return redact_text(rendered) if isinstance(rendered, str) else rendered


def _add_request_id(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("requestId", request_id)
    return event_dict


def new_request_id() -> str:
    # 16 hex digits. Unique, not secret (it is echoed and logged): the process's seeded PRNG,
    # not the system's random source — a system call on every request.
    return f"{_random.getrandbits(64):016x}"


def bind_request_id(request_id: str | None = None) -> str:
    """Bind the current request's id (a client's ``X-Request-ID`` if well-formed, else a new
    one) for every log line of the current task; returns the id bound."""
    if request_id is None or not _REQUEST_ID_RE.match(request_id):
        request_id = new_request_id()
    request_id_var.set(request_id)
    return request_id


#: The access log: one line per HTTP request, written by the API's middleware.
ACCESS_LOGGER = "netweave.access"
#: The access record's message: its arguments are method, path, status, durationMs, requestId
#: (readable by any handler, though AccessFormatter builds its own line).
ACCESS_MESSAGE = "request %s %s %s %sms %s"
_ACCESS_HANDLER_NAME = "netweave-access"
_encode_json = msgspec.json.Encoder().encode


class AccessFormatter(logging.Formatter):
    """The access line, built directly from its known fields.

    It is on every request's path, so it skips structlog's generic processor chain (which
    walks and redacts every value of arbitrary events) yet has the same shape as the other
    lines: ``timestamp``, ``level``, ``logger``, ``event``, ``requestId`` and the request's
    ``method``, ``path`` (no query string: it may carry secrets), ``status``, ``durationMs``.
    The path is still redacted like any text.
    """

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self._json = fmt == "json"
        # The timestamp's seconds, formatted once per second (strftime was a third of a line).
        self._second = -1
        self._prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        method, path, status, duration_ms, request_id = cast("tuple[Any, ...]", record.args)
        return self.line(record.created, method, path, status, duration_ms, request_id)

    def line(
        self,
        created: float,
        method: str,
        path: str,
        status: int,
        duration_ms: float,
        request_id: str,
    ) -> str:
        """The line of one request (``format`` of its record, without the record)."""
        path = redact_text(str(path))
        second = int(created)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        stamp = f"{self._prefix}.{int(created % 1 * 1_000_000):06d}Z"
        if self._json:
            return _encode_json(
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "durationMs": duration_ms,
                    "event": "request",
                    "requestId": request_id,
                    "level": "info",
                    "logger": ACCESS_LOGGER,
                    "timestamp": stamp,
                }
            ).decode()
        return (
            f"{stamp} [info     ] request                        "
            f"durationMs={duration_ms} method={method} path={path} requestId={request_id} "
            f"status={status} [{ACCESS_LOGGER}]"
        )


class AccessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The access log's handler: a stream handler that also writes a request's line
    straight from its fields (:func:`log_access`), without a ``LogRecord``."""

    def __init__(self, stream: IO[str], fmt: str) -> None:
        super().__init__(stream)
        self.access_formatter = AccessFormatter(fmt)
        self.setFormatter(self.access_formatter)

    def write_line(
        self, method: str, path: str, status: int, duration_ms: float, request_id: str
    ) -> None:
        created = time.time()
        try:
            text = self.access_formatter.line(
                created, method, path, status, duration_ms, request_id
            )
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(text + self.terminator)
                self.stream.flush()
        except Exception:
            self.handleError(_access_record(method, path, status, duration_ms, request_id))


def _access_record(
    method: str, path: str, status: int, duration_ms: float, request_id: str
) -> logging.LogRecord:
    fields = (method, path, status, duration_ms, request_id)
    return logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, ACCESS_MESSAGE, fields, None)


_access_logger = logging.getLogger(ACCESS_LOGGER)


def log_access(method: str, path: str, status: int, duration_ms: float, request_id: str) -> None:
    """One request's access line (the API's middleware, per request). With the handler
    :func:`configure_logging` installs as the logger's only one (the default), the line is
    formatted and written directly: a ``LogRecord`` and the logging machinery around it cost
    as much again as the line itself. Any other set-up gets a record, as from any logger."""
    logger = _access_logger
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = logger.handlers
    if len(handlers) == 1 and not logger.filters:
        handler = handlers[0]
        if isinstance(handler, AccessHandler) and not handler.filters and handler.level <= 20:
            handler.write_line(method, path, status, duration_ms, request_id)
            return
    logger.handle(_access_record(method, path, status, duration_ms, request_id))


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
    ]


def resolve_format(log_format: LogFormat, stream: IO[str] | None = None) -> str:
    if log_format != "auto":
        return log_format
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def configure_logging(
    log_format: LogFormat = "auto",
    level: str | int = "INFO",
    *,
    stream: IO[str] | None = None,
    exclusive: bool = False,
) -> None:
    """Configure structlog and the standard library's root logger (idempotent).

    Replaces a handler installed by an earlier call and leaves other handlers alone (pytest's
    capture handler, for example) — unless ``exclusive``: then the root logger keeps only
    ours. The CLI's ``serve`` owns its process and passes ``exclusive=True`` once the adapters
    are loaded and the app built.
    """
    fmt = resolve_format(log_format, stream)
    renderer: Any
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        final += [
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final += [redact_event, renderer]
    final.append(_redact_rendered)

    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # A standard-library record's ``extra={...}`` becomes keys of its line, like structlog's
    # keyword arguments (the adapters log through ``logging``).
    foreign = [*shared, structlog.stdlib.ExtraAdder()]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=foreign, processors=final)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in list(root.handlers):
        if exclusive or existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # The access log has a handler of its own (a direct formatter, see AccessFormatter) on the
    # same stream, and does not also go through the root handler.
    access = logging.getLogger(ACCESS_LOGGER)
    for existing in list(access.handlers):
        if existing.get_name() == _ACCESS_HANDLER_NAME:
            access.removeHandler(existing)
    access_handler = AccessHandler(stream if stream is not None else sys.stderr, fmt)
    access_handler.set_name(_ACCESS_HANDLER_NAME)
    access.addHandler(access_handler)
    access.propagate = False
    # uvicorn and Litestar give their loggers their own handlers; route them to ours.
    for name in _FRAMEWORK_LOGGERS:
        framework_logger = logging.getLogger(name)
        framework_logger.handlers.clear()
        framework_logger.propagate = True
    # One line per alembic plugin at every start-up tells an operator nothing.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger (``log.info("event", key=value)``) named like a stdlib logger."""
    return structlog.stdlib.get_logger(name, **initial)


__all__ = [
    "ACCESS_LOGGER",
    "ACCESS_MESSAGE",
    "LOG_KEYS",
    "REDACTED",
    "AccessFormatter",
    "AccessHandler",
    "LogFormat",
    "bind_request_id",
    "configure_logging",
    "get_logger",
    "log_access",
    "new_request_id",
    "redact_event",
    "redact_text",
    "register_secret",
    "request_id_var",
    "resolve_format",
]
