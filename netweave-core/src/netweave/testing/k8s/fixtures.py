"""pytest fixtures for the Kubernetes API emulator.

The netweave pytest plugin exposes them; elsewhere, import them in a
conftest.py::

    from netweave.testing.k8s.fixtures import k8s_emulator, k8s_emulator_factory

Fixtures:

* ``k8s_emulator`` - a fresh, started :class:`KubernetesEmulator` per test.
* ``k8s_emulator_factory`` - ``factory(**options)`` for emulators with other
  options (no default controllers, another Kubernetes version...); all are
  stopped after the test.
* ``k8s_kubeconfig`` - the path of a kubeconfig file for ``k8s_emulator``.

This module imports the emulator only when a fixture runs, so loading it
(from the plugin, in every pytest run) costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from netweave.testing.k8s.emulator import KubernetesEmulator

EmulatorFactory = Callable[..., "KubernetesEmulator"]


@pytest.fixture
def k8s_emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators with options; every one is stopped after the test."""
    from netweave.testing.k8s.emulator import KubernetesEmulator

    started: list[KubernetesEmulator] = []

    def factory(**options: Any) -> KubernetesEmulator:
        emu = KubernetesEmulator(**options).start()
        started.append(emu)
        return emu

    yield factory
    errors: list[str] = []
    for emu in started:
        errors += emu.internal_errors
        emu.stop()
    if errors:
        pytest.fail(
            "the Kubernetes emulator failed on requests (a bug in the emulator):\n"
            + "\n".join(errors)
        )


@pytest.fixture
def k8s_emulator(k8s_emulator_factory: EmulatorFactory) -> KubernetesEmulator:
    """A started emulator with the default controllers, fresh for each test."""
    return k8s_emulator_factory()


@pytest.fixture
def k8s_kubeconfig(k8s_emulator: KubernetesEmulator, tmp_path: Path) -> Path:
    """A kubeconfig file pointing at ``k8s_emulator`` (for clients that need a file)."""
    return k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig")
