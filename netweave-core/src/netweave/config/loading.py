"""Adapter loading: configuration → entry points → validated, configured adapter instances.

stevedore's ``NamedExtensionManager`` finds the entry points of group ``netweave.adapters``
whose names are the *types* of the enabled instances (``plugins.dms[]`` with ``enabled``), and
imports only those (``invoke_on_load=False``: the loader builds instances itself so that a bad
``config:`` block becomes a configuration error naming the instance and the field). As in
Ironic's driver factory, a failure of an *enabled* adapter stops start-up:

* no entry point for a type → :class:`AdapterLoadError` naming the distribution to install
  (``KNOWN_ADAPTERS`` for first-party types; otherwise the entry point to look for);
* the entry point fails to import → the distribution and the import error;
* the class breaks the contract → what is wrong: not a ``DMSAdapter`` subclass, ``TYPE`` not the
  entry-point name, ``DISTRIBUTION`` not the distribution that ships the entry point, invalid
  ``AdapterInfo``, contract major version not core's (``netweave.CONTRACT_VERSION``);
* the instance's ``config:`` does not validate against the class's ``Config`` model.

All problems are collected, then reported together.

**The data directory, for adapters that keep files** (the Helm adapter's local chart repository):
every instance is constructed with ``data_dir=<gateway data dir>/adapters/<instance name>``, a
directory private to it (``DMSAdapter.data_dir``); the adapter creates it if it keeps files
there. **The fetch policy**: every instance is also given ``fetch=<the gateway's fetch settings>``
(``DMSAdapter.gateway_fetch``), which an adapter that fetches what clients name builds its
``netweave.fetching.FetchPolicy`` from. Nothing is written into an adapter's configuration.
An adapter whose ``__init__`` predates these keywords (it takes neither, nor ``**kwargs``) is
constructed without them, as contract 1.0 did, so a third party's adapter keeps loading.

**Hooks**: an adapter class may carry an attribute ``hooks`` — a module, an object, or a class
(instantiated without arguments) with ``@netweave.hookimpl`` functions; it is registered once
per adapter type with the plugin manager under the type's name.

Tests inject a manager built with ``NamedExtensionManager.make_test_instance`` (see
:func:`make_extension`) instead of scanning entry points.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pluggy
from pydantic import ValidationError
from stevedore.extension import Extension, ExtensionManager
from stevedore.named import NamedExtensionManager

from netweave.__about__ import CONTRACT_VERSION
from netweave.adapters import AdapterConfig, DMSAdapter
from netweave.config import ADAPTER_GROUP, AdapterInstanceSettings, validation_messages
from netweave.config.plugins import PluginRegistrationError, register_plugin
from netweave.config.registry import AdapterRegistry
from netweave.logging import redact_text

if TYPE_CHECKING:
    from netweave.config import Settings

_log = logging.getLogger("netweave.config.loading")

#: First-party adapter types and the distribution that provides each.
KNOWN_ADAPTERS: dict[str, str] = {
    "helm": "netweave-helm",
    "argocd": "netweave-argocd",
    "flux": "netweave-flux",
    "onap": "netweave-onap",
    "osm": "netweave-osm",
}


class AdapterLoadError(Exception):
    """Start-up cannot continue: an enabled adapter is missing, broken or misconfigured.

    ``errors`` holds one line per problem; the message lists them all.
    """

    def __init__(self, errors: Sequence[str]) -> None:
        # Import errors and adapter constructors may quote configured values.
        self.errors = [redact_text(e) for e in errors]
        if len(self.errors) == 1:
            message = f"adapter loading failed: {self.errors[0]}"
        else:
            message = "adapter loading failed:\n" + "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(message)


#: ``<checkout>/netweave-core`` when netweave-core is installed editable from a checkout.
CORE_SOURCE = Path(__file__).resolve().parents[2]


def _checkout_source(distribution: str) -> str | None:
    """Where ``distribution``'s source sits in a checkout of this repository, as pip takes it:
    beside the current directory (``./netweave-argocd``), else beside the checkout netweave-core
    was installed from (editable installs); ``None`` outside a checkout."""
    local = Path.cwd() / distribution
    if (local / "pyproject.toml").is_file():
        return f"./{distribution}"
    beside = CORE_SOURCE.parent / distribution
    if (CORE_SOURCE / "pyproject.toml").is_file() and (beside / "pyproject.toml").is_file():
        return str(beside)
    return None


def install_hint(adapter_type: str) -> str:
    distribution = KNOWN_ADAPTERS.get(adapter_type)
    if distribution is not None:
        return f"pip install {_checkout_source(distribution) or distribution}"
    return (
        f"pip install the distribution that provides entry point {adapter_type!r} "
        f"in group {ADAPTER_GROUP!r}"
    )


def did_you_mean(adapter_type: str) -> str:
    """``; did you mean 'helm'?`` for a type close to an installed or first-party one."""
    known = {ep.name for ep in importlib.metadata.entry_points(group=ADAPTER_GROUP)}
    known.update(KNOWN_ADAPTERS)
    known.discard(adapter_type)
    close = difflib.get_close_matches(adapter_type, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_of(
    entry_point: importlib.metadata.EntryPoint,
) -> importlib.metadata.Distribution | None:
    """The installed distribution that declares ``entry_point``.

    stevedore's cached entry points carry no ``dist``; look it up among the installed ones.
    """
    dist = getattr(entry_point, "dist", None)
    if dist is not None:
        return dist  # type: ignore[no-any-return]
    for candidate in importlib.metadata.entry_points(
        group=entry_point.group or ADAPTER_GROUP, name=entry_point.name
    ):
        if candidate.value == entry_point.value and candidate.dist is not None:
            return candidate.dist
    return None


def _dist_label(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = distribution_of(entry_point)
    if dist is None:
        return "an unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


def _major(version: str) -> str:
    return version.split(".", 1)[0].strip()


@dataclass
class _Collector:
    """Load-failure and missing-name callbacks (Ironic style), collecting instead of raising
    at the first problem so one start-up attempt reports everything."""

    errors: list[str]
    failed: set[str]

    def on_load_failure(
        self,
        manager: ExtensionManager[Any],
        entry_point: importlib.metadata.EntryPoint,
        exc: BaseException,
    ) -> None:
        self.failed.add(entry_point.name)
        self.errors.append(
            f"adapter type {entry_point.name!r} ({entry_point.value}, from "
            f"{_dist_label(entry_point)}) failed to import: {type(exc).__name__}: {exc}; "
            "reinstall or fix that distribution"
        )

    def on_missing(self, names: Any) -> None:
        # Reported after loading from the manager's names, so test instances get it too.
        return None


@dataclass(frozen=True)
class _TestDistribution:
    """The two things the loader reads from a distribution, for test extensions."""

    name: str
    version: str = "0+test"

    @property
    def metadata(self) -> dict[str, str]:
        return {"Name": self.name}


@dataclass(frozen=True)
class _TestEntryPoint:
    """An entry point as the loader reads it (name, value, group, dist), for test extensions."""

    name: str
    value: str
    group: str
    dist: _TestDistribution | None


def make_extension(
    plugin: Any, name: str | None = None, distribution: str | None = None
) -> Extension[Any]:
    """An ``Extension`` for ``NamedExtensionManager.make_test_instance``: the entry point is
    synthesised (``name = module:qualname``), shipped by ``distribution`` when given."""
    ep_name = name if name is not None else str(getattr(plugin, "TYPE", plugin.__name__))
    entry_point = _TestEntryPoint(
        name=ep_name,
        value=f"{plugin.__module__}:{plugin.__qualname__}",
        group=ADAPTER_GROUP,
        dist=_TestDistribution(distribution) if distribution is not None else None,
    )
    return Extension(ep_name, cast("importlib.metadata.EntryPoint", entry_point), plugin, None)


def build_manager(types: Sequence[str], collector: _Collector) -> NamedExtensionManager[Any]:
    return NamedExtensionManager(
        ADAPTER_GROUP,
        names=list(types),
        invoke_on_load=False,
        name_order=True,
        propagate_map_exceptions=True,
        on_load_failure_callback=collector.on_load_failure,
        on_missing_entrypoints_callback=collector.on_missing,
    )


def _validate_class(ext: Extension[Any]) -> list[str]:
    plugin = ext.plugin
    where = f"adapter type {ext.name!r} ({ext.entry_point.value})"
    if not (isinstance(plugin, type) and issubclass(plugin, DMSAdapter)):
        return [f"{where} is not a subclass of netweave.adapters.DMSAdapter"]
    problems = []
    declared_type = getattr(plugin, "TYPE", None)
    if declared_type != ext.name:
        problems.append(
            f"{where}: class TYPE {declared_type!r} differs from the entry-point name {ext.name!r}"
        )
    dist = distribution_of(ext.entry_point)
    declared_dist = getattr(plugin, "DISTRIBUTION", None)
    if not isinstance(declared_dist, str):
        problems.append(f"{where}: class attribute DISTRIBUTION is not set")
    elif dist is not None and _canonical(declared_dist) != _canonical(dist.metadata["Name"]):
        problems.append(
            f"{where}: class DISTRIBUTION {declared_dist!r} differs from the distribution "
            f"that ships the entry point ({dist.metadata['Name']!r})"
        )
    if problems:
        return problems
    try:
        info = plugin.info()
    except ValidationError as exc:
        return [f"{where}: invalid AdapterInfo: {m}" for m in validation_messages(exc)]
    except Exception as exc:
        return [f"{where}: AdapterInfo could not be built: {type(exc).__name__}: {exc}"]
    if _major(info.contract_version) != _major(CONTRACT_VERSION):
        problems.append(
            f"{where}: written for adapter contract {info.contract_version}, this netweave-core "
            f"implements {CONTRACT_VERSION} (major versions must match); install a matching "
            f"{declared_dist} or netweave-core"
        )
    config_model = getattr(plugin, "Config", None)
    if not (isinstance(config_model, type) and issubclass(config_model, AdapterConfig)):
        problems.append(f"{where}: Config must be a subclass of netweave.adapters.AdapterConfig")
    return problems


def instance_data_dir(settings: Settings, instance: AdapterInstanceSettings) -> Path:
    return settings.data_dir / "adapters" / instance.name


def construct(cls: type[DMSAdapter], name: str, config: AdapterConfig, **given: Any) -> DMSAdapter:
    """``cls(name, config, **given)``, passing only the keywords its ``__init__`` accepts: what
    core gives every instance (``data_dir``, ``fetch``) grew after contract 1.0, and an adapter
    written then (an ``__init__`` of its own without them) must still load."""
    parameters = inspect.signature(cls).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        names = {p.name for p in parameters}
        given = {key: value for key, value in given.items() if key in names}
    return cls(name, config, **given)


def build_config(
    cls: type[DMSAdapter], settings: Settings, instance: AdapterInstanceSettings, index: int
) -> tuple[AdapterConfig | None, list[str]]:
    """Validate one instance's ``config:`` with the class's ``Config``; returns the config or
    the error lines."""
    try:
        return cls.Config.model_validate(dict(instance.config)), []
    except ValidationError as exc:
        prefix = f"plugins.dms[{index}] ({instance.name}).config"
        return None, validation_messages(exc, prefix)


@dataclass(frozen=True)
class LoadedAdapters:
    """What :func:`resolve_adapters` found: the class per type and each instance's config."""

    classes: dict[str, type[DMSAdapter]]
    configs: dict[str, tuple[AdapterInstanceSettings, AdapterConfig]]


