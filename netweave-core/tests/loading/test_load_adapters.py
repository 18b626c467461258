"""load_adapters with stevedore test managers: validation, configs, hooks, several instances."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest
from netweave import CONTRACT_VERSION, hookimpl
from netweave.adapters import AdapterConfig, Capability, DMSAdapter
from netweave.config import Settings, load_settings, loading
from netweave.config.loading import (
    KNOWN_ADAPTERS,
    AdapterLoadError,
    build_manager,
    load_adapters,
    make_extension,
    resolve_adapters,
)
from netweave.config.plugins import make_plugin_manager
from pydantic import Field, SecretStr
from stevedore.named import NamedExtensionManager


@pytest.fixture(autouse=True)
def outside_a_checkout(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Install hints name a checkout's directory when netweave-core was installed from one (as
    # here): these tests pin the installed-from-an-index case (tests/cli covers the checkout).
    monkeypatch.setattr(loading, "CORE_SOURCE", tmp_path_factory.mktemp("site") / "netweave-core")


class FakeConfig(AdapterConfig):
    url: str = "http://127.0.0.1:1"
    replicas: int = Field(default=1, ge=0)
    token: SecretStr | None = None


class FakeAdapter(DMSAdapter):
    TYPE = "fake"
    DISTRIBUTION = "netweave-fake"
    CAPABILITIES = frozenset({Capability.PACKAGE_MANAGEMENT})
    Config = FakeConfig


class StoringConfig(AdapterConfig):
    #: An adapter may still let the configuration name a directory of its own choosing.
    data_dir: Path | None = None


class StoringAdapter(DMSAdapter[StoringConfig]):
    TYPE = "storing"
    DISTRIBUTION = "netweave-storing"


class Seen:
    """Hooks object of HookedAdapter: records what it is called with."""

    configured: ClassVar[list[Any]] = []

    @hookimpl
    def netweave_configure(self, settings: Any) -> None:
        Seen.configured.append(settings)


class HookedAdapter(DMSAdapter):
    TYPE = "hooked"
    DISTRIBUTION = "netweave-hooked"
    hooks = Seen


def settings_with(tmp_path: Path, *dms: dict[str, Any]) -> Settings:
    return load_settings(data_dir=tmp_path, env={}, overrides={"plugins": {"dms": list(dms)}})


def manager(*classes: type[Any]) -> NamedExtensionManager[Any]:
    return NamedExtensionManager.make_test_instance(
        [make_extension(c, distribution=getattr(c, "DISTRIBUTION", None)) for c in classes]
    )


def test_several_instances_of_one_type_with_their_own_config(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {"name": "east", "type": "fake", "config": {"url": "http://127.0.0.1:2"}},
        {"name": "west", "type": "fake", "default": True, "config": {"replicas": 3}},
    )
    registry = load_adapters(settings, make_plugin_manager(settings), manager=manager(FakeAdapter))
    assert list(registry) == ["east", "west"]
    east, west = registry.adapters["east"], registry.adapters["west"]
    assert isinstance(east, FakeAdapter) and isinstance(west, FakeAdapter)
    assert east is not west
    assert isinstance(east.config, FakeConfig) and east.config.url == "http://127.0.0.1:2"
    assert isinstance(west.config, FakeConfig) and west.config.replicas == 3
    assert registry.default_name == "west"


def test_single_instance_is_default_and_none_marked_means_no_default(tmp_path: Path) -> None:
    one = settings_with(tmp_path, {"name": "only", "type": "fake"})
    assert load_adapters(one, manager=manager(FakeAdapter)).default_name == "only"
    two = settings_with(tmp_path, {"name": "a", "type": "fake"}, {"name": "b", "type": "fake"})
    assert load_adapters(two, manager=manager(FakeAdapter)).default_name is None


def test_disabled_instances_are_not_loaded_even_if_their_type_is_missing(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {"name": "a", "type": "fake"},
        {"name": "off", "type": "argocd", "enabled": False, "default": True},
    )
    registry = load_adapters(settings, manager=manager(FakeAdapter))
    assert list(registry) == ["a"]
    assert registry.default_name == "a"


@pytest.mark.parametrize(("adapter_type", "distribution"), sorted(KNOWN_ADAPTERS.items()))
def test_missing_known_adapter_names_its_distribution(
    tmp_path: Path, adapter_type: str, distribution: str
) -> None:
    settings = settings_with(tmp_path, {"name": "x", "type": adapter_type})
    with pytest.raises(AdapterLoadError) as info:
        load_adapters(settings, manager=manager(FakeAdapter))
    assert info.value.errors == [
        f"adapter type {adapter_type!r} (enabled instances: x) is not installed: "
        f"pip install {distribution}"
    ]


def test_missing_unknown_adapter_names_the_entry_point(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, {"name": "x", "type": "acme"}, {"name": "y", "type": "acme"})
    with pytest.raises(AdapterLoadError, match="enabled instances: x, y") as info:
        load_adapters(settings, manager=manager(FakeAdapter))
    assert "pip install the distribution that provides entry point 'acme' in group " in str(
        info.value
    )
    assert "'netweave.adapters'" in str(info.value)


def test_real_manager_reports_missing_entry_point(tmp_path: Path) -> None:
    # No test instance: stevedore scans the installed entry points, none is called this.
    settings = settings_with(tmp_path, {"name": "x", "type": "no-such-adapter-type"})
    with pytest.raises(AdapterLoadError, match=r"'no-such-adapter-type'.*is not installed"):
        load_adapters(settings)


def test_import_failure_names_distribution_and_error(tmp_path: Path) -> None:
    from netweave.config.loading import _Collector

    collector = _Collector(errors=[], failed=set())
    ep = importlib.metadata.EntryPoint(
        name="broken", value="netweave_broken_adapter:Adapter", group="netweave.adapters"
    )
    mgr = build_manager(["broken"], collector)
    collector.on_load_failure(mgr, ep, ModuleNotFoundError("No module named 'kubernetes_x'"))
    (line,) = collector.errors
    assert line.startswith("adapter type 'broken' (netweave_broken_adapter:Adapter, from ")
    assert "failed to import: ModuleNotFoundError: No module named 'kubernetes_x'" in line


def test_type_mismatch_is_refused(tmp_path: Path) -> None:
    class Liar(FakeAdapter):
        TYPE = "something-else"

    settings = settings_with(tmp_path, {"name": "x", "type": "fake"})
    mgr = NamedExtensionManager.make_test_instance(
        [make_extension(Liar, name="fake", distribution="netweave-fake")]
    )
    with pytest.raises(AdapterLoadError, match="class TYPE 'something-else' differs from"):
        load_adapters(settings, manager=mgr)


def test_distribution_mismatch_is_refused(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, {"name": "x", "type": "fake"})
    mgr = NamedExtensionManager.make_test_instance(
        [make_extension(FakeAdapter, distribution="someone-elses-dist")]
    )
    with pytest.raises(AdapterLoadError, match="DISTRIBUTION 'netweave-fake' differs"):
        load_adapters(settings, manager=mgr)


def test_distribution_names_compare_canonically(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, {"name": "x", "type": "fake"})
    mgr = NamedExtensionManager.make_test_instance(
        [make_extension(FakeAdapter, distribution="Netweave_Fake")]
    )
    assert list(load_adapters(settings, manager=mgr)) == ["x"]


def test_not_an_adapter_class_is_refused(tmp_path: Path) -> None:
    class NotAnAdapter:
        TYPE = "fake"

    settings = settings_with(tmp_path, {"name": "x", "type": "fake"})
    mgr = NamedExtensionManager.make_test_instance([make_extension(NotAnAdapter)])
    with pytest.raises(AdapterLoadError, match=r"not a subclass of netweave\.adapters\.DMSAdapter"):
        load_adapters(settings, manager=mgr)


def test_other_contract_major_is_refused(tmp_path: Path) -> None:
    major = int(CONTRACT_VERSION.split(".")[0])

    class Future(FakeAdapter):
        CONTRACT_VERSION = f"{major + 1}.0"

    class SameMajor(FakeAdapter):
        CONTRACT_VERSION = f"{major}.99"

    settings = settings_with(tmp_path, {"name": "x", "type": "fake"})
    with pytest.raises(AdapterLoadError, match=rf"written for adapter contract {major + 1}\.0"):
        load_adapters(settings, manager=manager(Future))
    assert list(load_adapters(settings, manager=manager(SameMajor))) == ["x"]


def test_invalid_adapter_info_is_refused(tmp_path: Path) -> None:
    class BadCapabilities(FakeAdapter):
        CAPABILITIES = frozenset({"teleport"})  # type: ignore[arg-type]

    settings = settings_with(tmp_path, {"name": "x", "type": "fake"})
    with pytest.raises(AdapterLoadError, match=r"invalid AdapterInfo: capabilities\[0\]: Input"):
        load_adapters(settings, manager=manager(BadCapabilities))


def test_bad_instance_config_names_instance_and_field_without_value(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {"name": "good", "type": "fake"},
        {"name": "bad", "type": "fake", "config": {"replicas": -1, "nope": "s3cr3t-xyz"}},
    )
    with pytest.raises(AdapterLoadError) as info:
        load_adapters(settings, manager=manager(FakeAdapter))
    assert sorted(info.value.errors) == [
        "plugins.dms[1] (bad).config.nope: Extra inputs are not permitted",
        "plugins.dms[1] (bad).config.replicas: Input should be greater than or equal to 0",
    ]
    assert "s3cr3t-xyz" not in str(info.value)


def test_all_problems_reported_together(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {"name": "a", "type": "argocd"},
        {"name": "b", "type": "fake", "config": {"replicas": "many"}},
    )
    with pytest.raises(AdapterLoadError) as info:
        load_adapters(settings, manager=manager(FakeAdapter))
    assert len(info.value.errors) == 2
    assert "pip install netweave-argocd" in info.value.errors[0]
    assert info.value.errors[1].startswith("plugins.dms[1] (b).config.replicas:")


def test_each_instance_is_given_its_own_data_dir_and_its_config_is_untouched(
    tmp_path: Path,
) -> None:
    settings = settings_with(
        tmp_path,
        {"name": "s1", "type": "storing"},
        {"name": "s2", "type": "storing", "config": {"data_dir": str(tmp_path / "mine")}},
        {"name": "f", "type": "fake"},
    )
    loaded = resolve_adapters(settings, manager=manager(StoringAdapter, FakeAdapter))
    # Nothing is written into a configuration by field name.
    assert loaded.configs["s1"][1] == StoringConfig()
    registry = load_adapters(settings, manager=manager(StoringAdapter, FakeAdapter))
    s1, s2, f = registry.adapters["s1"], registry.adapters["s2"], registry.adapters["f"]
    assert s1.data_dir == tmp_path / "adapters" / "s1"
    assert s2.data_dir == tmp_path / "adapters" / "s2"
    assert f.data_dir == tmp_path / "adapters" / "f"
    assert isinstance(s1.config, StoringConfig) and s1.config.data_dir is None
    assert isinstance(s2.config, StoringConfig) and s2.config.data_dir == tmp_path / "mine"
    assert "data_dir" not in f.config.model_dump()
    # The loader creates no directory: an adapter that keeps files does.
    assert not (tmp_path / "adapters").exists()


def test_constructor_failure_names_instance(tmp_path: Path) -> None:
    class Exploding(FakeAdapter):
        def __init__(self, name: str, config: AdapterConfig, **kwargs: Any) -> None:
            raise RuntimeError("cannot parse kubeconfig")

    settings = settings_with(tmp_path, {"name": "boom", "type": "fake"})
    with pytest.raises(AdapterLoadError, match=r"'boom' \(type fake\) could not be created: Run"):
        load_adapters(settings, manager=manager(Exploding))


def test_adapter_hooks_registered_once_per_type_and_receive_configure(tmp_path: Path) -> None:
    Seen.configured.clear()
    settings = settings_with(
        tmp_path, {"name": "h1", "type": "hooked"}, {"name": "h2", "type": "hooked"}
    )
    pm = make_plugin_manager(settings)
    load_adapters(settings, pm, manager=manager(HookedAdapter))
    assert pm.has_plugin("hooked")
    # Historic: registered after the call, still configured exactly once with these settings.
    assert Seen.configured == [settings]


def test_async_firstresult_hook_of_an_adapter_stops_loading(tmp_path: Path) -> None:
    class AsyncHooks:
        @hookimpl
        async def netweave_select_adapter(
            self, kind: str, payload: dict[str, Any], candidates: list[str]
        ) -> str | None:
            return None

    class AsyncHooked(HookedAdapter):
        hooks = AsyncHooks  # type: ignore[assignment]

    settings = settings_with(tmp_path, {"name": "h", "type": "hooked"})
    pm = make_plugin_manager(settings)
    with pytest.raises(AdapterLoadError, match="netweave_select_adapter is firstresult"):
        load_adapters(settings, pm, manager=manager(AsyncHooked))
    assert not pm.has_plugin("hooked")


def test_no_enabled_instance_warns_with_install_hint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_with(tmp_path)
    with caplog.at_level("WARNING", logger="netweave.config.loading"):
        registry = load_adapters(settings)
    assert len(registry) == 0
    assert "pip install netweave-helm" in caplog.text
