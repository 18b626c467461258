"""The kit measured by mistakes: each mistake of the catalogue (``manifests_mutants.py``),
applied alone to the plain-manifests reference adapter, must make the kit fail.

Each mistake runs against the kit test the catalogue names for it (the whole kit for each would
cost a minute; the reference adapter passes every one of those tests in
``test_manifests_adapter_kit.py``, so a failure here is the mistake's). The catalogue, the
failure each caused and the kill rate are printed.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from .manifests_mutants import MUTANTS

pytest_plugins = ["pytester"]

SUITE = """
import contextlib
from pathlib import Path

import pytest
from netweave.adapters import PackageUpload
from netweave.testing.kit import AdapterTestSuite, KubernetesObserver, kit_override
from manifests_adapter import (
    FAILING_MANIFESTS, OWNER_LABELS, ManifestsAdapter, ManifestsConfig, app_manifests,
    manifests_archive, values_record,
)
from manifests_mutants import MUTANTS

KIND = "manifests"


class Outage:
    def __init__(self, emulator):
        self.emulator = emulator

    @contextlib.contextmanager
    def outage(self):
        fault = self.emulator.faults.error(503, times=None)
        try:
            yield
        finally:
            fault.remove()


class Mutant(AdapterTestSuite):
    settle_timeout = 2.0
    adapter_class = ManifestsAdapter

    @pytest.fixture
    def adapter(self, k8s_emulator):
        config = ManifestsConfig.model_validate(
            {"kubeUrl": k8s_emulator.url, "timeouts": {"read": 5, "write": 10}}
        )
        return self.adapter_class("manifests-kit", config)

    @pytest.fixture
    def observer(self, k8s_emulator):
        return KubernetesObserver(k8s_emulator, labels=OWNER_LABELS, record=values_record)

    @pytest.fixture
    def backend(self, k8s_emulator):
        return Outage(k8s_emulator)

    @pytest.fixture
    def sample_package(self, tmp_path):
        archive = manifests_archive(tmp_path / "demo-1.0.0.tgz", app_manifests())
        return PackageUpload(name="demo", version="1.0.0", package_type=KIND, archive=archive)

    @pytest.fixture
    def upgrade_package(self, tmp_path):
        docs = app_manifests(with_config=False)
        archive = manifests_archive(tmp_path / "demo-1.1.0.tgz", docs)
        return PackageUpload(name="demo", version="1.1.0", package_type=KIND, archive=archive)

    @pytest.fixture
    def failing_package(self, tmp_path):
        archive = manifests_archive(tmp_path / "broken.tgz", [], raw=FAILING_MANIFESTS)
        return PackageUpload(name="broken", version="1.0.0", package_type=KIND, archive=archive)

    @kit_override(reason="not an installed distribution")
    def test_entry_point_discovery(self, adapter):
        pass
"""


def test_the_kit_kills_every_mistake_in_the_catalogue(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.syspathinsert(Path(__file__).parent)
    classes = "".join(
        f"\n\nclass Test{cls.__name__}(Mutant):\n"
        f"    adapter_class = MUTANTS_BY_NAME[{cls.__name__!r}]\n"
        for cls in MUTANTS
    )
    pytester.makepyfile(
        test_mutants=SUITE
        + "\nMUTANTS_BY_NAME = {cls.__name__: cls for cls in MUTANTS}\n"
        + classes
    )
    started = time.monotonic()
    result = pytester.runpytest_inprocess(
        *(f"test_mutants.py::Test{cls.__name__}::{test}" for cls, test in MUTANTS.items()),
        "-q", "-rf", "-p", "no:cacheprovider", "-p", "no:logging",
        "-W", "ignore::pytest.PytestUnraisableExceptionWarning",
        "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip
    failures: dict[str, str] = {}
    for report in result.reprec.getfailures():  # type: ignore[attr-defined]
        crash = getattr(report.longrepr, "reprcrash", None)
        cls_name = report.nodeid.split("::")[1].removeprefix("Test")
        failures[cls_name] = crash.message if crash is not None else str(report.longrepr)
    width = max(len(cls.__name__) for cls in MUTANTS)
    lines = []
    for cls, test in MUTANTS.items():
        why = failures.get(cls.__name__)
        verdict = f"KILLED by {test}" if why else f"SURVIVED {test}"
        lines.append(f"{cls.__name__:<{width}}  {verdict}")
        lines.append(f"{'':<{width}}    mistake: {textwrap.shorten(cls.__doc__ or '', 90)}")
        if why:
            lines.append(f"{'':<{width}}    kit said: {textwrap.shorten(why, 90)}")
    kills = len(failures)
    report = (
        "\nconformance kit mutation catalogue (plain-manifests reference adapter):\n"
        + "\n".join(lines)
        + f"\nkill rate: {kills}/{len(MUTANTS)} ({100 * kills / len(MUTANTS):.0f}%) in "
        f"{time.monotonic() - started:.1f} s\n"
    )
    with capsys.disabled():
        print(report)
    survivors = [cls.__name__ for cls in MUTANTS if cls.__name__ not in failures]
    assert not survivors, f"mistakes the kit let pass: {survivors}\n{report}"
