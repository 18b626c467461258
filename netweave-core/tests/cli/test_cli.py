"""The netweave command through click's CliRunner (no server started here)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from netweave import CONTRACT_VERSION, __version__
from netweave import config as config_module
from netweave.cli.main import main
from netweave.config import loading

SECRET = "tok-should-never-print-0042"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def outside_a_checkout(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Install hints name a checkout's directory when netweave-core was installed from one (as
    # here): these tests pin the installed-from-an-index case unless they set it themselves.
    monkeypatch.setattr(loading, "CORE_SOURCE", tmp_path_factory.mktemp("site") / "netweave-core")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"netweave {__version__} (contract {CONTRACT_VERSION})"


def test_commands_listed(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "adapters", "config", "openapi", "adapter"):
        assert f"  {command} " in result.stdout


def test_config_check_ok_prints_a_summary_without_secrets(
    runner: CliRunner, tmp_path: Path
) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        f"server: {{port: 9999}}\napi: {{token: {SECRET}}}\n"
        "store: {url: 'postgresql+asyncpg://u:pw-9999@127.0.0.1/test'}\n",
    )
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"configuration OK ({cfg})"
    assert "listen: 127.0.0.1:9999" in result.stdout
    assert "store: postgresql+asyncpg (URL from configuration, not shown)" in result.stdout
    assert "API token: set" in result.stdout
    assert SECRET not in result.output and "pw-9999" not in result.output


def test_config_check_reads_netweave_config_env(runner: CliRunner, tmp_path: Path) -> None:
    cfg = write(tmp_path / "env.yaml", "server: {port: 9876}\n")
    result = runner.invoke(main, ["config", "check"], env={"NETWEAVE_CONFIG": str(cfg)})
    assert result.exit_code == 0, result.output
    assert f"configuration OK ({cfg})" in result.stdout
    assert "listen: 127.0.0.1:9876" in result.stdout


def test_config_check_errors_exit_2_listing_fields(runner: CliRunner, tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        "server: {port: -1}\nlogFormat: loud\napi: {token: '${UNSET_TOKEN_VAR}'}\n",
    )
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: invalid configuration ({cfg}):",
        "  - api.token: environment variable UNSET_TOKEN_VAR is not set "
        "(write ${UNSET_TOKEN_VAR:-default} to give a default)",
        "  - logFormat: Input should be 'auto', 'json' or 'console'",
        "  - server.port: Input should be greater than or equal to 0",
    ]


def test_config_check_reports_missing_adapter_distribution(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First-party types that are surely not installed here, whatever else is: "zeta" is
    # configured (so it is missing), "omega" is not (so it is only available).
    monkeypatch.setitem(loading.KNOWN_ADAPTERS, "zeta", "netweave-zeta")
    monkeypatch.setitem(loading.KNOWN_ADAPTERS, "omega", "netweave-omega")
    cfg = write(
        tmp_path / "gw.yaml",
        "plugins:\n  dms:\n    - {name: zeta-east, type: zeta}\n"
        "    - {name: gone, type: not-installed-either, enabled: false}\n",
    )
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: adapter loading failed: adapter type 'zeta' (enabled instances: zeta-east) is "
        "not installed: pip install netweave-zeta",
        f"(configuration: {cfg})",
    ]


def test_config_check_embedded_defaults_without_helm(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module, "helm_installed", lambda: False)
    result = runner.invoke(main, ["config", "check", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "configuration OK (embedded defaults)" in result.stdout
    assert f"store: SQLite file {tmp_path / 'netweave.db'}" in result.stdout
    assert "pip install netweave-helm" in result.stdout


def test_adapters_json_reports_missing_and_available(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First-party types that are surely not installed here, whatever else is: "zeta" is
    # configured (so it is missing), "omega" is not (so it is only available).
    monkeypatch.setitem(loading.KNOWN_ADAPTERS, "zeta", "netweave-zeta")
    monkeypatch.setitem(loading.KNOWN_ADAPTERS, "omega", "netweave-omega")
    cfg = write(
        tmp_path / "gw.yaml",
        "plugins:\n  dms:\n    - {name: a1, type: acme}\n    - {name: z1, type: zeta, "
        "enabled: false}\n",
    )
    result = runner.invoke(main, ["adapters", "--json", "--config", str(cfg)])
    # An enabled instance whose adapter is not installed: the listing still prints, exit 2.
    assert result.exit_code == 2
    overview = json.loads(result.stdout)
    assert overview["group"] == "netweave.adapters"
    assert overview["configuration"] == str(cfg)
    missing = {m["type"]: m for m in overview["missing"]}
    assert missing["acme"]["instances"] == [{"name": "a1", "enabled": True}]
    assert "provides entry point 'acme'" in missing["acme"]["hint"]
    assert missing["zeta"] == {
        "type": "zeta",
        "instances": [{"name": "z1", "enabled": False}],
        "hint": "pip install netweave-zeta",
    }
    installed = {a["type"] for a in overview["installed"]}
    assert {
        "type": "omega",
        "distribution": "netweave-omega",
        "hint": "pip install netweave-omega",
    } in (overview["available"])
    assert set(overview["available"][0]) == {"type", "distribution", "hint"}
    for entry in overview["available"]:
        assert entry["type"] not in installed
        assert entry["hint"] == f"pip install {entry['distribution']}"
    listed = installed | set(missing) | {a["type"] for a in overview["available"]}
    assert set(loading.KNOWN_ADAPTERS) <= listed


def test_adapters_exit_0_when_nothing_enabled_is_missing(runner: CliRunner, tmp_path: Path) -> None:
    dms = "plugins:\n  dms:\n    - {name: a1, type: acme, enabled: false}\n"
    cfg = write(tmp_path / "gw.yaml", dms)
    result = runner.invoke(main, ["adapters", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "acme" in result.stdout and "NOT INSTALLED, instances: a1 (disabled)" in result.stdout


def test_adapters_text_with_invalid_configuration_still_lists(
    runner: CliRunner, tmp_path: Path
) -> None:
    cfg = write(tmp_path / "gw.yaml", "server: {port: banana}\n")
    result = runner.invoke(main, ["adapters", "--config", str(cfg)])
    assert result.exit_code == 2
    assert result.stdout.startswith("Adapters (entry-point group netweave.adapters):")
    assert "server.port: Input should be a valid integer" in result.stderr


def test_adapter_group_is_a_placeholder_without_commands(runner: CliRunner) -> None:
    result = runner.invoke(main, ["adapter", "--help"])
    assert result.exit_code == 0
    assert "Tools for adapter authors" in result.stdout


def test_serve_with_invalid_configuration_exits_2_before_listening(
    runner: CliRunner, tmp_path: Path
) -> None:
    cfg = write(tmp_path / "gw.yaml", "server: {port: 80000}\n")
    result = runner.invoke(main, ["serve", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "server.port: Input should be less than or equal to 65535" in result.stderr
    assert "listening" not in result.output


def test_serve_with_missing_adapter_exits_2_naming_the_distribution(
    runner: CliRunner, tmp_path: Path
) -> None:
    cfg = write(tmp_path / "gw.yaml", "plugins:\n  dms:\n    - {name: o, type: osm-x}\n")
    result = runner.invoke(main, ["serve", "--config", str(cfg), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "adapter type 'osm-x' (enabled instances: o) is not installed" in result.stderr
    assert "listening" not in result.output


def test_serve_rejects_bad_port_option(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "70000 is not in the range 0<=x<=65535" in result.stderr


def test_serve_with_unusable_data_dir_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    blocker = write(tmp_path / "a-file", "")
    cfg = write(tmp_path / "gw.yaml", "plugins: {dms: []}\n")
    result = runner.invoke(main, ["serve", "--config", str(cfg), "--data-dir", str(blocker / "x")])
    assert result.exit_code == 2
    assert f"cannot create the data directory {blocker / 'x'}" in result.stderr


def _adapters_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("  adapters:"))


def test_a_file_without_plugins_keeps_the_embedded_adapters(
    runner: CliRunner, tmp_path: Path
) -> None:
    # A file written for the store or the API only must not turn the default adapter off.
    embedded = runner.invoke(main, ["config", "check", "--data-dir", str(tmp_path)])
    assert embedded.exit_code == 0, embedded.output
    for text in ("api: {token: t-0123456789}\n", "plugins: {hooks: []}\n"):
        cfg = write(tmp_path / "gw.yaml", text)
        result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
        assert result.exit_code == 0, result.output
        assert _adapters_line(result.stdout) == _adapters_line(embedded.stdout), text
        if config_module.helm_installed():
            assert _adapters_line(result.stdout) == "  adapters: helm-local (helm, default)"


def test_config_check_says_what_turned_the_adapters_off(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "none.yaml", "plugins: {dms: []}\n")
    monkeypatch.setattr(config_module, "helm_installed", lambda: True)
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert _adapters_line(result.stdout) == (
        f"  adapters: none enabled (plugins.dms is empty in {cfg})"
    )
    assert "pip install" not in result.stdout
    off = write(
        tmp_path / "off.yaml", "plugins:\n  dms:\n    - {name: a, type: t, enabled: false}\n"
    )
    result = runner.invoke(main, ["config", "check", "--config", str(off)])
    assert result.exit_code == 0, result.output
    assert _adapters_line(result.stdout) == (
        "  adapters: none enabled (every instance in plugins.dms is disabled)"
    )
    monkeypatch.setattr(config_module, "helm_installed", lambda: False)
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert "pip install netweave-helm" in _adapters_line(result.stdout)


def _adapter_config(tmp_path: Path, entry: str) -> Path:
    return write(tmp_path / "gw.yaml", f"plugins:\n  dms:\n    - {entry}\n")


def test_config_check_suggests_the_installed_type_for_a_typo(
    runner: CliRunner, tmp_path: Path
) -> None:
    if "helm" not in {e.name for e in importlib.metadata.entry_points(group="netweave.adapters")}:
        pytest.skip("netweave-helm is part of the dev install; nothing to suggest without it")
    cfg = _adapter_config(tmp_path, "{name: edge, type: hlem}")
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "adapter type 'hlem' (enabled instances: edge) is not installed" in result.stderr
    assert result.stderr.splitlines()[0].endswith("; did you mean 'helm'?")
    far = runner.invoke(
        main,
        ["config", "check", "--config", str(_adapter_config(tmp_path, "{name: edge, type: quux}"))],
    )
    assert far.exit_code == 2 and "did you mean" not in far.stderr


def test_install_hint_names_the_checkout_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(loading.KNOWN_ADAPTERS, "zeta", "netweave-zeta")
    cfg = _adapter_config(tmp_path, "{name: z, type: zeta}")
    checkout = tmp_path / "checkout"
    for dist in ("netweave-core", "netweave-zeta"):
        write((checkout / dist).mkdir(parents=True) or checkout / dist / "pyproject.toml", "")
    # Beside the checkout netweave-core was installed (editable) from: its absolute path.
    monkeypatch.setattr(loading, "CORE_SOURCE", checkout / "netweave-core")
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert result.exit_code == 2
    assert f"not installed: pip install {checkout / 'netweave-zeta'}" in result.stderr
    # Run from the checkout's root (as the README's commands are): the relative path.
    monkeypatch.chdir(checkout)
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert "not installed: pip install ./netweave-zeta\n" in result.stderr
    # Neither: the distribution's name.
    (checkout / "netweave-zeta" / "pyproject.toml").unlink()
    result = runner.invoke(main, ["config", "check", "--config", str(cfg)])
    assert "not installed: pip install netweave-zeta\n" in result.stderr


def test_config_check_rejects_a_kubeconfig_that_does_not_exist(
    runner: CliRunner, tmp_path: Path
) -> None:
    pytest.importorskip("netweave_helm")
    missing = tmp_path / "nowhere" / "edge.kubeconfig"
    cfg = _adapter_config(
        tmp_path, f"{{name: edge, type: helm, config: {{cluster: {{kubeconfig: '{missing}'}}}}}}"
    )
    result = runner.invoke(
        main, ["config", "check", "--config", str(cfg), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: adapter instance 'edge': cluster.kubeconfig {missing} does not exist"
    )
    missing.parent.mkdir()
    write(missing, "apiVersion: v1\nkind: Config\n")
    result = runner.invoke(
        main, ["config", "check", "--config", str(cfg), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output


def test_config_check_reports_a_generated_token(runner: CliRunner, tmp_path: Path) -> None:
    import asyncio

    from netweave.api.auth import bootstrap_token
    from netweave.config import load_settings
    from netweave.store.sql import create_store

    before = runner.invoke(main, ["config", "check", "--data-dir", str(tmp_path)])
    assert "API token: not set (generated at first start)" in before.stdout

    async def first_start() -> None:
        store = create_store(load_settings(None, data_dir=tmp_path).store_url())
        try:
            await store.migrate()
            assert await bootstrap_token(store, None) is not None
        finally:
            await store.close()

    asyncio.run(first_start())
    after = runner.invoke(main, ["config", "check", "--data-dir", str(tmp_path)])
    assert after.exit_code == 0, after.output
    assert (
        f"API token: not configured; 1 stored (generated at first start or added), in "
        f"{tmp_path / 'netweave.db'}" in after.stdout
    )
    assert "not set" not in after.stdout


def test_serve_help_documents_the_default_data_directory(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--help"], terminal_width=200)
    assert "Default: ./.netweave in the current directory" in " ".join(result.stdout.split())
