"""Response models of the API's own resources (adapters, info, health)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from netweave.models import WireModel


class AdapterHealthView(WireModel):
    healthy: bool
    message: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AdapterView(WireModel):
    name: str
    type: str
    distribution: str
    version: str
    contract_version: str
    capabilities: list[str]
    package_types: list[str]
    default: bool
    health: AdapterHealthView


class AdapterList(WireModel):
    items: list[AdapterView]
    total: int


class ApiInfo(WireModel):
    api_version: str
    base_path: str
    gateway_version: str
    contract_version: str
    adapters: list[str]
    resources: list[str]


class HealthView(WireModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)
