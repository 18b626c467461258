"""netweave.adapters.http.BackendClient: retries, Retry-After, error mapping, no retry on POST."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from netweave.adapters import http as http_module
from netweave.adapters.http import BackendClient, HttpSettings, default_error
from netweave.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(
    handler: Handler, *, retries: int = 3, error_mapper: object = None, **kwargs: object
) -> BackendClient:
    return BackendClient(
        "http://backend.test",
        backend="test-backend",
        settings=HttpSettings(retries=retries, backoff=0),
        transport=httpx.MockTransport(handler),
        error_mapper=error_mapper,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Delays the client asked for, without waiting them out."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(http_module.asyncio, "sleep", fake_sleep)
    return recorded


@pytest.mark.asyncio
async def test_get_is_retried_on_503_then_succeeds(sleeps: list[float]) -> None:
    recorder = Recorder(
        httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1})
    )
    client = client_for(recorder)
    response = await client.request("GET", "/things")
    assert response.json() == {"ok": 1}
    assert len(recorder.requests) == 3
    assert len(sleeps) == 2
    await client.aclose()


@pytest.mark.asyncio
async def test_retries_are_bounded_and_end_in_backend_unavailable(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503))
    client = client_for(recorder, retries=2)
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        await client.request("GET", "/things")
    assert len(recorder.requests) == 3  # 1 + 2 retries
    await client.aclose()


@pytest.mark.asyncio
async def test_429_honours_retry_after_and_caps_it(sleeps: list[float]) -> None:
    recorder = Recorder(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(429, headers={"Retry-After": "9999"}),
        httpx.Response(429, headers={"Retry-After": "soon"}),
        httpx.Response(204),
    )
    client = client_for(recorder)
    response = await client.request("DELETE", "/things/1")
    assert response.status_code == 204
    assert sleeps[0] == pytest.approx(2.0)
    assert sleeps[1] == pytest.approx(http_module._MAX_RETRY_AFTER)
    # An unparsable Retry-After falls back to the back-off (0 here), never crashes.
    assert sleeps[2] == pytest.approx(0.0)
    await client.aclose()


@pytest.mark.asyncio
async def test_post_is_not_retried(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(200))
    client = client_for(recorder)
    with pytest.raises(BackendUnavailable):
        await client.request("POST", "/things", json={"a": 1})
    assert len(recorder.requests) == 1
    assert sleeps == []
    await client.aclose()


@pytest.mark.asyncio
async def test_post_transport_error_is_not_retried_either(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.Response(200))
    client = client_for(recorder)
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await client.request("POST", "/things")
    assert len(recorder.requests) == 1
    await client.aclose()


@pytest.mark.asyncio
async def test_post_may_opt_in_to_retries(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(201))
    client = client_for(recorder)
    response = await client.request("POST", "/things", retry=True)
    assert response.status_code == 201
    assert len(recorder.requests) == 2
    await client.aclose()


@pytest.mark.asyncio
async def test_get_may_opt_out_of_retries(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(200))
    client = client_for(recorder)
    with pytest.raises(BackendUnavailable):
        await client.request("GET", "/things", retry=False)
    assert len(recorder.requests) == 1
    await client.aclose()


@pytest.mark.asyncio
async def test_timeouts_are_retried_then_become_backend_timeout(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"))
    client = client_for(recorder, retries=1)
    with pytest.raises(BackendTimeout, match="timed out"):
        await client.request("GET", "/slow")
    assert len(recorder.requests) == 2
    recorder = Recorder(httpx.ReadTimeout("slow"), httpx.Response(200))
    client = client_for(recorder, retries=1)
    assert (await client.request("PUT", "/slow")).status_code == 200
    await client.aclose()


@pytest.mark.asyncio
async def test_transport_errors_become_backend_unavailable(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.ConnectError("refused"))
    client = client_for(recorder, retries=2)
    with pytest.raises(BackendUnavailable, match=r"test-backend is unreachable \(ConnectError\)"):
        await client.request("GET", "/x")
    assert len(recorder.requests) == 3
    await client.aclose()


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (404, NotFound, "not found"),
        (409, Conflict, "conflict"),
        (400, InvalidInput, "refused the request"),
        (422, InvalidInput, "refused the request"),
        (401, BackendError, "credentials"),
        (403, BackendError, "credentials"),
        (500, BackendError, "failed"),
        (429, BackendUnavailable, "unavailable"),
    ],
)
@pytest.mark.asyncio
async def test_status_mapping(
    status: int, error: type[NetweaveError], text: str, sleeps: list[float]
) -> None:
    client = client_for(Recorder(httpx.Response(status, text="details here")), retries=0)
    with pytest.raises(error, match=text) as info:
        await client.request("GET", "/x")
    # The exact class matters: a 403 must not become a client-facing 403 or a 404.
    assert type(info.value) is error
    await client.aclose()


def test_default_error_keeps_messages_short_and_single_line() -> None:
    response = httpx.Response(500, text="line one\n  line two " + "x" * 1000)
    error = default_error(response, "svc")
    assert "\n" not in error.message
    assert "line one line two" in error.message
    assert len(error.message) < 400


@pytest.mark.asyncio
async def test_expected_statuses_are_returned_not_raised(sleeps: list[float]) -> None:
    client = client_for(Recorder(httpx.Response(404, json={"gone": True})))
    response = await client.request("GET", "/x", expected=(200, 404))
    assert response.status_code == 404
    await client.aclose()


@pytest.mark.asyncio
async def test_error_mapper_refines_and_falls_back(sleeps: list[float]) -> None:
    def mapper(response: httpx.Response) -> NetweaveError | None:
        if response.status_code == 403 and b"missing" in response.content:
            return NotFound("the app is missing")
        return None

    client = client_for(Recorder(httpx.Response(403, text="app missing")), error_mapper=mapper)
    with pytest.raises(NotFound, match="the app is missing"):
        await client.request("GET", "/x")
    client = client_for(Recorder(httpx.Response(403, text="denied")), error_mapper=mapper)
    with pytest.raises(BackendError, match="credentials"):
        await client.request("GET", "/x")
    await client.aclose()


@pytest.mark.asyncio
async def test_auth_and_headers_are_applied(sleeps: list[float]) -> None:
    recorder = Recorder(httpx.Response(200))
    client = client_for(recorder, auth=httpx.BasicAuth("u", "p"), headers={"X-Trace": "1"})
    await client.request("GET", "/x")
    request = recorder.requests[0]
    assert request.headers["authorization"].startswith("Basic ")
    assert request.headers["x-trace"] == "1"
    assert str(request.url) == "http://backend.test/x"
    await client.aclose()


def test_settings_aliases_and_bounds() -> None:
    settings = HttpSettings.model_validate(
        {"connectTimeout": 1, "requestTimeout": 2, "retries": 0, "tls": {"verify": False}}
    )
    assert (settings.connect_timeout, settings.request_timeout, settings.tls.verify) == (
        1,
        2,
        False,
    )
    with pytest.raises(ValueError, match="retries"):
        HttpSettings(retries=11)
    with pytest.raises(ValueError, match="extra"):
        HttpSettings.model_validate({"retry": 1})


# -- a real loopback server: the real transport path --------------------------------------


class _Flaky(BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_GET(self) -> None:
        _Flaky.calls.append(self.path)
        if len(_Flaky.calls) == 1:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"hello": "world"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def loopback() -> Iterator[str]:
    _Flaky.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.asyncio
async def test_loopback_retry_over_a_real_socket(loopback: str) -> None:
    client = BackendClient(loopback, backend="loop", settings=HttpSettings(backoff=0))
    response = await client.request("GET", "/hello")
    assert response.json() == {"hello": "world"}
    assert _Flaky.calls == ["/hello", "/hello"]
    await client.aclose()


@pytest.mark.asyncio
async def test_loopback_connection_refused_is_backend_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = BackendClient(
        f"http://127.0.0.1:{port}", backend="gone", settings=HttpSettings(retries=1, backoff=0)
    )
    with pytest.raises(BackendUnavailable, match="gone is unreachable"):
        await client.request("GET", "/")
    await client.aclose()


# -- streaming -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_yields_the_body_incrementally() -> None:
    recorder = Recorder(httpx.Response(200, content=b'{"a": 1}\n{"a": 2}\n'))
    client = client_for(recorder)
    async with client.stream("GET", "/logs", params={"follow": "true"}) as response:
        lines = [line async for line in response.aiter_lines()]
    assert lines == ['{"a": 1}', '{"a": 2}']
    assert recorder.requests[0].url.params["follow"] == "true"
    await client.aclose()


@pytest.mark.asyncio
async def test_stream_maps_errors_before_the_body_and_does_not_retry() -> None:
    recorder = Recorder(httpx.Response(404, text="no such app"), httpx.Response(200))
    client = client_for(recorder)
    with pytest.raises(NotFound, match="no such app"):
        async with client.stream("GET", "/logs"):
            pytest.fail("the body of an error response must not be yielded")
    assert len(recorder.requests) == 1
    recorder = Recorder(httpx.ConnectError("refused"))
    client = client_for(recorder)
    with pytest.raises(BackendUnavailable):
        async with client.stream("GET", "/logs"):
            pytest.fail("unreachable")
    recorder = Recorder(httpx.ReadTimeout("slow"))
    client = client_for(recorder)
    with pytest.raises(BackendTimeout):
        async with client.stream("GET", "/logs"):
            pytest.fail("unreachable")
    await client.aclose()
