"""load_settings: the file, ${VAR} interpolation, environment overrides, readable errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from netweave import config as config_module
from netweave.config import ConfigError, Settings, load_settings
from netweave.logging import redact_text

SECRET = "s3cr3t-value-that-must-not-print"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_file_is_read_in_either_key_spelling(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        """
server: {host: 127.0.0.1, port: 9001}
logFormat: json
api: {maxUploadBytes: 2048}
plugins:
  dms:
    - {name: east, type: fake, default: true, config: {url: "http://east"}}
    - {name: west, type: fake, enabled: false}
""",
    )
    settings = load_settings(cfg, env={})
    assert settings.server.port == 9001
    assert settings.log_format == "json"
    assert settings.api.max_upload_bytes == 2048
    assert [d.name for d in settings.plugins.dms] == ["east", "west"]
    assert [d.name for d in settings.enabled_instances()] == ["east"]
    assert settings.plugins.dms[0].config == {"url": "http://east"}
    assert settings.source == str(cfg)


def test_config_path_from_environment_then_data_dir(tmp_path: Path) -> None:
    via_env = write(tmp_path / "env.yaml", "server: {port: 9100}\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write(data_dir / "netweave.yaml", "server: {port: 9200}\n")

    assert load_settings(env={"NETWEAVE_CONFIG": str(via_env)}).server.port == 9100
    from_dir = load_settings(env={"NETWEAVE_DATA_DIR": str(data_dir)})
    assert from_dir.server.port == 9200
    assert from_dir.data_dir == data_dir.absolute()
    # The argument wins over both.
    assert load_settings(data_dir=data_dir, env={"NETWEAVE_CONFIG": str(via_env)}).server.port == (
        9100
    )


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_relative_data_dir_in_file_is_relative_to_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gw.yaml", "data_dir: state\n")
    assert load_settings(cfg, env={}).data_dir == tmp_path / "state"


def test_interpolation_with_defaults_and_escapes(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        """
api: {token: "${GW_TOKEN}"}
store: {url: "postgresql+asyncpg://app:${DB_PASSWORD}@127.0.0.1/${DB_NAME:-test}"}
plugins:
  dms:
    - name: argo
      type: argocd
      config: {server: "${ARGO_URL:-https://argo.example}", note: "costs $$5"}
""",
    )
    settings = load_settings(cfg, env={"GW_TOKEN": SECRET, "DB_PASSWORD": "pw-123456"})
    assert settings.api.token is not None
    assert settings.api.token.get_secret_value() == SECRET
    assert settings.store_url() == "postgresql+asyncpg://app:pw-123456@127.0.0.1/test"
    assert settings.plugins.dms[0].config == {"server": "https://argo.example", "note": "costs $5"}
    # Interpolated secrets never print: not in repr, and registered for log redaction.
    assert SECRET not in repr(settings)
    assert "pw-123456" not in repr(settings)
    assert redact_text(f"token is {SECRET}") == "token is [REDACTED]"


def test_missing_variable_names_it_and_the_field(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        "plugins:\n  dms:\n    - {name: a, type: t, config: {token: '${NOT_SET_TOKEN}'}}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert info.value.errors == [
        "plugins.dms[0].config.token: environment variable NOT_SET_TOKEN is not set "
        "(write ${NOT_SET_TOKEN:-default} to give a default)"
    ]


def test_malformed_reference_is_reported(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gw.yaml", "server: {host: '${BROKEN'}\n")
    with pytest.raises(ConfigError, match=r"server\.host: malformed variable reference"):
        load_settings(cfg, env={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        "server: {host: 0.0.0.0, port: 1}\napi: {token: from-file}\nlogFormat: console\n",
    )
    settings = load_settings(
        cfg,
        env={
            "NETWEAVE_HOST": "127.0.0.1",
            "NETWEAVE_PORT": "8181",
            "NETWEAVE_API_TOKEN": SECRET,
            "NETWEAVE_STORE_URL": "sqlite:///x.db",
            "NETWEAVE_LOG_FORMAT": "json",
        },
    )
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8181)
    assert settings.api.token is not None and settings.api.token.get_secret_value() == SECRET
    assert settings.store_url() == "sqlite:///x.db"
    # camelCase in the file, snake_case from the environment: one value, the environment's.
    assert settings.log_format == "json"


def test_overrides_argument_wins(tmp_path: Path) -> None:
    settings = load_settings(
        env={"NETWEAVE_PORT": "8181"}, data_dir=tmp_path, overrides={"server": {"port": 7000}}
    )
    assert settings.server.port == 7000
    assert settings.data_dir == tmp_path


DMS = """
plugins:
  dms:
    - {name: one, type: fake}
    - {name: two, type: fake}
    - {name: three, type: other}
