"""``netweave openapi`` prints the API's document: the one the app serves and the repo commits."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from litestar.testing import TestClient
from netweave.api.app import create_app
from netweave.cli.main import main
from netweave.config import Settings
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry


def test_openapi_prints_the_served_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["openapi"].startswith("3.")
    assert "/o2dms/v1/nfDeploymentDescriptors" in printed["paths"]
    assert "/healthz" in printed["paths"]

    settings = Settings(data_dir=tmp_path)
    app = create_app(settings, registry=AdapterRegistry({}), plugin_manager=make_plugin_manager())
    with TestClient(app) as client:
        served = client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == printed


def test_openapi_output_file(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    result = CliRunner().invoke(main, ["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(target.read_text())["info"]["title"] == "netweave O2-DMS API"
