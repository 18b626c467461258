"""Structured logging: JSON / console, stdlib routed through structlog, request id, redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
from netweave.logging import (
    ACCESS_LOGGER,
    ACCESS_MESSAGE,
    REDACTED,
    bind_request_id,
    configure_logging,
    get_logger,
    log_access,
    redact_text,
    register_secret,
    request_id_var,
    resolve_format,
)
from pydantic import SecretStr


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    yield out
    for handler in list(root.handlers):
        if handler.get_name() == "netweave":
            root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_for_structlog_and_stdlib(stream: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=stream)
    get_logger("netweave.test").info("package uploaded", adapter="helm-local", size=12)
    logging.getLogger("some.library").warning("plain %s message", "stdlib")
    logging.getLogger("some.library").debug("below the level")
    first, second = lines(stream)
    assert first["event"] == "package uploaded"
    assert first["adapter"] == "helm-local" and first["size"] == 12
    assert first["level"] == "info" and first["logger"] == "netweave.test"
    assert "timestamp" in first
    assert second["event"] == "plain stdlib message"
    assert second["level"] == "warning" and second["logger"] == "some.library"


def test_console_format_is_not_json(stream: io.StringIO) -> None:
    configure_logging("console", "INFO", stream=stream)
    get_logger("netweave.test").info("hello", adapter="a")
    text = stream.getvalue()
    assert "hello" in text and "adapter=a" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_auto_format_follows_the_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Tty()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json"


def test_reconfiguring_replaces_our_handler_only(stream: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=stream)
    configure_logging("json", "INFO", stream=stream)
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "netweave"]
    assert len(ours) == 1


async def test_request_id_is_bound_per_task(stream: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=stream)
    log = get_logger("netweave.api")

    async def handle(incoming: str | None) -> str:
        bound = bind_request_id(incoming)
        await asyncio.sleep(0)
        log.info("handled")
        return bound

    a, b = await asyncio.gather(handle("client-id-1"), handle(None))
    assert a == "client-id-1"
    assert b != a and len(b) == 16
    assert sorted(str(e["requestId"]) for e in lines(stream)) == sorted([a, b])
    # Outside a request: no id.
    assert request_id_var.get() is None


def test_malformed_client_request_id_is_replaced() -> None:
    async def bind() -> str:
        return bind_request_id("bad id\nwith newline")

    bound = asyncio.run(bind())
    assert bound != "bad id\nwith newline" and len(bound) == 16


def test_redaction_in_messages_values_and_keys(stream: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=stream)
    register_secret("registered-secret-42")
    log = get_logger("netweave.test")
    log.info("calling with Authorization: Bearer abc.def-ghi", url="https://u:pw123@h/x")
    log.info("cfg", token="plain-token-value", api_key="k-1234", secret=SecretStr("inner-secret"))
    log.info("nested", payload={"password": "hunter22", "items": ["registered-secret-42"]})
    logging.getLogger("lib").error("boom with registered-secret-42 inside")
    text = stream.getvalue()
    for secret in (
        "abc.def-ghi",
        "pw123",
        "plain-token-value",
        "k-1234",
        "inner-secret",
        "hunter22",
        "registered-secret-42",
    ):
        assert secret not in text, secret
    first, second, third, fourth = lines(stream)
    assert first["event"] == f"calling with Authorization: Bearer {REDACTED}"
    assert first["url"] == f"https://u:{REDACTED}@h/x"
    assert second["token"] == REDACTED and second["api_key"] == REDACTED
    assert third["payload"] == {"password": REDACTED, "items": [REDACTED]}
    assert fourth["event"] == f"boom with {REDACTED} inside"


def test_secret_inside_a_traceback_is_redacted(stream: io.StringIO) -> None:
    configure_logging("console", "INFO", stream=stream)
    register_secret("tb-secret-9876")
    try:
        raise RuntimeError("connect failed with tb-secret-9876")
    except RuntimeError:
        logging.getLogger("lib").exception("failure")
    text = stream.getvalue()
    assert "RuntimeError" in text
    assert "tb-secret-9876" not in text


def test_redact_text_leaves_ordinary_text_alone() -> None:
    register_secret("abc")  # too short to redact safely: ignored
    assert redact_text("a basic message about abc") == "a basic message about abc"
    assert redact_text("eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl") == REDACTED


def test_redact_text_finds_each_pattern_in_any_letter_case() -> None:
    # Each pattern runs only when its word is in the text: the word test ignores case as the
    # patterns do.
    assert redact_text("hdr BEARER abc.def") == f"hdr BEARER {REDACTED}"
    assert redact_text("hdr bEaReR abc.def") == f"hdr bEaReR {REDACTED}"
    assert redact_text("db POSTGRESQL://u:pw9@h/x") == f"db POSTGRESQL://u:{REDACTED}@h/x"
    assert redact_text("x eyJhbGciOi.eyJzdWIiOiIx.sig y") == f"x {REDACTED} y"
    both = redact_text("Bearer t0k3n and git://me:pw@host/repo")
    assert both == f"Bearer {REDACTED} and git://me:{REDACTED}@host/repo"


def _access_line(path: str) -> None:
    """What the API's middleware does per request."""
    access = logging.getLogger(ACCESS_LOGGER)
    if access.isEnabledFor(logging.INFO):
        fields = ("GET", path, 200, 1.5, "r1")
        access.handle(
            logging.LogRecord(
                ACCESS_LOGGER, logging.INFO, __file__, 0, ACCESS_MESSAGE, fields, None
            )
        )


