"""``JsonBytes``: pre-rendered JSON answered with what Litestar's own ``Response`` sends."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request, Response
from netweave.api.common import JSON, JsonBytes

BODY = b'{"packageId":"a-1.0.0","name":"a"}'


async def _messages(response: Response[Any], **options: Any) -> list[dict[str, Any]]:
    scope: Any = {"type": "http", "method": "GET", "headers": [], "path": "/", "app": None}
    request: Request[Any, Any, Any] = Request(scope)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    answer = response.to_asgi_response(None, request, **options)
    await answer(scope, receive, send)
    return sent


@pytest.mark.parametrize("status", [200, 201])
async def test_the_same_messages_as_a_litestar_response(status: int) -> None:
    # As Litestar's response handler calls it for a handler returning a Response.
    options: dict[str, Any] = {"headers": {}, "cookies": [], "media_type": JSON}
    expected = await _messages(Response(BODY, media_type=JSON, status_code=status), **options)
    assert await _messages(JsonBytes(BODY, status), **options) == expected
    assert expected[0]["headers"] == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]


async def test_headers_added_by_the_route_are_kept() -> None:
    options: dict[str, Any] = {"headers": {"X-Route": "1"}, "cookies": [], "media_type": JSON}
    expected = await _messages(Response(BODY, media_type=JSON), **options)
    answer = await _messages(JsonBytes(BODY), **options)
    assert answer == expected
    assert (b"x-route", b"1") in answer[0]["headers"]


async def test_headers_of_the_answer_are_sent_first_as_litestar_sends_them() -> None:
    # A list page's Link (and any other header of the answer itself) on the direct path.
    options: dict[str, Any] = {"headers": {}, "cookies": [], "media_type": JSON}
    headers = {"Link": '<http://h/x?filter=%28eq%2Ca%2Cb%29>; rel="next"', "ETag": '"3"'}
    expected = await _messages(Response(BODY, media_type=JSON, headers=headers), **options)
    assert await _messages(JsonBytes(BODY, headers=headers), **options) == expected
    assert expected[0]["headers"][:2] == [
        (b"link", b'<http://h/x?filter=%28eq%2Ca%2Cb%29>; rel="next"'),
        (b"etag", b'"3"'),
    ]
    scope: Any = {"type": "http", "method": "GET", "headers": [], "path": "/", "app": None}
    direct = JsonBytes(BODY, headers=headers).to_asgi_response(None, Request(scope), **options)
    assert type(direct).__name__ == "_JsonAnswer"


@pytest.mark.parametrize("name", ["Content-Type", "content-length"])
async def test_a_content_header_given_by_the_answer_is_left_to_litestar(name: str) -> None:
    options: dict[str, Any] = {"headers": {}, "cookies": [], "media_type": JSON}
    headers = {name: "application/merge-patch+json" if "type" in name.lower() else "35"}
    expected = await _messages(Response(BODY, media_type=JSON, headers=headers), **options)
    assert await _messages(JsonBytes(BODY, headers=headers), **options) == expected
