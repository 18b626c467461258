"""Fixtures for the Helm adapter's tests.

Run with ``HOME`` pointing at a temporary directory *at process start* (the Helm Go SDK reads
the environment only then and writes caches under ``$HOME``)::

    HOME=$(mktemp -d) pytest netweave-helm/tests
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import PackageUpload
from netweave.testing import require_backend
from netweave_helm.adapter import HelmAdapter
from netweave_helm.config import HelmConfig

pytest_plugins = ["netweave.testing.k8s.fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The real-world charts (see the charts README) with the sha256 it lists.
REAL_CHARTS = {
    "free5gc-1.1.7.tgz": "54c56c10d5d475b65a7bbe4a0e88b42186802baa9cc1e576a90584e056699bf4",
    "infrastructure-3.0.0.tgz": "d0e6d18a8883ff83677f042e329f10baefb3227a8e50ab36c8fca1f51ee2fe26",
    "nginx-21.1.23.tgz": "326a714acf507d1ac5379ba2328103d8d0945d11aa7140f323c4a0eaaa2dad14",
    "traefik-41.3.0.tgz": "2015f6a17e371f97f4cc9007e94f91201fd3209417b758d317a6cddfa0761ba5",
    "velero-12.1.0.tgz": "99f225de22b29f99b4d2549a83655b73df9a14a9ba76c4809a3655e7d2581ebf",
    "hello-world-0.1.0.tgz": "2915c4765b5e1639a495cb7321bd6bf8213a3aa66eb48333d03d92ad7e9ee889",
}


def shared_dir() -> Path:
    return Path(os.environ.get("NETWEAVE_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def charts_dir() -> Path:
    directory = shared_dir() / "charts"
    if not (directory / "hello-world-0.1.0.tgz").is_file():
        require_backend(f"the real-world test charts are not at {directory} (NETWEAVE_SHARED_DIR)")
    return directory


AdapterFactory = Callable[..., Awaitable[HelmAdapter]]


@pytest.fixture
async def adapter_factory(tmp_path: Path) -> AsyncIterator[AdapterFactory]:
    """``await factory(config_dict, name=...)``: a started adapter, stopped after the test.

    Without ``storage`` the adapter gets a local repository in ``tmp_path/repo``.
    """
    started: list[HelmAdapter] = []

    async def factory(
        config: dict[str, Any] | None = None, *, name: str = "helm-test"
    ) -> HelmAdapter:
        raw = dict(config or {})
        raw.setdefault("storage", {"kind": "local", "repositoryDir": str(tmp_path / "repo")})
        raw.setdefault("dataDir", str(tmp_path / "data"))
        adapter = HelmAdapter(name, HelmConfig.model_validate(raw))
        await adapter.start()
        started.append(adapter)
        return adapter

    yield factory
    for adapter in started:
        await adapter.stop()


@pytest.fixture
async def local_adapter(adapter_factory: AdapterFactory) -> HelmAdapter:
    return await adapter_factory()


def upload_of(path: Path, name: str | None = None, version: str | None = None) -> PackageUpload:
    """The upload the core would hand over for the archive at ``path``."""
    stem = path.name.removesuffix(".tgz")
    default_name, _, default_version = stem.rpartition("-")
    return PackageUpload(
        name=name if name is not None else default_name,
        version=version if version is not None else default_version,
        package_type="helm",
        archive=path,
        archive_size=path.stat().st_size,
    )