def resolve_adapters(
    settings: Settings, *, manager: ExtensionManager[Any] | None = None
) -> LoadedAdapters:
    """Everything :func:`load_adapters` checks, without constructing adapters or creating
    directories (``netweave config check`` uses it). Raises :class:`AdapterLoadError`."""
    enabled = [(i, d) for i, d in enumerate(settings.plugins.dms) if d.enabled]
    types = list(dict.fromkeys(d.type for _, d in enabled))
    collector = _Collector(errors=[], failed=set())
    if not types:
        return LoadedAdapters(classes={}, configs={})
    if manager is None:
        manager = build_manager(types, collector)

    found = {ext.name: ext for ext in manager.extensions}
    for adapter_type in types:
        if adapter_type not in found and adapter_type not in collector.failed:
            users = [d.name for _, d in enabled if d.type == adapter_type]
            collector.errors.append(
                f"adapter type {adapter_type!r} (enabled instances: {', '.join(users)}) is not "
                f"installed: {install_hint(adapter_type)}{did_you_mean(adapter_type)}"
            )
    classes: dict[str, type[DMSAdapter]] = {}
    for adapter_type in types:
        ext = found.get(adapter_type)
        if ext is None:
            continue
        problems = _validate_class(ext)
        if problems:
            collector.errors.extend(problems)
        else:
            classes[adapter_type] = ext.plugin

    configs: dict[str, tuple[AdapterInstanceSettings, AdapterConfig]] = {}
    for index, instance in enabled:
        cls = classes.get(instance.type)
        if cls is None:
            continue
        config, problems = build_config(cls, settings, instance, index)
        if config is None:
            collector.errors.extend(problems)
        else:
            configs[instance.name] = (instance, config)
    if collector.errors:
        raise AdapterLoadError(collector.errors)
    return LoadedAdapters(classes=classes, configs=configs)


