"""The pluggy plugin manager: netweave's lifecycle and event hooks (``netweave.hookspecs``).

Who is registered:

* modules named in ``plugins.hooks`` of the configuration (imported by name);
* each loaded adapter class's ``hooks`` object, under the adapter type (by
  :func:`netweave.config.loading.load_adapters`, through :func:`register_plugin`).

Every registration goes through :func:`register_plugin`, which enforces what pluggy cannot:
an ``async def`` implementation of a ``firstresult`` hook returns an un-awaited coroutine that
silently "wins", so it is refused, as is an async implementation of any hook that is not an
event hook (the core awaits only event results). pluggy already refuses async wrappers.

``NETWEAVE_TRACE_HOOKS=1`` logs every hook call (hook name, implementing plugins, argument
names — never argument values, which may carry settings).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy
from pluggy import HookImpl, Result

from netweave import hookspecs

if TYPE_CHECKING:
    from netweave.config import Settings

_log = logging.getLogger("netweave.config.plugins")

TRACE_ENV = "NETWEAVE_TRACE_HOOKS"

#: Hooks whose implementations may be coroutine functions: the core awaits each result.
ASYNC_HOOKS: frozenset[str] = frozenset(
    {"netweave_package_event", "netweave_deployment_event", "netweave_operation_event"}
)


class PluginRegistrationError(Exception):
    """A hook plugin breaks the rules; start-up stops. The message names the plugin."""


def _plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin)
    return name if name is not None else repr(plugin)


def _violations(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    problems = []
    for caller in pm.get_hookcallers(plugin) or []:
        firstresult = caller.spec is not None and caller.spec.opts.get("firstresult", False)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            function = impl.function
            is_async = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
            if not is_async:
                continue
            # (pluggy itself refuses a wrapper that is not a plain generator function.)
            if firstresult:
                problems.append(
                    f"{caller.name} is firstresult: an async implementation would return an "
                    "un-awaited coroutine that wins; write it as a plain function"
                )
            elif caller.name not in ASYNC_HOOKS:
                problems.append(
                    f"{caller.name} is synchronous; only {sorted(ASYNC_HOOKS)} may be async"
                )
    return problems


def check_pending(pm: pluggy.PluginManager) -> None:
    """pluggy's ``check_pending`` with a message naming the plugin and the unknown hook."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginRegistrationError(
            f"hook plugin {_plugin_label(pm, exc.plugin)!r}: {exc}; hook names must match "
            "netweave.hookspecs (mark optional hooks with @hookimpl(optionalhook=True))"
        ) from None


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin`` under ``name``, refusing async implementations where they break,
    and unknown hook names; on refusal nothing stays registered."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginRegistrationError(f"hook plugin {name!r}: {exc}") from None
    except ValueError as exc:  # already registered under that name, or the same object
        raise PluginRegistrationError(f"hook plugin {name!r}: {exc}") from None
    problems = _violations(pm, plugin)
    if problems:
        pm.unregister(plugin)
        raise PluginRegistrationError(f"hook plugin {name!r} refused: " + "; ".join(problems))
    try:
        check_pending(pm)
    except PluginRegistrationError:
        pm.unregister(plugin)
        raise


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: Sequence[HookImpl], kwargs: Mapping[str, Any]) -> None:
        _log.info(
            "hook call %s(%s) -> %s",
            hook_name,
            ", ".join(kwargs),
            [impl.plugin_name for impl in impls],
        )

    def after(
        outcome: Result[Any], hook_name: str, impls: Sequence[HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        failed = outcome.exception is not None
        _log.info("hook done %s%s", hook_name, " (raised)" if failed else "")

    pm.add_hookcall_monitoring(before, after)


def make_plugin_manager(
    settings: Settings | None = None, *, env: Mapping[str, str] | None = None
) -> pluggy.PluginManager:
    """A plugin manager with netweave's hookspecs, the configured hook modules registered and
    ``netweave_configure`` called (historic: plugins registered later receive it too)."""
    env = os.environ if env is None else env
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if env.get(TRACE_ENV) == "1":
        _trace(pm)
    if settings is not None:
        for module_name in settings.plugins.hooks:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginRegistrationError(
                    f"hook plugin {module_name!r} (plugins.hooks) cannot be imported: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            register_plugin(pm, module, module_name)
        pm.hook.netweave_configure.call_historic(kwargs={"settings": settings})
    return pm


__all__ = [
    "ASYNC_HOOKS",
    "TRACE_ENV",
    "PluginRegistrationError",
    "check_pending",
    "make_plugin_manager",
    "register_plugin",
]
