"""The pytest11 plugin: cheap to import, require_backend skips or fails, netweave_settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pydantic", "litestar", "stevedore", "structlog", "sqlalchemy", "kubernetes", "yaml")

EXAMPLE = """
from netweave.testing import require_backend


def test_needs_a_registry():
    require_backend("docker-registry binary not found")


def test_settings_fixture(netweave_settings, netweave_data_dir):
    assert netweave_settings.data_dir == netweave_data_dir
    assert netweave_data_dir.is_dir() and not any(netweave_data_dir.iterdir())
    assert netweave_settings.plugins.dms == []
"""


def run_pytest(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_example.py").write_text(EXAMPLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    if require is not None:
        env["NETWEAVE_REQUIRE_BACKENDS"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rsf", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, netweave.testing.plugin\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("require", [None, "0"])
def test_require_backend_skips_with_reason(tmp_path: Path, require: str | None) -> None:
    result = run_pytest(tmp_path, require)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
    assert "docker-registry binary not found" in result.stdout


def test_require_backend_fails_under_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "1")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert (
        "docker-registry binary not found (NETWEAVE_REQUIRE_BACKENDS=1: missing components fail)"
        in result.stdout
    )
