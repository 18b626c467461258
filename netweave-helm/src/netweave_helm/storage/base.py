"""What every chart storage backend offers the adapter."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netweave.errors import NotFound, Unsupported


@dataclass(frozen=True, slots=True)
class ChartEntry:
    """One chart version in a backend: its ``Chart.yaml`` metadata plus where it lives."""

    name: str
    version: str
    metadata: dict[str, Any]
    #: ``sha256:<hex>`` of the archive (the OCI layer digest / the index ``digest``), if known.
    digest: str | None = None
    #: Where a client can fetch it (URL, ``oci://…:tag`` or the served path).
    uri: str | None = None
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: ``listing_since``'s filter: true for a (name, version) the caller already knows.
Skip = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class ChartListing:
    """What ``ChartStore.listing_since`` answers: a token for the next call, and either every
    chart (``complete``) or only the charts added since the token it was given."""

    token: str | None
    entries: list[ChartEntry]
    complete: bool


class ChartStore(abc.ABC):
    """A chart repository. Calls are async; blocking work runs off the event loop."""

    #: ``local``, ``oci``, ``chartmuseum`` or ``http``.
    kind: str = ""
    read_only: bool = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """The repository's address, for messages and extensions (no credentials)."""

    @abc.abstractmethod
    async def list_charts(self) -> list[ChartEntry]:
        """Every chart version the backend holds now (including ones added outside netweave)."""

    async def listing_since(self, token: str | None, skip: Skip | None = None) -> ChartListing:
        """Charts added since ``token`` (from an earlier answer); every chart by default.
        ``skip(name, version)`` true: the caller knows that chart, leave it out."""
        entries = await self.list_charts()
        if skip is not None:
            entries = [e for e in entries if not skip(e.name, e.version)]
        return ChartListing(None, entries, complete=True)

    async def get(self, name: str, version: str) -> ChartEntry:
        for entry in await self.list_charts():
            if entry.name == name and entry.version == version:
                return entry
        raise NotFound(f"chart {name}:{version} not found in {self.location}")

    async def exists(self, name: str, version: str) -> bool:
        try:
            await self.get(name, version)
        except NotFound:
            return False
        return True

    async def put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        """Store a validated archive; ``AlreadyExists`` if ``name:version`` is there."""
        raise Unsupported(
            f"the {self.kind} chart repository {self.location} is read-only",
            details={"capability": "package-upload"},
        )

    async def delete(self, name: str, version: str) -> None:
        raise Unsupported(
            f"the {self.kind} chart repository {self.location} is read-only",
            details={"capability": "package-delete"},
        )

    @abc.abstractmethod
    async def fetch(self, name: str, version: str, directory: Path) -> Path:
        """A local path to the archive (downloaded into ``directory`` if remote)."""

    async def health(self) -> tuple[bool, str | None]:
        try:
            await self.list_charts()
        except Exception as exc:  # any failure means unhealthy; the message says why
            return False, str(exc)
        return True, None


__all__ = ["ChartEntry", "ChartListing", "ChartStore", "Skip"]
