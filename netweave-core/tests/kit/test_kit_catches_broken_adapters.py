"""Each deliberately broken variant of the example adapter makes the kit fail, naming why."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HEADER = """
from pathlib import Path

import pytest

from netweave.adapters import AdapterConfig, Capability, DMSAdapter, PackageUpload
from netweave.models import DeploymentStatus
from netweave.testing.kit import AdapterTestSuite, kit_override
from example_adapter import ExampleAdapter, ExampleBackend, ExampleObserver


class Base(AdapterTestSuite):
    # Generous: a correct adapter must pass on a loaded CI machine (0.5 s failed there once);
    # variants that never settle wait this long, so keep it a few seconds, not the default 60.
    settle_timeout = 5.0
    adapter_class = ExampleAdapter

    @pytest.fixture
    def example_backend(self):
        return ExampleBackend()

    @pytest.fixture
    def adapter(self, example_backend):
        return self.adapter_class("example-1", AdapterConfig(), example_backend)

    @pytest.fixture
    def backend(self, example_backend):
        return example_backend

    @pytest.fixture
    def observer(self, example_backend):
        return ExampleObserver(example_backend)

    @pytest.fixture
    def sample_package(self, tmp_path):
        archive = tmp_path / "demo.tgz"
        archive.write_bytes(b"ConfigMap Deployment")
        return PackageUpload(name="demo", version="1.0.0", package_type="example", archive=archive)

    @kit_override(reason="not an installed distribution")
    def test_entry_point_discovery(self, adapter):
        pass
