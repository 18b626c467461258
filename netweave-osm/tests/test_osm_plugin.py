"""Discovery through the entry point, adapter metadata and configuration."""

from __future__ import annotations

import importlib.metadata

import pytest
from netweave.adapters import Capability
from netweave_osm import OsmAdapter, OsmConfig
from pydantic import ValidationError


def test_entry_point_names_the_adapter_class() -> None:
    found = [
        ep for ep in importlib.metadata.entry_points(group="netweave.adapters") if ep.name == "osm"
    ]
    assert len(found) == 1
    assert found[0].load() is OsmAdapter
    info = OsmAdapter.info()
    assert (info.type, info.distribution) == ("osm", "netweave-osm")
    assert info.version == importlib.metadata.version("netweave-osm")
    assert Capability.ROLLBACK in info.capabilities
    assert Capability.LOGS not in info.capabilities
    assert info.package_types == frozenset({"vnfd", "nsd"})


def test_config_in_yaml_form() -> None:
    config = OsmConfig.model_validate(
        {
            "nbiUrl": "https://osm.example.net:9999/",
            "username": "admin",
            "password": "s3cret",
            "project": "ran",
            "vimAccount": "edge-k8s",
            "pollingInterval": 5,
            "http": {"tls": {"verify": False}, "retries": 1},
            "timeouts": {"write": 1800},
        }
    )
    assert config.api_root() == "https://osm.example.net:9999/osm"
    assert config.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())
    assert config.http.tls.verify is False


@pytest.mark.parametrize(
    "bad",
    [
        {"nbiUrl": "osm.example.net"},
        {"nbiUrl": "ftp://osm"},
        {"pollingInterval": 0},
        {"unknownKey": 1},
        {"vimAccount": ""},
    ],
)
def test_config_rejects(bad: dict[str, object]) -> None:
    raw: dict[str, object] = {
        "nbiUrl": "https://osm:9999",
        "username": "u",
        "password": "p",
        "vimAccount": "v",
    }
    raw.update(bad)
    with pytest.raises(ValidationError):
        OsmConfig.model_validate(raw)
