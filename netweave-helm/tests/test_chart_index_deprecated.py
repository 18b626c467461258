"""A package deprecated through the API is marked in the served index as Helm marks it
(``deprecated: true``), restoring it removes the mark, and the mark outlives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml
from servers import serve_asgi

TOKEN = "helm-deprecated-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


def _app(data_dir: Path) -> Any:
    from netweave.api.app import create_app
    from netweave.config import Settings

    settings = Settings.model_validate(
        {
            "dataDir": str(data_dir),
            "api": {"token": TOKEN},
            "plugins": {
                "dms": [
                    {
                        "name": "helm-local",
                        "type": "helm",
                        "default": True,
                        "config": {"storage": {"kind": "local"}},
                    }
                ]
            },
        }
    )
    return create_app(settings)


def _entry(base: str, name: str) -> dict[str, Any]:
    index = yaml.safe_load(httpx.get(base + "/charts/index.yaml").text)
    entries: list[dict[str, Any]] = index["entries"][name]
    assert len(entries) == 1
    return entries[0]


def test_deprecate_and_restore_mark_the_served_index(tmp_path: Path, charts_dir: Path) -> None:
    import helm_python

    data = tmp_path / "data"
    with (
        serve_asgi(_app(data)) as base,
        httpx.Client(base_url=base, headers=AUTH, timeout=60) as client,
    ):
        with (charts_dir / "hello-world-0.1.0.tgz").open("rb") as handle:
            uploaded = client.post(
                PACKAGES,
                data={"name": "hello-world", "artifactVersion": "0.1.0"},
                files={"chart": ("hello-world-0.1.0.tgz", handle, "application/gzip")},
            )
        assert uploaded.status_code == 201, uploaded.text
        url = f"{PACKAGES}/{uploaded.json()['packageId']}"
        assert "deprecated" not in _entry(base, "hello-world")

        deprecated = client.patch(url, json={"state": "DEPRECATED"})
        assert deprecated.status_code == 200, deprecated.text
        entry = _entry(base, "hello-world")
        assert entry["deprecated"] is True
        assert entry["version"] == "0.1.0" and entry["digest"]  # the rest of the entry kept
        # The real Helm SDK reads the mark from the served repository.
        parsed = helm_python.repo_index(base + "/charts")
        assert parsed["entries"]["hello-world"][0]["deprecated"] is True

        restored = client.patch(url, json={"state": "AVAILABLE"})
        assert restored.status_code == 200, restored.text
        assert "deprecated" not in _entry(base, "hello-world")
        assert client.patch(url, json={"state": "DEPRECATED"}).status_code == 200

    # A new gateway on the same data directory serves the mark from the repository's journal.
    with serve_asgi(_app(data)) as base:
        assert _entry(base, "hello-world")["deprecated"] is True
