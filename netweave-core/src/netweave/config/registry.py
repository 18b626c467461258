"""The adapter instances this gateway runs, by instance name. Frozen after start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from netweave.adapters import Capability, DMSAdapter
from netweave.errors import BackendUnavailable, Unprocessable

_log = logging.getLogger("netweave.config.registry")


class AdapterRegistry:
    def __init__(self, adapters: Mapping[str, DMSAdapter], default: str | None = None) -> None:
        if default is not None and default not in adapters:
            raise ValueError(f"default adapter {default!r} is not among {sorted(adapters)}")
        self._adapters = MappingProxyType(dict(adapters))
        self._default = (
            default
            if default is not None
            else (next(iter(adapters)) if len(adapters) == 1 else None)
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    @property
    def adapters(self) -> Mapping[str, DMSAdapter]:
        return self._adapters

    @property
    def default_name(self) -> str | None:
        return self._default

    def choose(self, name: str | None, capability: Capability | None = None) -> DMSAdapter:
        """The instance a request names, or the default: 422 when unknown or none applies."""
        if name is None:
            if self._default is None:
                raise Unprocessable(
                    "no adapter named and no default adapter configured; "
                    f"set 'adapter' to one of {sorted(self._adapters)}",
                    details={"field": "adapter"},
                )
            name = self._default
        adapter = self._adapters.get(name)
        if adapter is None:
            raise Unprocessable(
                f"unknown adapter {name!r}; configured: {sorted(self._adapters)}",
                details={"field": "adapter"},
            )
        if capability is not None:
            adapter.require(capability)
        return adapter

    def owner(self, name: str) -> DMSAdapter:
        """The instance that owns a stored object. Missing from configuration is a 503, not a
        client error: the object exists, its adapter is just not running here."""
        adapter = self._adapters.get(name)
        if adapter is None:
            raise BackendUnavailable(
                f"adapter instance {name!r} owning this object is not configured on this gateway",
                details={"adapter": name},
            )
        return adapter

    async def start_all(self) -> None:
        await asyncio.gather(*(a.start() for a in self._adapters.values()))

    async def stop_all(self) -> None:
        results = await asyncio.gather(
            *(a.stop() for a in self._adapters.values()), return_exceptions=True
        )
        for name, result in zip(self._adapters, results, strict=True):
            if isinstance(result, BaseException):
                _log.warning("adapter %s failed to stop: %s", name, result)
