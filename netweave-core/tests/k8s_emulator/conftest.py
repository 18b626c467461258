"""Shared fixtures for the emulator's own tests.

Helm tests need ``HOME`` pointing at a throwaway directory **when the Python
process starts** (helm-python-sdk snapshots the environment at load time and
writes a client-go discovery cache under ``$HOME/.kube``). Run them as::

    HOME=$(mktemp -d) pytest netweave-core/tests/k8s_emulator

Contract files and charts live in the shared folder beside the checkout; set
``NETWEAVE_SHARED_DIR`` to use another location.
"""

from __future__ import annotations

import json
import os
import pwd
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.k8s.fixtures import (  # noqa: F401  (fixtures used by the tests)
    k8s_emulator,
    k8s_emulator_factory,
    k8s_kubeconfig,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DIR = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
CONTRACTS = SHARED_DIR / "contracts"
CHARTS = SHARED_DIR / "charts"


def shared_file(*parts: str) -> Path:
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"shared file {path} is missing; set NETWEAVE_SHARED_DIR to the shared folder "
            "(contracts/, charts/) beside the checkout"
        )
    return path


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_CACHE: dict[Path, list[dict[str, Any]]] = {}


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    # The Argo CD CRD is 400 KB: parse each file once per session.
    if path not in _YAML_CACHE:
        text = path.read_text(encoding="utf-8")
        _YAML_CACHE[path] = [d for d in yaml.load_all(text, Loader=_LOADER) if isinstance(d, dict)]
    return _YAML_CACHE[path]


def flux_crd_paths() -> list[Path]:
    return sorted(shared_file("contracts", "flux").glob("*.yaml"))


def argocd_crd_path() -> Path:
    return shared_file("contracts", "argocd", "application-crd.yaml")


class Http:
    """Raw HTTP against the emulator, for what the typed clients hide."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, str], bytes]:
        data: bytes | None
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        code, _, raw = self.request(method, path, body, **kw)
        return code, json.loads(raw) if raw else None


@pytest.fixture
def http(k8s_emulator: KubernetesEmulator) -> Http:  # noqa: F811
    return Http(k8s_emulator.url)


@pytest.fixture
def kube(k8s_emulator: KubernetesEmulator) -> Iterator[Any]:  # noqa: F811
    """A ``kubernetes.client.ApiClient`` bound to the emulator."""
    api = k8s_emulator.kubernetes_client()
    yield api
    api.close()


def _home_is_isolated() -> bool:
    home = os.environ.get("HOME", "")
    try:
        real = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return bool(home)
    return bool(home) and Path(home).resolve() != Path(real).resolve()


@pytest.fixture(scope="session")
def helm_home() -> Path:
    """Fail clearly when Helm would write into the real home directory."""
    if not _home_is_isolated():
        pytest.fail(
            "Helm tests need HOME set to a throwaway directory when pytest starts "
            "(helm-python-sdk reads the environment only at process start and writes "
            "~/.kube/cache). Run: HOME=$(mktemp -d) pytest netweave-core/tests/k8s_emulator"
        )
    return Path(os.environ["HOME"])
