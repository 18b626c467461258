"""pytest fixtures for the Kubernetes API emulator.

Load them through the netweave pytest plugin, or in a conftest.py::

    pytest_plugins = ["netweave.testing.k8s.fixtures"]

Fixtures:

* ``k8s_emulator`` - a fresh, started :class:`KubernetesEmulator` per test.
* ``k8s_emulator_factory`` - ``factory(**options)`` for emulators with other
  options (no default controllers, another Kubernetes version...); all are
  stopped after the test.
* ``k8s_kubeconfig`` - the path of a kubeconfig file for ``k8s_emulator``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netweave.testing.k8s.emulator import KubernetesEmulator

EmulatorFactory = Callable[..., KubernetesEmulator]


@pytest.fixture
def k8s_emulator_factory() -> Iterator[EmulatorFactory]:
    started: list[KubernetesEmulator] = []

    def factory(**options: Any) -> KubernetesEmulator:
        emu = KubernetesEmulator(**options).start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def k8s_emulator(k8s_emulator_factory: EmulatorFactory) -> KubernetesEmulator:
    return k8s_emulator_factory()


@pytest.fixture
def k8s_kubeconfig(k8s_emulator: KubernetesEmulator, tmp_path: Path) -> Path:
    return k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig")
