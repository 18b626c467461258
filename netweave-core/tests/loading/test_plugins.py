"""make_plugin_manager and the registration rules pluggy itself does not enforce."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from netweave import hookimpl
from netweave.config import load_settings
from netweave.config.plugins import (
    PluginRegistrationError,
    check_pending,
    make_plugin_manager,
    register_plugin,
)


@pytest.fixture
def hook_module() -> Iterator[types.ModuleType]:
    """An importable module carrying hook implementations, named in ``plugins.hooks``."""
    module = types.ModuleType("netweave_test_hookmod")
    calls: list[str] = []

    @hookimpl
    def netweave_configure(settings: Any) -> None:
        calls.append(f"configure:{settings.server.port}")

    @hookimpl
    def netweave_select_adapter(
        kind: str, payload: dict[str, Any], candidates: list[str]
    ) -> str | None:
        return candidates[-1]

    module.netweave_configure = netweave_configure  # type: ignore[attr-defined]
    module.netweave_select_adapter = netweave_select_adapter  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_configured_hook_module_is_registered_and_configured(
    tmp_path: Path, hook_module: types.ModuleType
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        env={},
        overrides={"plugins": {"hooks": [hook_module.__name__]}, "server": {"port": 8123}},
    )
    pm = make_plugin_manager(settings)
    assert pm.has_plugin(hook_module.__name__)
    assert hook_module.calls == ["configure:8123"]
    assert pm.hook.netweave_select_adapter(kind="package", payload={}, candidates=["a", "b"]) == "b"


def test_unimportable_hook_module_names_it(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, env={}, overrides={"plugins": {"hooks": ["no_such_module_xyz"]}}
    )
    with pytest.raises(PluginRegistrationError, match=r"'no_such_module_xyz'.*cannot be imported"):
        make_plugin_manager(settings)


class AsyncFirstResult:
    @hookimpl
    async def netweave_select_adapter(
        self, kind: str, payload: dict[str, Any], candidates: list[str]
    ) -> str | None:
        return None


class AsyncWrapper:
    @hookimpl(wrapper=True)
    async def netweave_validate_deployment(self, request: Any, adapter: str) -> Any:
        return None


class AsyncValidation:
    @hookimpl
    async def netweave_validate_package(self, upload: Any, adapter: str) -> None:
        return None


class AsyncEvent:
    @hookimpl
    async def netweave_deployment_event(self, event_type: str, deployment: dict[str, Any]) -> Any:
        return None


class SyncWrapper:
    @hookimpl(wrapper=True)
    def netweave_validate_deployment(self, request: Any, adapter: str) -> Generator[None, Any, Any]:
        return (yield)


class Typo:
    @hookimpl
    def netweave_configur(self, settings: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (AsyncFirstResult, "netweave_select_adapter is firstresult: an async implementation"),
        # pluggy refuses this one itself (not a generator); the message still names the plugin.
        (AsyncWrapper, "netweave_validate_deployment.*not a generator function"),
        (AsyncValidation, "netweave_validate_package is synchronous"),
    ],
)
def test_async_impls_of_sync_hooks_are_refused(plugin: type, message: str) -> None:
    pm = make_plugin_manager()
    with pytest.raises(PluginRegistrationError, match=f"(?s)hook plugin 'bad'.*{message}"):
        register_plugin(pm, plugin(), "bad")
    assert not pm.has_plugin("bad")


def test_async_firstresult_would_otherwise_silently_win() -> None:
    # Why the rule exists: pluggy itself accepts it and the coroutine "wins" un-awaited.
    pm = make_plugin_manager()

    class SyncAnswer:
        @hookimpl
        def netweave_select_adapter(
            self, kind: str, payload: dict[str, Any], candidates: list[str]
        ) -> str | None:
            return "sync-answer"

    pm.register(SyncAnswer(), name="sync")
    pm.register(AsyncFirstResult(), name="async")
    result = pm.hook.netweave_select_adapter(kind="package", payload={}, candidates=[])
    assert result != "sync-answer"
    result.close()  # the un-awaited coroutine


def test_async_event_hook_and_sync_wrapper_are_accepted() -> None:
    pm = make_plugin_manager()
    register_plugin(pm, AsyncEvent(), "events")
    register_plugin(pm, SyncWrapper(), "wrapper")
    assert pm.has_plugin("events") and pm.has_plugin("wrapper")


def test_unknown_hook_name_is_refused_naming_the_plugin() -> None:
    pm = make_plugin_manager()
    with pytest.raises(PluginRegistrationError, match=r"hook plugin 'typo'.*netweave_configur"):
        register_plugin(pm, Typo(), "typo")
    assert not pm.has_plugin("typo")
    check_pending(pm)  # nothing left behind


def test_check_pending_names_a_plugin_registered_behind_our_back() -> None:
    pm = make_plugin_manager()
    pm.register(Typo(), name="sneaky")
    with pytest.raises(PluginRegistrationError, match="hook plugin 'sneaky'"):
        check_pending(pm)


def test_duplicate_name_is_refused() -> None:
    pm = make_plugin_manager()
    register_plugin(pm, AsyncEvent(), "dup")
    with pytest.raises(PluginRegistrationError, match="hook plugin 'dup'"):
        register_plugin(pm, AsyncEvent(), "dup")


def test_trace_env_logs_hook_calls_without_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = {"api": {"token": "tok-12345678"}}
    settings = load_settings(data_dir=tmp_path, env={}, overrides=token)
    with caplog.at_level(logging.INFO, logger="netweave.config.plugins"):
        pm = make_plugin_manager(settings, env={"NETWEAVE_TRACE_HOOKS": "1"})
        pm.hook.netweave_select_adapter(kind="package", payload={"x": 1}, candidates=[])
    assert "hook call netweave_select_adapter(kind, payload, candidates)" in caplog.text
    assert "hook done netweave_select_adapter" in caplog.text
    assert "tok-12345678" not in caplog.text


def test_no_tracing_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="netweave.config.plugins"):
        pm = make_plugin_manager(env={})
        pm.hook.netweave_select_adapter(kind="package", payload={}, candidates=[])
    assert "hook call" not in caplog.text


def test_project_name_and_specs() -> None:
    pm = make_plugin_manager()
    assert pm.project_name == "netweave"
    assert isinstance(pm, pluggy.PluginManager)
    assert pm.hook.netweave_configure.spec is not None
