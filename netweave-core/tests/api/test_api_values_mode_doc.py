"""The document says what PUT and PATCH do with values (PUT replaces unless valuesMode=merge)."""

from __future__ import annotations

import json
from pathlib import Path

from netweave.models.deployments import DeploymentUpdate

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"


def test_values_mode_has_no_single_default_and_says_per_method() -> None:
    model = DeploymentUpdate.model_json_schema(by_alias=True)["properties"]["valuesMode"]
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    document = committed["components"]["schemas"]["DeploymentUpdate"]["properties"]["valuesMode"]
    for schema in (model, document):
        # The default differs by method, so the schema must not state "merge" for both.
        assert "default" not in schema
        assert "PUT replaces them unless valuesMode is merge" in schema["description"]
        assert "PATCH merges them unless it is replace" in schema["description"]
    put = committed["paths"]["/o2dms/v1/nfDeployments/{deploymentId}"]["put"]
    assert "replace" in put["summary"] and "unless valuesMode=merge" in put["summary"]
