"""The document says what the server does: dry-run previews answer 200, and the
``Idempotency-Key`` constraints in the document are the ones the server enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest
from netweave.errors import InvalidInput
from netweave.models.deployments import DNS_LABEL_PATTERN
from netweave.models.packages import PACKAGE_NAME_PATTERN
from netweave.models.subscriptions import HTTP_URL_PATTERN
from netweave.services.idempotency import IdempotencyService
from referencing.jsonschema import DRAFT202012 as DRAFT_2020_12
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
        ("/o2dms/v1/nfDeployments/{deploymentId}", "put"),
        ("/o2dms/v1/nfDeployments/{deploymentId}", "patch"),
    ):
        item = paths[path]
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


WIRE_NAMES = {
    "deploymentManagerId",
    "packageId",
    "deploymentId",
    "operationId",
    "subscriptionId",
    "vnfInstanceId",
    "vnfLcmOpOccId",
    "vnfPkgId",
    "vnfdId",
    "artifactPath",
}


async def test_path_parameters_have_their_wire_names(gw: Gateway) -> None:
    paths = (await _document(gw))["paths"]
    seen: set[str] = set()
    for path, item in paths.items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", ()):
                if parameter["in"] == "path":
                    assert parameter["name"] in WIRE_NAMES, (path, method, parameter["name"])
                    assert "{" + parameter["name"] + "}" in path
                    seen.add(parameter["name"])
        assert "_id}" not in path
    assert seen == WIRE_NAMES
    # and a bad id is a 400 naming the parameter by that name
    response = await gw.client.get("/o2dms/v1/nfDeployments/not-a-uuid", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "deploymentId"


async def test_options_answers_every_method_of_the_path(gw: Gateway) -> None:
    paths = (await _document(gw))["paths"]
    ids = {
        "{packageId}": "app-1.0.0",
        "{deploymentId}": "00000000-0000-4000-8000-000000000000",
        "{operationId}": "00000000-0000-4000-8000-000000000000",
        "{subscriptionId}": "00000000-0000-4000-8000-000000000000",
        "{vnfInstanceId}": "00000000-0000-4000-8000-000000000000",
        "{vnfLcmOpOccId}": "00000000-0000-4000-8000-000000000000",
    }
    checked = 0
    for path, item in paths.items():
        url = path
        for template, value in ids.items():
            url = url.replace(template, value)
        response = await gw.client.options(url, headers=AUTH)
        assert response.status_code == 204, (path, response.text)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        documented = {m.upper() for m in item if m != "parameters"}
        assert allowed == documented | {"OPTIONS"}, path
        checked += 1
    assert checked >= 15


async def test_the_document_states_the_server_s_constraints(gw: Gateway) -> None:
    document = await _document(gw)
    schemas = document["components"]["schemas"]
    request = schemas["DeploymentRequest"]
    assert request["additionalProperties"] is False
    for member in ("name", "namespace"):
        rule = request["properties"][member]
        assert (rule["maxLength"], rule["pattern"]) == (63, DNS_LABEL_PATTERN)
    logs = document["paths"]["/o2dms/v1/nfDeployments/{deploymentId}/logs"]["get"]
    tail = next(p for p in logs["parameters"] if p["name"] == "tailLines")
    assert (tail["schema"]["minimum"], tail["schema"]["maximum"]) == (0, 100_000)
    state = schemas["PackageStateChange"]["properties"]["state"]
    assert state["enum"] == ["AVAILABLE", "DEPRECATED"]
    callback = schemas["SubscriptionRequest"]["properties"]["callbackUri"]
    assert callback["pattern"] == HTTP_URL_PATTERN
    upload = document["paths"]["/o2dms/v1/nfDeploymentDescriptors"]["post"]["requestBody"]
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["name"]["pattern"] == PACKAGE_NAME_PATTERN
    assert form["additionalProperties"] is False


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # documented (pattern, additionalProperties, anyOf) and refused alike
        ("/o2dms/v1/nfDeployments", {"name": "Web", "packageId": "p-1"}),
        ("/o2dms/v1/nfDeployments", {"name": "web", "packageId": "p-1", "namespace": "a_b"}),
        ("/o2dms/v1/nfDeployments", {"name": "web", "packageId": "p-1", "colour": 1}),
        ("/o2dms/v1/subscriptions", {"callbackUri": "ftp://example.com/x"}),
        ("/o2dms/v1/subscriptions", {"callbackUri": "http://[1:2]/x"}),
    ],
)
async def test_bodies_the_document_refuses_are_400(
    gw: Gateway, path: str, body: dict[str, Any]
) -> None:
    document = await _document(gw)
    validator = _body_validator(document, path)
    assert not validator.is_valid(body)
    response = await gw.client.post(path, json=body, headers=AUTH)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/o2dms/v1/nfDeployments/00000000-0000-4000-8000-000000000000/scale", {"replicas": 2.0}),
        ("/o2dms/v1/nfDeployments/00000000-0000-4000-8000-000000000000", {}),
    ],
)
async def test_integral_numbers_and_empty_updates_as_the_document_says(
    gw: Gateway, path: str, body: dict[str, Any]
) -> None:
    document = await _document(gw)
    method = "post" if path.endswith("/scale") else "patch"
    validator = _body_validator(document, path, method)
    response = await gw.client.request(method.upper(), path, json=body, headers=AUTH)
    if validator.is_valid(body):  # 2.0 is an integer to JSON Schema: not refused as such
        assert response.status_code == 404, response.text
    else:  # an update that changes nothing: refused by both
        assert response.status_code == 400, response.text


def _body_validator(document: dict[str, Any], path: str, method: str = "post") -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    template = path.replace("00000000-0000-4000-8000-000000000000", "{deploymentId}")
    operation = document["paths"][template][method]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    # The document as a resource of its own, so "#/components/..." resolves inside it.
    base = "urn:netweave:openapi"
    resource = Resource.from_contents(document, default_specification=DRAFT_2020_12)
    registry = Registry().with_resource(base, resource)
    return Draft202012Validator({"$ref": base + schema["$ref"]}, registry=registry)