"""


def run_variant(pytester: pytest.Pytester, body: str) -> tuple[pytest.RunResult, str]:
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makepyfile(test_variant=HEADER + textwrap.dedent(body))
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "-p", "no:logging", "-rfs",
        "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip
    return result, result.stdout.str() + result.stderr.str()


def test_the_correct_adapter_passes(pytester: pytest.Pytester) -> None:
    result, _ = run_variant(pytester, "class TestGood(Base):\n    pass\n")
    # Skipped with their reasons: no second package version, no failing package (two tests),
    # an observer that cannot steer workloads (the two readiness tests) and a backend that
    # cannot fail on demand (two failure-path tests).
    result.assert_outcomes(passed=26, skipped=7)


def test_an_adapter_without_optional_capabilities_passes_and_answers_501(
    pytester: pytest.Pytester,
) -> None:
    # The HTTP test checks scale, rollback and history answer 501 naming the capability; the
    # gated adapter-level tests skip with the reason that points at that check.
    result, out = run_variant(
        pytester,
        """
        class Minimal(ExampleAdapter):
            CAPABILITIES = ExampleAdapter.CAPABILITIES - {
                Capability.SCALING, Capability.ROLLBACK, Capability.HISTORY
            }

        class TestMinimal(Base):
            adapter_class = Minimal
        """,
    )
    assert result.ret == 0, out
    assert "adapter does not declare 'rollback'" in out or "skipped" in out
    result.assert_outcomes(passed=20, skipped=13)


def test_wrong_status_mapping_is_caught(pytester: pytest.Pytester) -> None:
    result, out = run_variant(
        pytester,
        """
        class Broken(ExampleAdapter):
            def map_status(self, state):
                # superseded revisions reported as failures, deployed as still deploying
                wrong = {"superseded": DeploymentStatus.FAILED}
                return wrong.get(state, DeploymentStatus.DEPLOYING)

        class TestBroken(Base):
            adapter_class = Broken
            # every settle in this variant times out: keep the wait short
            settle_timeout = 0.5
        """,
    )
    assert result.ret != 0
    assert "did not reach ['DEPLOYED']" in out
    assert "check the adapter's status mapping" in out


def test_leaking_backend_exceptions_are_caught(pytester: pytest.Pytester) -> None:
    result, out = run_variant(
        pytester,
        """
        from example_adapter import BackendMissing

        class Leaky(ExampleAdapter):
            async def _get_deployment(self, backend_ref):
                # forgets self._mapped(): the backend's own KeyError escapes
                return self._info(backend_ref, self.backend.get_release(backend_ref))

        class TestLeaky(Base):
            adapter_class = Leaky
        """,
    )
    assert result.ret != 0
    assert "let a backend exception (BackendMissing) escape" in out


def test_declared_capability_without_its_hook_is_caught(pytester: pytest.Pytester) -> None:
    result, out = run_variant(
        pytester,
        """
        class NoLogs(ExampleAdapter):
            _stream_logs = DMSAdapter._stream_logs

        class TestNoLogs(Base):
            adapter_class = NoLogs
        """,
    )
    assert result.ret != 0
    assert "declares capabilities without their hooks: ['logs: _stream_logs']" in out


def test_declared_capability_not_honoured_is_caught(pytester: pytest.Pytester) -> None:
    result, out = run_variant(
        pytester,
        """
        class FakeRollback(ExampleAdapter):
            async def _rollback_deployment(self, backend_ref, revision, ctx):
                # "rolls back" by doing nothing, as the Go original's Flux adapter did
                return await self._get_deployment(backend_ref)

        class TestFake(Base):
            adapter_class = FakeRollback
        """,
    )
    assert result.ret != 0
    assert "rollback to the previous revision changed nothing" in out


def test_undeclared_capability_that_still_works_is_caught(pytester: pytest.Pytester) -> None:
    result, out = run_variant(
        pytester,
        """
        class Quiet(ExampleAdapter):
            CAPABILITIES = ExampleAdapter.CAPABILITIES - {Capability.SCALING}

            def require(self, capability):
                # bypasses the template's capability check
                return None

        class TestQuiet(Base):
            adapter_class = Quiet
        """,
    )
    assert result.ret != 0
    assert "expected Unsupported" in out


def test_silently_skipped_or_overridden_kit_tests_are_caught(pytester: pytest.Pytester) -> None:
    # Caught at collection by netweave's pytest plugin, before any test runs.
    result, out = run_variant(
        pytester,
        """
        class TestSneaky(Base):
            @pytest.mark.skip
            def test_scale(self):
                pass

            async def test_logs(self):
                pass
        """,
    )
    assert result.ret != 0
    assert "TestSneaky.test_scale: @skip without a reason" in out
    assert "TestSneaky.test_logs: kit test overridden without a reason" in out


def test_overridden_kit_helpers_and_fixtures_are_caught(pytester: pytest.Pytester) -> None:
    # A weaker helper or a kit fixture replaced without a reason would let tests pass weaker.
    result, out = run_variant(
        pytester,
        """
        class TestWeaker(Base):
            async def settle(self, adapter, backend_ref, wanted=None):
                return await adapter.get_deployment(backend_ref)

            @pytest.fixture
            def namespace(self):
                return "default"

            def unknown_deployment_ref(self, adapter):
                return "default/documented-hook"  # the adapter's to override: allowed
        """,
    )
    assert result.ret != 0
    assert "TestWeaker.settle: kit helper overridden" in out
    assert "TestWeaker.namespace: kit fixture overridden" in out
    assert "unknown_deployment_ref" not in out


def test_a_kit_override_with_a_reason_may_replace_a_fixture(pytester: pytest.Pytester) -> None:
    result, out = run_variant(
        pytester,
        """
        class TestOther(Base):
            @kit_override(reason="this backend has one fixed namespace")
            @pytest.fixture
            def namespace(self):
                return "netweave-kit-fixed"

            def test_only(self, namespace):
                assert namespace == "netweave-kit-fixed"
        """,
    )
    assert "kit fixture overridden" not in out, out
    assert result.ret == 0, out


def test_a_fixture_skip_fails_when_backends_are_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fixture that skips for a missing component instead of calling require_backend would
    # hide the whole conformance run in CI; the kit's own skips (capabilities) stay skips.
    monkeypatch.setenv("NETWEAVE_REQUIRE_BACKENDS", "1")
    result, out = run_variant(
        pytester,
        """
        class Minimal(ExampleAdapter):
            CAPABILITIES = ExampleAdapter.CAPABILITIES - {Capability.LOGS}

        class TestSkippy(Base):
            adapter_class = Minimal

            @pytest.fixture
            def example_backend(self):
                pytest.skip("backend server not installed")
        """,
    )
    assert result.ret != 0
    assert (
        "skipped (Skipped: backend server not installed) while NETWEAVE_REQUIRE_BACKENDS=1" in out
    )
    assert "netweave.testing.require_backend" in out
