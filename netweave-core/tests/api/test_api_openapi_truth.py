"""The document says what the server does: dry-run previews answer 200, and the
``Idempotency-Key`` constraints in the document are the ones the server enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest
from netweave.errors import InvalidInput
from netweave.operations.idempotency import IdempotencyService
from support.gateway import AUTH, Gateway


async def _document(gw: Gateway) -> dict[str, Any]:
    response = await gw.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_dry_run_previews_are_documented_as_200(gw: Gateway) -> None:
    paths = (await _document(gw))["paths"]
    for path, method in (
        ("/o2dms/v1/nfDeployments", "post"),
        ("/o2dms/v1/nfDeployments/{deployment_id}", "put"),
        ("/o2dms/v1/nfDeployments/{deployment_id}", "patch"),
    ):
        item = paths.get(path) or next(v for k, v in paths.items() if k.lower() == path.lower())
        ok = item[method]["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Preview"}, (path, method)


KEYS = ["k", "a" * 255, "a" * 256, "", " spaced key ", "tab\there", "é", "nl\n", "~!@#$%^&*()"]


async def test_the_idempotency_key_rule_is_the_document_s(gw: Gateway) -> None:
    operation = (await _document(gw))["paths"]["/o2dms/v1/nfDeployments"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    schema = header["schema"]
    # ECMA-262's "$" (JSON Schema's regex dialect) does not match before a final newline as
    # Python's does: Python's "\Z" is the same thing.
    documented = re.compile(re.sub(r"\$$", r"\\Z", schema["pattern"]))
    for key in KEYS:
        allowed = (
            schema["minLength"] <= len(key) <= schema["maxLength"]
            and documented.search(key) is not None
        )
        try:
            IdempotencyService.validate_key(key)
            accepted = True
        except InvalidInput:
            accepted = False
        assert accepted == allowed, repr(key)


@pytest.mark.parametrize("key", ["é", "tab\there", ""])
async def test_keys_outside_the_rule_are_a_400_naming_the_header(gw: Gateway, key: str) -> None:
    response = await gw.client.post(
        "/o2dms/v1/nfDeployments",
        json={"name": "x", "packageId": "p-1"},
        headers={**AUTH, "Idempotency-Key": key.encode()},
    )
    assert response.status_code == 400, response.text
