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
from example_adapter import ExampleAdapter, ExampleBackend


class Base(AdapterTestSuite):
    settle_timeout = 0.5
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
    def sample_package(self, tmp_path):
        archive = tmp_path / "demo.tgz"
        archive.write_bytes(b"demo")
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
    # The upgrade test skips with its reason: this variant gives no second package version.
    result.assert_outcomes(passed=22, skipped=1)


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
    result.assert_outcomes(passed=17, skipped=6)


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
