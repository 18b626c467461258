"""``AdapterInfo``: metadata the loader validates for every adapter class."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from netweave.adapters.capabilities import Capability

_TYPE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class AdapterInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: The entry-point name in ``netweave.adapters`` (e.g. ``helm``).
    type: str
    #: The distribution that ships the adapter (e.g. ``netweave-helm``).
    distribution: str
    version: str
    contract_version: str
    capabilities: frozenset[Capability]
    package_types: frozenset[str] = Field(default_factory=frozenset)
    description: str = ""

    @field_validator("type")
    @classmethod
    def _type_is_an_identifier(cls, value: str) -> str:
        if not _TYPE_RE.match(value):
            raise ValueError(f"adapter type {value!r} must match {_TYPE_RE.pattern}")
        return value
