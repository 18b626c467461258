"""Assertions on problem+json responses."""

from __future__ import annotations

from typing import Any


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """A 4xx/5xx ``application/problem+json`` body with every member; ``field`` is named."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == status
    assert body["type"].startswith("urn:netweave:problem:")
    assert body["title"]
    assert body["detail"]
    assert body["message"] == body["detail"]
    assert body["error"]
    if field is not None:
        named = body.get("details", {}).get("field") == field or any(
            e.get("field") == field for e in body.get("details", {}).get("errors", [])
        )
        assert named or f"{field}:" in body["detail"] or repr(field) in body["detail"], body
    return body
