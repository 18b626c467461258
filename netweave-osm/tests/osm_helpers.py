"""Helpers shared by the OSM tests (a module of its own: ``conftest`` is not importable
safely when several distributions' tests run in one session)."""

from __future__ import annotations

from typing import Any

from netweave_osm import OsmConfig
from osm_emulator import OsmNbiEmulator


def make_config(nbi: OsmNbiEmulator, **overrides: Any) -> OsmConfig:
    raw: dict[str, Any] = {
        "nbiUrl": nbi.url,
        "username": nbi.username,
        "password": nbi.password,
        "project": nbi.project_name,
        "vimAccount": "k8s-vim",
        "pollingInterval": 0.02,
        "timeouts": {"read": 10, "write": 20},
        "http": {"retries": 2, "backoff": 0.01},
    }
    raw.update(overrides)
    return OsmConfig.model_validate(raw)
