"""netweave's pytest plugin (``pytest11`` entry point ``netweave``).

Loaded into every pytest run where netweave-core is installed, so it imports nothing heavy at
module level: fixtures import what they need when they run.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from netweave.testing import backends_required, require_backend

# The Kubernetes API emulator's fixtures (k8s_emulator, k8s_emulator_factory, k8s_kubeconfig)
# for every adapter's tests; the module imports its heavy parts lazily.
pytest_plugins = ["netweave.testing.k8s.fixtures"]

if TYPE_CHECKING:
    from netweave.config import Settings
    from netweave.testing.etsi_notify import CallbackSink


@pytest.fixture
def netweave_data_dir(tmp_path: Path) -> Path:
    """An empty gateway data directory for one test."""
    data_dir = tmp_path / "netweave-data"
    data_dir.mkdir()
    return data_dir


@pytest.fixture
def netweave_settings(netweave_data_dir: Path) -> Settings:
    """Gateway settings with embedded defaults and a temporary data directory.

    No configuration file and no adapters: tests add ``plugins.dms`` entries with
    ``settings.model_copy(update=…)`` or build their own registry.
    """
    from netweave.config import Settings

    return Settings(data_dir=netweave_data_dir)


@pytest.fixture
def notification_sink() -> Generator[CallbackSink, None, None]:
    """A subscriber's callback endpoint on loopback, recording what the gateway delivers
    (``netweave.testing.etsi_notify.CallbackSink``)."""
    from netweave.testing.etsi_notify import callback_sink

    with callback_sink() as sink:
        yield sink


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The conformance kit's no-silent-override guard, at collection.

    Only when the kit is imported (a class cannot subclass it otherwise), so this costs nothing
    elsewhere. A class that replaces or skips a kit test without a reason stops the run.
    """
    guard = sys.modules.get("netweave.testing.kit.guard")
    if guard is None:
        return
    from netweave.testing.kit.base import AdapterFixtures

    problems: list[str] = []
    seen: set[type] = set()
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None or cls in seen or not issubclass(cls, AdapterFixtures):
            continue
        seen.add(cls)
        problems.extend(guard.check_class(cls))
    if problems:
        raise pytest.UsageError("conformance kit guard:\n  " + "\n  ".join(problems))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Under CI (backends required), a kit test may skip only for the kit's own reasons.

    Any other skip (a fixture calling ``pytest.skip`` for a missing component, say) hides a
    whole conformance run; it must go through ``require_backend``, which fails it there.
    """
    outcome = yield
    if "netweave.testing.kit.base" not in sys.modules or not backends_required():
        return
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    from netweave.testing.kit.base import KIT_SKIP_PREFIX, AdapterFixtures

    cls = getattr(item, "cls", None)
    if cls is None or not issubclass(cls, AdapterFixtures):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if reason.removeprefix("Skipped: ").startswith(KIT_SKIP_PREFIX):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"conformance kit: {item.nodeid} skipped ({reason}) while NETWEAVE_REQUIRE_BACKENDS=1; "
        "a fixture that needs a missing component must call netweave.testing.require_backend"
    )


__all__ = ["netweave_data_dir", "netweave_settings", "require_backend"]