"""


def test_allow_list_keeps_only_named_instances(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gw.yaml", DMS)
    settings = load_settings(cfg, env={"NETWEAVE_ADAPTERS": "two, three"})
    assert [d.name for d in settings.enabled_instances()] == ["two", "three"]
    nothing = load_settings(cfg, env={"NETWEAVE_ADAPTERS": ""})
    assert nothing.enabled_instances() == []


def test_allow_list_naming_unknown_instance_is_an_error(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gw.yaml", DMS)
    with pytest.raises(ConfigError, match=r"NETWEAVE_ADAPTERS names instance\(s\) \['four'\]"):
        load_settings(cfg, env={"NETWEAVE_ADAPTERS": "one,four"})


def test_disabled_list(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = write(tmp_path / "gw.yaml", DMS)
    with caplog.at_level(logging.WARNING, logger="netweave.config"):
        settings = load_settings(cfg, env={"NETWEAVE_DISABLED_ADAPTERS": "one,ghost"})
    assert [d.name for d in settings.enabled_instances()] == ["two", "three"]
    assert "'ghost', which is not configured" in caplog.text


def test_errors_list_every_bad_field_without_values(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        f"""
server: {{port: 70000, extra: 1}}
api: {{token: 12}}
logFormat: fancy
store: {{url: ["{SECRET}"]}}
plugins:
  dms:
    - {{name: Bad_Name, type: fake}}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    error = info.value
    paths = sorted(line.split(":", 1)[0] for line in error.errors)
    assert paths == [
        "api.token",
        "logFormat",
        "plugins.dms[0].name",
        "server.extra",
        "server.port",
        "store.url",
    ]
    assert SECRET not in str(error)
    assert "Traceback" not in str(error)
    assert str(error).startswith(f"invalid configuration ({cfg}):")


def test_secret_from_environment_never_in_error_text(tmp_path: Path) -> None:
    # A secret interpolated into a field of the wrong type: the error names the field only.
    cfg = write(tmp_path / "gw.yaml", "server: {port: '${PORT_SECRET}'}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={"PORT_SECRET": SECRET})
    assert info.value.errors == [
        "server.port: Input should be a valid integer, unable to parse string as an integer"
    ]
    assert SECRET not in str(info.value)


def test_unique_names_and_single_default(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "gw.yaml",
        """
plugins:
  dms:
    - {name: a, type: fake, default: true}
    - {name: a, type: fake}
    - {name: b, type: fake, default: true}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    (line,) = info.value.errors
    assert "instance name 'a' is used by dms[0] and dms[1]" in line
    assert "at most one instance may be default: true" in line


def test_yaml_syntax_error_gives_position_not_content(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gw.yaml", f"api:\n  token: {SECRET}\n  - broken\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert "line 3" in str(info.value)
    assert SECRET not in str(info.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gw.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping, not list"):
        load_settings(cfg, env={})


@pytest.mark.parametrize("helm", [True, False])
def test_empty_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helm: bool
) -> None:
    monkeypatch.setattr(config_module, "helm_installed", lambda: helm)
    cfg = write(tmp_path / "gw.yaml", "")
    settings = load_settings(cfg, env={})
    assert [d.name for d in settings.plugins.dms] == (["helm-local"] if helm else [])
    assert settings.server == Settings().server


@pytest.mark.parametrize("helm", [True, False])
def test_embedded_default_depends_on_helm_being_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helm: bool
) -> None:
    monkeypatch.setattr(config_module, "helm_installed", lambda: helm)
    settings = load_settings(data_dir=tmp_path, env={})
    assert settings.source == "embedded defaults"
    assert settings.store_url() == f"sqlite:///{tmp_path / 'netweave.db'}"
    if helm:
        (instance,) = settings.plugins.dms
        assert (instance.name, instance.type, instance.default) == ("helm-local", "helm", True)
        assert instance.config == {"storage": {"kind": "local"}}
    else:
        assert settings.plugins.dms == []


def test_a_file_without_plugins_dms_keeps_the_embedded_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file written for the server, the store or hooks only does not turn Helm off.
    monkeypatch.setattr(config_module, "helm_installed", lambda: True)
    for text in ("server: {port: 9300}\n", "plugins: {hooks: []}\n"):
        write(tmp_path / "netweave.yaml", text)
        settings = load_settings(data_dir=tmp_path, env={})
        assert [(d.name, d.type, d.default) for d in settings.plugins.dms] == [
            ("helm-local", "helm", True)
        ], text
        assert settings.source == str(tmp_path / "netweave.yaml")
    # Only an explicit empty list configures no instance.
    write(tmp_path / "netweave.yaml", "plugins: {dms: []}\n")
    assert load_settings(data_dir=tmp_path, env={}).plugins.dms == []


def test_data_dir_is_absolute_whatever_its_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).data_dir == tmp_path / ".netweave"
    assert load_settings(env={"NETWEAVE_DATA_DIR": "rel"}).data_dir == tmp_path / "rel"
    assert load_settings(env={}, overrides={"data_dir": "over"}).data_dir == tmp_path / "over"


def test_error_in_a_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            data_dir=tmp_path, env={"NETWEAVE_PORT": "eighty", "NETWEAVE_LOG_FORMAT": "xml"}
        )
    assert info.value.errors == [
        "log_format: Input should be 'auto', 'json' or 'console' (set by NETWEAVE_LOG_FORMAT)",
        "server.port: Input should be a valid integer, unable to parse string as an integer "
        "(set by NETWEAVE_PORT)",
    ]
