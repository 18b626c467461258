"""The OpenAPI document: committed copy == served, errors as problem+json, valid OpenAPI."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate
from support.gateway import Gateway

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")


async def served(gw: Gateway) -> dict[str, object]:
    response = await gw.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, object] = response.json()
    return document


async def test_committed_document_matches_the_running_app(gw: Gateway) -> None:
    document = await served(gw)
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == document, (
        "netweave-core/openapi.json is stale: regenerate it with "
        "`python -m netweave.api.openapi > netweave-core/openapi.json`"
    )


async def test_the_module_prints_the_same_document(gw: Gateway) -> None:
    from netweave.api.openapi import render

    assert json.loads(render(await served(gw))) == json.loads(COMMITTED.read_text())


async def test_every_error_response_is_problem_json(gw: Gateway) -> None:
    document = await served(gw)
    paths = document["paths"]
    assert isinstance(paths, dict)
    seen = 0
    for path, item in paths.items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            assert operation.get("operationId"), (method, path)
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            if path.startswith("/o2dms"):
                assert {"401", "403"} <= set(responses), (method, path)
                assert operation["security"] == [{"bearerAuth": []}]
            for status, response in responses.items():
                if int(status) >= 400:
                    seen += 1
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
    assert seen > 100
    problem = document["components"]["schemas"]["ProblemDetails"]  # type: ignore[index]
    assert {"type", "title", "status", "detail", "instance", "error", "message", "code"} <= set(
        problem["properties"]
    )


async def test_operation_ids_are_unique_and_the_document_is_valid(gw: Gateway) -> None:
    document = await served(gw)
    ids = [
        op["operationId"]
        for item in document["paths"].values()  # type: ignore[attr-defined]
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))
    assert "CreateNfDeploymentDescriptor" in ids
    validate(document)


async def test_upload_request_bodies_are_documented(gw: Gateway) -> None:
    document = await served(gw)
    post = document["paths"]["/o2dms/v1/nfDeploymentDescriptors"]["post"]  # type: ignore[index]
    content = post["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert content["multipart/form-data"]["schema"]["properties"]["chart"]["format"] == "binary"


async def test_every_operation_has_an_error_list(gw: Gateway) -> None:
    """A new route must say which errors it answers (api.openapi.ERRORS_BY_OPERATION)."""
    from netweave.api.openapi import ERRORS_BY_OPERATION

    document = await served(gw)
    ids = {
        op["operationId"]
        for item in document["paths"].values()  # type: ignore[attr-defined]
        for method, op in item.items()
        if method in METHODS
    }
    undocumented = {i for i in ids if i not in ERRORS_BY_OPERATION}
    assert undocumented <= {"GetHealth", "GetMetrics", "GetApiInfo", "ListAdapters"}
    assert set(ERRORS_BY_OPERATION) <= ids


async def test_rate_limited_changes_declare_429_with_retry_after(gw: Gateway) -> None:
    """api.rateLimit answers 429 + Retry-After on /o2dms changes; reads are never limited."""
    document = await served(gw)
    limited = 0
    for path, item in document["paths"].items():  # type: ignore[attr-defined]
        for method in METHODS:
            operation = item.get(method)
            if operation is None or not path.startswith("/o2dms"):
                continue
            responses = operation["responses"]
            if method == "get":
                assert "429" not in responses, (method, path)
                continue
            limited += 1
            header = responses["429"]["headers"]["Retry-After"]
            assert header["schema"] == {"type": "integer", "minimum": 1}, (method, path)
            assert list(responses["429"]["content"]) == ["application/problem+json"]
    assert limited >= 14  # every POST/PUT/PATCH/DELETE under /o2dms