def _hooks_object(cls: type[DMSAdapter]) -> object | None:
    hooks: object | None = getattr(cls, "hooks", None)
    if hooks is None:
        return None
    if isinstance(hooks, type):
        instance: object = hooks()
        return instance
    return hooks


def register_adapter_hooks(
    pm: pluggy.PluginManager, classes: Iterable[type[DMSAdapter]]
) -> list[str]:
    """Register each adapter class's ``hooks`` object once, under its type; return problems
    (one line each) instead of raising, so start-up can report them all together."""
    errors: list[str] = []
    for cls in classes:
        hooks = _hooks_object(cls)
        if hooks is None or pm.has_plugin(cls.TYPE):
            continue
        try:
            register_plugin(pm, hooks, cls.TYPE)
        except PluginRegistrationError as exc:
            errors.append(f"adapter type {cls.TYPE!r}: {exc}")
    return errors


def load_adapters(
    settings: Settings,
    pm: pluggy.PluginManager | None = None,
    *,
    manager: ExtensionManager[Any] | None = None,
) -> AdapterRegistry:
    """Load, validate and construct every enabled adapter instance; register adapter hooks
    with ``pm``. Raises :class:`AdapterLoadError` (start-up must stop)."""
    if not settings.enabled_instances():
        _log.warning(
            "no adapter instance is enabled; packages and deployments cannot be handled. "
            "The embedded default uses the Helm adapter: pip install netweave-helm "
            "(or configure plugins.dms in the configuration file)"
        )
        return AdapterRegistry({})
    loaded = resolve_adapters(settings, manager=manager)

    errors: list[str] = []
    if pm is not None:
        errors.extend(register_adapter_hooks(pm, loaded.classes.values()))

    instances: dict[str, DMSAdapter] = {}
    default: str | None = None
    for name, (instance, config) in loaded.configs.items():
        cls = loaded.classes[instance.type]
        try:
            instances[name] = construct(
                cls,
                name,
                config,
                data_dir=instance_data_dir(settings, instance),
                fetch=settings.fetch,
            )
        except Exception as exc:
            errors.append(
                f"adapter instance {name!r} (type {instance.type}) could not be created: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        if instance.default:
            default = name
    if errors:
        raise AdapterLoadError(errors)
    for name, adapter in instances.items():
        _log.info(
            "adapter instance %s loaded (type %s, %s)", name, adapter.TYPE, adapter.info().version
        )
    return AdapterRegistry(instances, default=default)


__all__ = [
    "KNOWN_ADAPTERS",
    "AdapterLoadError",
    "LoadedAdapters",
    "build_config",
    "build_manager",
    "construct",
    "distribution_of",
    "install_hint",
    "instance_data_dir",
    "load_adapters",
    "make_extension",
    "register_adapter_hooks",
    "resolve_adapters",
]