def test_access_lines_are_structured_redacted_and_not_duplicated(stream: io.StringIO) -> None:
    register_secret("access-secret-value")
    configure_logging("json", "INFO", stream=stream)
    _access_line("/o2dms/v1/x/access-secret-value")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1  # its own handler only; not also through the root handler
    line = lines[0]
    assert (line["logger"], line["event"], line["level"]) == ("netweave.access", "request", "info")
    assert (line["method"], line["status"], line["durationMs"], line["requestId"]) == (
        "GET",
        200,
        1.5,
        "r1",
    )
    assert line["path"] == "/o2dms/v1/x/[REDACTED]"
    assert line["timestamp"].endswith("Z") and len(line["timestamp"]) == 27

    configure_logging("console", "WARNING", stream=stream)
    _access_line("/quiet")
    assert "/quiet" not in stream.getvalue()  # below the level: off
    configure_logging("console", "INFO", stream=stream)
    _access_line("/loud")
    assert "path=/loud" in stream.getvalue() and "status=200" in stream.getvalue()


def test_the_direct_access_line_is_the_records_line(stream: io.StringIO) -> None:
    """``log_access`` (the middleware's, no LogRecord) writes what the record would."""
    register_secret("direct-secret-value")
    for fmt in ("json", "console"):
        configure_logging(fmt, "INFO", stream=stream)  # type: ignore[arg-type]
        stream.seek(0)
        stream.truncate()
        log_access("GET", "/o2dms/v1/x/direct-secret-value", 200, 1.5, "r1")
        _access_line("/o2dms/v1/x/direct-secret-value")
        direct, recorded = stream.getvalue().splitlines()
        if fmt == "json":
            first, second = json.loads(direct), json.loads(recorded)
            assert first.pop("timestamp")[:19] == second.pop("timestamp")[:19]
            assert first == second
            assert first["path"] == "/o2dms/v1/x/[REDACTED]"
        else:
            assert direct.split(" ", 1)[1] == recorded.split(" ", 1)[1]
            assert "direct-secret-value" not in direct


def test_another_handler_on_the_access_log_gets_every_line(stream: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=stream)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    access = logging.getLogger(ACCESS_LOGGER)
    extra = Keep()
    access.addHandler(extra)
    try:
        log_access("GET", "/both", 204, 0.5, "r2")
    finally:
        access.removeHandler(extra)
    assert [record.args for record in seen] == [("GET", "/both", 204, 0.5, "r2")]
    assert json.loads(stream.getvalue())["path"] == "/both"
    configure_logging("json", "WARNING", stream=stream)
    log_access("GET", "/quiet", 200, 0.5, "r3")
    assert "/quiet" not in stream.getvalue()
