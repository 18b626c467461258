"""Chart storage backends, chosen per adapter instance by ``storage.type``."""

from __future__ import annotations

from pathlib import Path

from netweave_helm.config import (
    AzureStorage,
    ChartMuseumStorage,
    GcsStorage,
    HelmConfig,
    HttpStorage,
    LocalStorage,
    OciStorage,
    S3Storage,
)
from netweave_helm.storage.base import ChartEntry, ChartStore
from netweave_helm.storage.http import ChartMuseumStore, HttpChartStore
from netweave_helm.storage.local import LocalChartStore
from netweave_helm.storage.objectstore import ObjectChartStore
from netweave_helm.storage.oci import OciChartStore


def make_store(config: HelmConfig, *, local_dir: Path, served_at: str | None) -> ChartStore:
    storage = config.storage
    max_bytes = config.limits.max_uncompressed_bytes
    if isinstance(storage, LocalStorage):
        return LocalChartStore(local_dir, config.limits, served_at=served_at)
    if isinstance(storage, OciStorage):
        return OciChartStore(storage, timeout=config.http_timeout, max_bytes=max_bytes)
    if isinstance(storage, ChartMuseumStorage):
        return ChartMuseumStore(storage, timeout=config.http_timeout, max_bytes=max_bytes)
    if isinstance(storage, HttpStorage):
        return HttpChartStore(storage, timeout=config.http_timeout, max_bytes=max_bytes)
    if isinstance(storage, S3Storage | GcsStorage | AzureStorage):
        return ObjectChartStore(storage, timeout=config.http_timeout, max_bytes=max_bytes)
    raise TypeError(f"unknown storage {type(storage).__name__}")  # pragma: no cover


__all__ = [
    "ChartEntry",
    "ChartMuseumStore",
    "ChartStore",
    "HttpChartStore",
    "LocalChartStore",
    "ObjectChartStore",
    "OciChartStore",
    "make_store",
]
