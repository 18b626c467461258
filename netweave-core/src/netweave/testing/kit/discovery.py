"""Discovery through the real ``netweave.adapters`` entry point, as the gateway loads it."""

from __future__ import annotations

import importlib.metadata

import pytest
from packaging.utils import canonicalize_name

from netweave.__about__ import CONTRACT_VERSION
from netweave.adapters import AdapterInfo, DMSAdapter
from netweave.testing.kit.base import AdapterFixtures

ENTRY_POINT_GROUP = "netweave.adapters"


class DiscoveryTests(AdapterFixtures):
    def test_entry_point_discovery(self, adapter: DMSAdapter) -> None:
        cls = type(adapter)
        found = [
            ep
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            if ep.name == cls.TYPE
        ]
        assert found, (
            f"no entry point {cls.TYPE!r} in group {ENTRY_POINT_GROUP!r}: declare "
            f'[project.entry-points."{ENTRY_POINT_GROUP}"] {cls.TYPE} = "<module>:{cls.__name__}" '
            f"in {cls.DISTRIBUTION}'s pyproject.toml and install it"
        )
        assert len(found) == 1, f"entry point {cls.TYPE!r} is declared by several distributions"
        ep = found[0]
        assert ep.load() is cls, (
            f"entry point {cls.TYPE!r} loads {ep.value}, not {cls.__qualname__}"
        )
        dist = ep.dist
        assert dist is not None
        assert canonicalize_name(dist.name) == canonicalize_name(cls.DISTRIBUTION), (
            f"DISTRIBUTION = {cls.DISTRIBUTION!r} but the entry point comes from {dist.name!r}"
        )
        info = cls.info()
        AdapterInfo.model_validate(info.model_dump())
        assert info.version == dist.version
        assert info.contract_version.split(".")[0] == CONTRACT_VERSION.split(".")[0], (
            f"contract version {info.contract_version} is not compatible with "
            f"core's {CONTRACT_VERSION}"
        )

    def test_config_model_is_declared(self, adapter: DMSAdapter) -> None:
        cls = type(adapter)
        assert isinstance(adapter.config, cls.Config), (
            f"{cls.__name__} instances must be configured with {cls.Config.__name__}"
        )
        if not cls.PACKAGE_TYPES:
            pytest.fail(f"{cls.__name__}.PACKAGE_TYPES is empty: declare what it onboards")
