from __future__ import annotations

import pytest
from netweave.adapters import Capability
from netweave.config.registry import AdapterRegistry
from netweave.errors import BackendUnavailable, InvalidInput, Unsupported

from .test_adapter_template import Probe


def test_single_adapter_is_the_default() -> None:
    registry = AdapterRegistry({"a": Probe("a")})
    assert registry.default_name == "a"
    assert registry.choose(None).name == "a"


def test_several_adapters_need_a_name_or_a_default() -> None:
    registry = AdapterRegistry({"a": Probe("a"), "b": Probe("b")})
    with pytest.raises(InvalidInput, match="no default"):
        registry.choose(None)
    assert AdapterRegistry({"a": Probe("a"), "b": Probe("b")}, default="b").choose(None).name == "b"


def test_unknown_name_is_a_client_error_listing_the_configured_ones() -> None:
    registry = AdapterRegistry({"a": Probe("a")})
    with pytest.raises(InvalidInput, match=r"unknown adapter 'zzz'.*\['a'\]"):
        registry.choose("zzz")


def test_capability_is_checked_on_choice() -> None:
    registry = AdapterRegistry({"a": Probe("a")})
    with pytest.raises(Unsupported):
        registry.choose("a", Capability.SCALING)


def test_owner_missing_from_configuration_is_unavailable_not_client_error() -> None:
    registry = AdapterRegistry({"a": Probe("a")})
    with pytest.raises(BackendUnavailable):
        registry.owner("gone")


def test_default_must_exist() -> None:
    with pytest.raises(ValueError, match="default adapter"):
        AdapterRegistry({"a": Probe("a")}, default="b")
