"""The chart-check child process: its failures become clear errors, it never outlives the call.

Upload validation runs Helm's dependency list and lint in ``python -m netweave_helm.chartcheck``
(so a big chart never enters the gateway's memory). These tests replace the child's command with
small scripts that crash, print garbage, get killed or hang, and check that the upload fails
with a netweave error, stores nothing, leaves no temporary files and no running process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chartkit import build_chart
from conftest import AdapterFactory, upload_of
from netweave.errors import BackendError, BackendTimeout, InvalidInput
from netweave.testing.polling import until
from netweave_helm import sdk, validation
from netweave_helm.adapter import HelmAdapter
from netweave_helm.chartcheck import check
from test_sdk_errors import ALL_HELM_ERRORS

#: A child that records its pid and a file in its TMPDIR (as Helm's lint extraction does),
#: then hangs. ``{pidfile}`` is filled in per test.
HANG = (
    "import os, pathlib, time\n"
    "tmp = pathlib.Path(os.environ['TMPDIR']) / 'helm-lint-123'\n"
    "tmp.mkdir()\n"
    "(tmp / 'chart.yaml').write_text('x')\n"
    "pathlib.Path({pidfile!r}).write_text(str(os.getpid()))\n"
    "time.sleep(120)\n"
)


async def _no_spare(self: validation.SpareCheck) -> None:
    return None


def _child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Checks run ``code`` instead: in a child started for the upload (the adapter's spare,
    started at its start with the real command, is left out)."""
    monkeypatch.setattr(validation, "CHECK_COMMAND", (sys.executable, "-c", code))
    monkeypatch.setattr(validation.SpareCheck, "take", _no_spare)


def _hanging_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make the chart check a child that leaves a lint file and hangs; the file that will
    hold its pid."""
    pidfile = tmp_path / "child.pid"
    _child(monkeypatch, HANG.format(pidfile=str(pidfile)))
    return pidfile


def _read_pid(pidfile: Path) -> int | None:
    text = pidfile.read_text() if pidfile.is_file() else ""
    return int(text) if text else None


async def _pid_of(pidfile: Path) -> int:
    for _ in range(400):  # up to 20 s for the child to start
        pid = _read_pid(pidfile)
        if pid is not None:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("the child never started")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _files_left(adapter: HelmAdapter, repo: Path) -> list[Path]:
    # The child's TMPDIR (under the adapter's work directory) must be gone, with what it wrote.
    return [*repo.glob("*.tgz"), *adapter._work().glob("chartcheck-*")]


async def _nothing_left(adapter: HelmAdapter, repo: Path) -> None:
    assert _files_left(adapter, repo) == []
    assert await adapter.list_packages() == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import sys; sys.exit(3)", "exit status 3"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9"),
        ("print('Traceback (most recent call last): not JSON')", "not JSON"),
        ("print('')", "not JSON"),
        ("print('[1, 2]')", "not a JSON object"),
        ("print('{\"lint\": 5}')", "no lint result"),
    ],
)
async def test_a_broken_child_is_a_backend_error_and_stores_nothing(
    code: str,
    reason: str,
    tmp_path: Path,
    local_adapter: HelmAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = build_chart(tmp_path / "src", "broken-child", "1.0.0")
    _child(monkeypatch, code)
    with pytest.raises(BackendError) as caught:
        await local_adapter.upload_package(upload_of(archive))
    assert caught.value.status == 502
    assert reason in caught.value.message
    assert caught.value.message.startswith("validating the chart: the Helm chart check failed")
    await _nothing_left(local_adapter, tmp_path / "repo")


@pytest.mark.parametrize(
    "answer",
    [
        {"dependencies": None, "lint": {"result": ["not", "a", "report"]}},
        {"dependencies": None, "lint": {}},
    ],
)
async def test_an_unreadable_lint_result_is_a_backend_error(
    answer: dict[str, object],
    tmp_path: Path,
    local_adapter: HelmAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = build_chart(tmp_path / "src", "odd-answer", "1.0.0")
    _child(monkeypatch, f"print({json.dumps(json.dumps(answer))})")
    with pytest.raises(BackendError, match="unreadable lint result"):
        await local_adapter.upload_package(upload_of(archive))
    await _nothing_left(local_adapter, tmp_path / "repo")


async def test_a_child_killed_from_outside_is_a_backend_error(
    tmp_path: Path, local_adapter: HelmAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. the kernel's OOM killer taking the child, not the gateway."""
    archive = build_chart(tmp_path / "src", "oom", "1.0.0")
    pidfile = _hanging_child(monkeypatch, tmp_path)
    upload = asyncio.create_task(local_adapter.upload_package(upload_of(archive)))
    pid = await _pid_of(pidfile)
    assert list(local_adapter._work().glob("chartcheck-*/helm-lint-123/chart.yaml"))
    os.kill(pid, 9)
    with pytest.raises(BackendError, match="killed by signal 9"):
        await upload
    assert _gone(pid)
    await _nothing_left(local_adapter, tmp_path / "repo")


