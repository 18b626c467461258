"""The README's "try it" path with the sample chart the repository ships (docs/examples):
archived with tar as the README says, uploaded and deployed with the netweave CLI against a
gateway on the Kubernetes API emulator, through the real Helm SDK."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from netweave.cli.main import main
from netweave.testing.k8s import KubernetesEmulator
from servers import serve_asgi

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
TOKEN = "sample-chart-token"


def _app(data_dir: Path, kubeconfig: Path) -> Any:
    from netweave.api.app import create_app
    from netweave.config import Settings

    config = {"storage": {"kind": "local"}, "cluster": {"kubeconfig": str(kubeconfig)}}
    settings = Settings.model_validate(
        {
            "dataDir": str(data_dir),
            "api": {"token": TOKEN},
            "plugins": {
                "dms": [{"name": "helm", "type": "helm", "default": True, "config": config}]
            },
        }
    )
    return create_app(settings)


def test_the_sample_chart_uploads_and_deploys_with_the_cli(
    tmp_path: Path, k8s_emulator: KubernetesEmulator, k8s_kubeconfig: Path
) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.fail("tar is needed (the README archives the sample chart with it)")
    archive = tmp_path / "hello-netweave-0.1.0.tgz"
    # The README's command, from the repository's root.
    subprocess.run(
        [tar, "czf", str(archive), "-C", "docs/examples", "hello-netweave"],
        cwd=EXAMPLES.parents[1],
        check=True,
    )
    runner = CliRunner()
    with serve_asgi(_app(tmp_path / "data", k8s_kubeconfig)) as base:
        env = {"NETWEAVE_URL": base, "NETWEAVE_API_TOKEN": TOKEN}
        uploaded = runner.invoke(main, ["packages", "upload", str(archive), "-o", "json"], env=env)
        assert uploaded.exit_code == 0, uploaded.output
        assert '"packageId": "hello-netweave-0.1.0"' in uploaded.stdout
        created = runner.invoke(
            main,
            [
                "deployments",
                "create",
                "--name",
                "hello",
                "--namespace",
                "edge",
                "--package",
                "hello-netweave-0.1.0",
                "--wait",
                "--timeout",
                "60",
            ],
            env=env,
        )
        assert created.exit_code == 0, created.output
    deployment = k8s_emulator.get("apps/v1", "Deployment", "hello-hello-netweave", "edge")
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    config_map = k8s_emulator.get("v1", "ConfigMap", "hello-hello-netweave", "edge")
    assert config_map is not None and config_map["data"] == {"message": "hello from netweave"}
