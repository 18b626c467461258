"""THE discovery test: a real adapter distribution, installed into a fresh virtual environment
next to netweave-core, is found and loaded through its ``netweave.adapters`` entry point.

How the venv is built: ``tests/support/fresh_venv.py``. Distributions installed in this interpreter
stay visible as metadata there, so the assertions are about ``netweave-tinyfix`` only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fresh_venv import build_fresh_venv, run, venv_env

CORE_DIR = Path(__file__).resolve().parents[2]
FIXTURE_DIR = CORE_DIR / "tests" / "fixtures" / "tinyfix"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("discovery") / "venv"
    return build_fresh_venv(root, CORE_DIR, FIXTURE_DIR)


LOAD_SCRIPT = """
import json, sys
from pathlib import Path
import netweave, netweave_tinyfix
from netweave.config import load_settings
from netweave.config.loading import load_adapters
from netweave.config.plugins import make_plugin_manager

settings = load_settings(Path(sys.argv[1]))
pm = make_plugin_manager(settings)
registry = load_adapters(settings, pm)
adapter = registry.adapters["tiny-a"]
info = adapter.info()
print(json.dumps({
    "netweave_file": netweave.__file__,
    "adapter_file": netweave_tinyfix.__file__,
    "instances": sorted(registry),
    "default": registry.default_name,
    "class": type(adapter).__module__ + ":" + type(adapter).__qualname__,
    "distribution": info.distribution,
    "version": info.version,
    "capabilities": sorted(info.capabilities),
    "data_dir": str(adapter.data_dir),
    "data_dir_exists": adapter.data_dir.is_dir(),
    "greeting_b": registry.adapters["tiny-b"].config.greeting,
    "hooks_registered": pm.has_plugin("tinyfix"),
    "configured_ports": netweave_tinyfix.TinyfixHooks.configured,
}))
"""


def write_config(path: Path, data_dir: Path, *instances: str) -> Path:
    path.write_text(
        f"data_dir: {data_dir}\nserver: {{port: 8765}}\nplugins:\n  dms:\n"
        + "".join(f"    - {i}\n" for i in instances)
    )
    return path


def test_installed_distribution_is_discovered_and_loaded(venv: Path, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "gw.yaml",
        tmp_path / "data",
        "{name: tiny-a, type: tinyfix}",
        "{name: tiny-b, type: tinyfix, default: true, config: {greeting: hi}}",
    )
    result = run(venv / "bin" / "python", "-c", LOAD_SCRIPT, cfg, env=venv_env(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    # Imported from the fresh venv, not from the repository checkout.
    assert seen["netweave_file"].startswith(str(venv))
    assert seen["adapter_file"].startswith(str(venv))
    assert seen["instances"] == ["tiny-a", "tiny-b"]
    assert seen["default"] == "tiny-b"
    assert seen["class"] == "netweave_tinyfix:TinyfixAdapter"
    assert (seen["distribution"], seen["version"]) == ("netweave-tinyfix", "0.3.1")
    assert seen["capabilities"] == ["package-listing", "package-management"]
    # Given to the adapter, not written into its configuration; the loader creates nothing
    # (the adapter does, when it starts and keeps files).
    assert seen["data_dir"] == str(tmp_path / "data" / "adapters" / "tiny-a")
    assert seen["data_dir_exists"] is False
    assert seen["greeting_b"] == "hi"
    assert seen["hooks_registered"] is True
    assert seen["configured_ports"] == [8765]


def test_netweave_adapters_lists_it_with_its_distribution(venv: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "gw.yaml", tmp_path / "data", "{name: tiny-a, type: tinyfix}")
    result = run(venv / "bin" / "netweave", "adapters", "--json", "--config", cfg,
                 env=venv_env(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    overview = json.loads(result.stdout)
    by_type = {a["type"]: a for a in overview["installed"]}
    assert by_type["tinyfix"] == {
        "type": "tinyfix",
        "value": "netweave_tinyfix:TinyfixAdapter",
        "distribution": "netweave-tinyfix",
        "version": "0.3.1",
        "instances": [{"name": "tiny-a", "enabled": True, "default": False}],
    }
    assert by_type["tinyfix-broken"]["instances"] == []


def test_broken_installed_adapter_stops_with_distribution_and_import_error(
    venv: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "gw.yaml", tmp_path / "data", "{name: bad, type: tinyfix-broken}")
    result = run(venv / "bin" / "netweave", "config", "check", "--config", cfg,
                 env=venv_env(tmp_path))  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "adapter type 'tinyfix-broken' (netweave_tinyfix.broken:BrokenAdapter, from " in (
        result.stderr
    )
    assert "netweave-tinyfix 0.3.1) failed to import: ModuleNotFoundError" in result.stderr
    assert "netweave_tinyfix_dependency_that_does_not_exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_passes_with_the_installed_adapter(venv: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "gw.yaml", tmp_path / "data", "{name: tiny-a, type: tinyfix}")
    result = run(venv / "bin" / "netweave", "config", "check", "--config", cfg,
                 env=venv_env(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "adapters: tiny-a (tinyfix)" in result.stdout
    # Checking does not create the adapter's directory; serving does.
    assert not (tmp_path / "data" / "adapters").exists()