async def test_the_write_timeout_kills_the_child(
    tmp_path: Path, adapter_factory: AdapterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = await adapter_factory({"timeouts": {"write": 1.5}})
    archive = build_chart(tmp_path / "src", "slow", "1.0.0")
    pidfile = _hanging_child(monkeypatch, tmp_path)
    with pytest.raises(BackendTimeout) as caught:
        await adapter.upload_package(upload_of(archive))
    assert caught.value.status == 504
    assert _gone(await _pid_of(pidfile))
    await _nothing_left(adapter, tmp_path / "repo")


async def test_the_check_s_own_time_limit_kills_the_child(
    tmp_path: Path, local_adapter: HelmAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = build_chart(tmp_path / "src", "slow", "1.0.0")
    pidfile = _hanging_child(monkeypatch, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BackendTimeout, match=r"did not finish within 1\.5 s"):
        await validation.run_chart_check(
            archive, {"dependencies": False}, time_limit=1.5, work_dir=work
        )
    assert _gone(await _pid_of(pidfile))
    assert list(work.iterdir()) == []


async def test_a_cancelled_upload_kills_the_child(
    tmp_path: Path, local_adapter: HelmAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client went away or the operation was cancelled: no orphan keeps linting."""
    archive = build_chart(tmp_path / "src", "cancelled", "1.0.0")
    pidfile = _hanging_child(monkeypatch, tmp_path)
    upload = asyncio.create_task(local_adapter.upload_package(upload_of(archive)))
    pid = await _pid_of(pidfile)
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert _gone(pid)
    await _nothing_left(local_adapter, tmp_path / "repo")


async def test_the_real_child_reports_lint_results_and_sdk_errors(tmp_path: Path) -> None:
    """The child's JSON: a lint report for a chart, the SDK error's type for a non-chart."""
    good = build_chart(tmp_path / "src", "good", "1.0.0")
    answer = check(str(good), {"dependencies": True, "strict": False})
    assert answer["dependencies"] == {"result": []}
    assert answer["lint"]["result"]["errors"] == []

    garbage = tmp_path / "garbage-1.0.0.tgz"
    garbage.write_bytes(b"this is not a gzip stream")
    answer = check(str(garbage), {"dependencies": True})
    assert answer["lint"]["result"]["errors"], answer
    error = answer["dependencies"]["error"]
    assert error["type"] == "HelmChartLoadError"
    mapped = sdk.map_reported_error(error, "checking chart dependencies")
    assert isinstance(mapped, InvalidInput)
    assert mapped.message.startswith("checking chart dependencies: file ")


@pytest.mark.parametrize("on_stdin", [True, False])
def test_the_child_writes_only_json_to_stdout(tmp_path: Path, on_stdin: bool) -> None:
    good = build_chart(tmp_path / "src", "good", "1.0.0")
    options = json.dumps({"dependencies": False})
    done = subprocess.run(
        [*validation.CHECK_COMMAND, str(good), *([] if on_stdin else [options])],
        input=options.encode() if on_stdin else b"",
        capture_output=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": validation._child_path()},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lint"]["result"]["errors"] == []


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


async def test_a_chart_refused_before_helm_kills_the_early_started_child(
    tmp_path: Path, local_adapter: HelmAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child starts while the archive is inspected; a refusal there must not leave it."""
    archive = build_chart(tmp_path / "src", "bad", "not-semver")
    marker = f"chartcheck-marker-{os.getpid()}-{id(tmp_path)}"
    _child(monkeypatch, f"import time  # {marker}\ntime.sleep(120)\n")
    with pytest.raises(InvalidInput, match="not a semantic version"):
        await local_adapter.upload_package(upload_of(archive, "bad", "not-semver"))
    assert _processes_with(marker) == []
    await _nothing_left(local_adapter, tmp_path / "repo")


@pytest.mark.parametrize("error_type", ALL_HELM_ERRORS, ids=lambda t: t.__name__)
def test_a_reported_sdk_error_maps_like_one_raised_here(error_type: type[Exception]) -> None:
    message = "chart.metadata.name is required"
    here = sdk.map_error(error_type(message), "linting the chart")
    reported = sdk.map_reported_error(
        {"type": error_type.__name__, "message": message, "code": 7}, "linting the chart"
    )
    assert type(reported) is type(here)
    assert reported.message == here.message


def test_an_unknown_reported_error_type_is_a_backend_error() -> None:
    for reported in ({"type": "SystemExit", "message": "x"}, {"message": "x"}, "boom", None):
        assert isinstance(sdk.map_reported_error(reported, "linting the chart"), BackendError)


async def test_lint_errors_from_the_child_are_refused_as_before(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    """The real child: a template Helm cannot parse is a 400 naming helm lint."""
    archive = build_chart(
        tmp_path / "src",
        "badtpl",
        "1.0.0",
        templates={"cm.yaml": "apiVersion: v1\nkind: ConfigMap\n{{ if }}\n"},
    )
    with pytest.raises(InvalidInput, match="fails helm lint") as caught:
        await local_adapter.upload_package(upload_of(archive))
    assert caught.value.status == 400
    await _nothing_left(local_adapter, tmp_path / "repo")


async def test_an_upload_takes_the_spare_child_and_another_follows(
    tmp_path: Path, local_adapter: HelmAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child started at the adapter's start lints the first upload (its SDK loaded
    before the upload came), ends with it, and a new spare is started after the check."""
    monkeypatch.setattr(validation.SpareCheck, "REPLENISH_DELAY", 0.05)
    spare = local_adapter._spare_check.pid
    assert spare is not None and not _gone(spare)
    archive = build_chart(tmp_path / "src", "spared", "1.0.0")
    info = await local_adapter.upload_package(upload_of(archive))
    assert (info.name, info.version) == ("spared", "1.0.0")
    await until(lambda: _gone(spare), 20, what="the used spare ended")
    await until(lambda: local_adapter._spare_check.pid is not None, 20, what="a new spare started")
    assert local_adapter._spare_check.pid != spare
    assert list(local_adapter._work().glob("chartcheck-*")) == []


async def test_a_spare_killed_while_idle_is_not_used(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    spare = local_adapter._spare_check.pid
    assert spare is not None
    os.kill(spare, 9)
    await until(lambda: _gone(spare), 20, what="the spare died")
    archive = build_chart(tmp_path / "src", "after-kill", "1.0.0")
    info = await local_adapter.upload_package(upload_of(archive))
    assert info.version == "1.0.0"
    assert [p.name for p in (tmp_path / "repo").glob("*.tgz")] == ["after-kill-1.0.0.tgz"]


async def test_a_chart_refused_before_helm_ends_the_spare_it_took(
    tmp_path: Path, local_adapter: HelmAdapter
) -> None:
    spare = local_adapter._spare_check.pid
    assert spare is not None
    archive = build_chart(tmp_path / "src", "bad", "not-semver")
    with pytest.raises(InvalidInput, match="not a semantic version"):
        await local_adapter.upload_package(upload_of(archive, "bad", "not-semver"))
    await until(lambda: _gone(spare), 20, what="the spare ended")
    await _nothing_left(local_adapter, tmp_path / "repo")


async def test_stopping_the_adapter_ends_its_spare(adapter_factory: AdapterFactory) -> None:
    adapter = await adapter_factory()
    spare = adapter._spare_check.pid
    assert spare is not None
    work = adapter._work()
    assert list(work.glob(f"{validation.SPARE_PREFIX}*"))
    await adapter.stop()
    await until(lambda: _gone(spare), 20, what="the spare ended")
    assert adapter._spare_check.pid is None
    assert not work.exists() or not list(work.glob(f"{validation.SPARE_PREFIX}*"))


async def test_a_read_only_repository_starts_no_spare(
    adapter_factory: AdapterFactory, tmp_path: Path
) -> None:
    """Nothing is uploaded to it, so nothing is linted."""
    adapter = await adapter_factory(
        {"storage": {"kind": "http", "url": "http://127.0.0.1:9/charts"}}
    )
    assert adapter.store.read_only
    assert adapter._spare_check.pid is None
