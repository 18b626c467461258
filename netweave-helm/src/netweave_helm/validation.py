"""Upload validation: archive safety, ``Chart.yaml`` schema, names and versions, dependencies,
Helm lint (errors refuse, warnings are reported) and the chart's own ``values.schema.json``.

The archive is inspected with Python's ``tarfile`` in streaming mode *before* any Helm call.
The Helm SDK calls (dependency list, lint) run in a short-lived child process
(:mod:`netweave_helm.chartcheck`): the Go SDK loads the whole chart into memory, and that
memory would otherwise stay with the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.resources
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from netweave.adapters.charts import ArchiveFacts, inspect_archive, received_facts, refuse
from netweave.errors import BackendError, BackendTimeout, InvalidInput

from netweave_helm import sdk
from netweave_helm.chartcheck import ARCHIVE_IN_OPTIONS, LIMITS_ENV
from netweave_helm.config import HelmConfig, RenderLimits

if TYPE_CHECKING:
    import jsonschema

_log = logging.getLogger("netweave_helm.validation")
_R = TypeVar("_R")

#: Semantic Versioning 2.0.0 (semver.org's recommended expression).
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
#: Helm's chart name rule (no path separators, no dots-only names); kept URL- and file-safe.
CHART_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$", re.I)

#: dependency_list statuses that mean "present in charts/ and matching".
_DEP_OK = {"ok", "unpacked"}
_LINT_ERROR, _LINT_WARNING, _LINT_INFO = 3, 2, 1

#: Chart.yaml / index fields copied into PackageInfo.extensions (camelCase, as Helm writes them).
EXTENSION_FIELDS = (
    "apiVersion",
    "appVersion",
    "kubeVersion",
    "type",
    "dependencies",
    "maintainers",
    "keywords",
    "icon",
    "home",
    "sources",
    "deprecated",
    "annotations",
)


@functools.cache
def _chart_schema_validator() -> jsonschema.Draft7Validator:
    import jsonschema  # here, not at import: only chart uploads need it (start-up time)

    text = (
        importlib.resources.files("netweave_helm")
        .joinpath("data/chart.schema.json")
        .read_text("utf-8")
    )
    schema = json.loads(text)
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def validate_chart_yaml(chart_yaml: dict[str, Any]) -> None:
    """``Chart.yaml`` against SchemaStore's chart.json (bundled), plus name and SemVer rules."""
    errors = sorted(_chart_schema_validator().iter_errors(chart_yaml), key=lambda e: list(e.path))
    if errors:
        messages = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in errors[:10]
        ]
        raise refuse(
            "Chart.yaml does not match the chart schema: " + "; ".join(messages), errors=messages
        )
    name = str(chart_yaml["name"])
    if not CHART_NAME.match(name):
        raise refuse(f"chart name {name!r} is not a valid chart name", field="name")
    version = str(chart_yaml["version"])
    if not SEMVER.match(version):
        raise refuse(
            f"chart version {version!r} is not a semantic version (SemVer 2)", field="version"
        )


@dataclass(frozen=True, slots=True)
class ValidatedChart:
    name: str
    version: str
    metadata: dict[str, Any]
    #: ``sha256:<hex>`` of the archive.
    digest: str
    size: int
    warnings: tuple[str, ...]
    facts: ArchiveFacts
    #: Dependencies not vendored but available from a configured repository: the archive
    #: must be rebuilt with them (``helm dependency update``) before it can be installed.
    to_vendor: tuple[str, ...] = ()


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


@dataclass(frozen=True, slots=True)
class PreparedChart:
    """What the pure-Python checks found, before the Helm SDK's."""

    name: str
    version: str
    metadata: dict[str, Any]
    facts: ArchiveFacts


def prepare_archive(
    path: Path,
    *,
    expected_name: str | None,
    expected_version: str | None,
    config: HelmConfig,
    known_digest: str | None = None,
) -> PreparedChart:
    """Archive safety (streamed), ``Chart.yaml`` schema, form fields against ``Chart.yaml``.
    ``known_digest``: the archive's checksum as the core received it; when the core inspected
    it then, under these limits, that result is taken instead of reading it again."""
    facts = received_facts(known_digest, config.limits) or inspect_archive(path, config.limits)
    validate_chart_yaml(facts.chart_yaml)
    name = str(facts.chart_yaml["name"])
    version = str(facts.chart_yaml["version"])
    if expected_name is not None and name != expected_name:
        raise InvalidInput(
            f"the form says name {expected_name!r} but Chart.yaml says {name!r}",
            details={"field": "name", "chart": name},
        )
    if expected_version is not None and version != expected_version:
        raise InvalidInput(
            f"the form says version {expected_version!r} but Chart.yaml says {version!r}",
            details={"field": "artifactVersion", "chart": version},
        )
    metadata = dict(facts.chart_yaml)
    if facts.requirements is not None and not metadata.get("dependencies"):
        # apiVersion v1: dependencies live in requirements.yaml (Helm merges them likewise).
        metadata["dependencies"] = list(facts.requirements.get("dependencies") or [])
    return PreparedChart(name=name, version=version, metadata=metadata, facts=facts)


#: How the chart-check child is started (the archive or chart directory is appended; the
#: options JSON follows on stdin). ``-P``: the working directory must not shadow modules.
CHECK_COMMAND: tuple[str, ...] = (sys.executable, "-P", "-m", "netweave_helm.chartcheck")
_CHECK = "validating the chart"
_STDERR_LOGGED = 4000
#: What a child that hit its memory cap says on stderr: the Go runtime ("fatal error: out of
#: memory", "runtime: out of memory", "pthread_create failed"), Python (MemoryError).
_OUT_OF_MEMORY = re.compile(
    r"out of memory|cannot allocate memory|MemoryError|pthread_create failed", re.I
)
_SIGXCPU = 24


class HelmChild:
    """One :mod:`netweave_helm.chartcheck` child process, as an async context manager.

    It is started on entry and loads the SDK while the caller does other work (the pure-Python
    checks), then waits for its options (:meth:`answer`). On exit it is killed if still running
    (an error, the time limit, a cancelled task: no orphan keeps linting) and its ``TMPDIR``,
    where Helm extracts the chart, is removed, also after a crash. With ``caps`` the child's
    memory and CPU time are limited and its wall-clock time is at most ``caps.timeSeconds``;
    over a cap the chart is refused (``InvalidInput``), since it is the chart that asks for it.
    """

    def __init__(
        self,
        argument: str,
        work_dir: Path,
        caps: RenderLimits | None = None,
        *,
        prefix: str = "chartcheck-",
    ) -> None:
        self._argument = argument
        self._work_dir = work_dir
        self._caps = caps
        self._prefix = prefix
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def argument(self) -> str:
        """The chart it was started for, or ``ARCHIVE_IN_OPTIONS`` (named in the options)."""
        return self._argument

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def __aenter__(self) -> HelmChild:
        return await self.start()

    async def start(self) -> HelmChild:
        """Start the process (once; ``async with`` starts it unless this was called)."""
        if self._process is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(dir=self._work_dir, prefix=self._prefix)
        env = {**os.environ, "TMPDIR": self._tmp.name, "PYTHONPATH": _child_path()}
        if self._caps is not None:
            env[LIMITS_ENV] = json.dumps(
                {
                    "dataBytes": self._caps.memory_bytes,
                    "cpuSeconds": max(1, round(2 * self._caps.time_seconds)),
                }
            )
        try:
            self._process = await asyncio.create_subprocess_exec(
                *CHECK_COMMAND,
                self._argument,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except BaseException as exc:
            self._tmp.cleanup()
            if isinstance(exc, OSError):
                _log.error("the chart check could not start: %s", exc)
                raise BackendError(f"{_CHECK}: the Helm chart check could not start") from None
            raise
        return self

    async def answer(self, options: dict[str, Any], time_limit: float) -> dict[str, Any]:
        """Send ``options``; the child's JSON answer within ``time_limit`` seconds."""
        process = self._process
        assert process is not None
        caps = self._caps
        capped = caps is not None and caps.time_seconds < time_limit
        try:
            out, err = await asyncio.wait_for(
                process.communicate(json.dumps(options).encode()),
                caps.time_seconds if caps is not None and capped else time_limit,
            )
        except TimeoutError:
            if caps is not None and capped:
                raise _over_cap("time", f"more than {caps.time_seconds:g} s") from None
            raise BackendTimeout(
                f"{_CHECK}: the Helm chart check did not finish within {time_limit:g} s"
            ) from None
        if caps is not None and process.returncode not in (0, None):
            if process.returncode == -_SIGXCPU:
                raise _over_cap("time", f"more than {2 * caps.time_seconds:g} s of CPU time")
            # Go's "fatal error: ..." line comes first, before its goroutine dumps.
            said = err[:_STDERR_LOGGED] + err[-_STDERR_LOGGED:]
            if _OUT_OF_MEMORY.search(said.decode("utf-8", "replace")):
                raise _over_cap("memory", f"more than {caps.memory_bytes // (1024 * 1024)} MiB")
        return _answer(process.returncode, out, err)

    async def __aexit__(self, *exc_info: object) -> None:
        process = self._process
        try:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                # Reap it so no zombie is left; SIGKILL makes this quick. (A cancellation
                # arriving meanwhile propagates; asyncio's child watcher still reaps it.)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 10)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()


#: The ``TMPDIR`` of a spare chart-check child starts so (the others' with ``chartcheck-``).
SPARE_PREFIX = "spare-chartcheck-"


class SpareCheck:
    """One chart-check child started before the upload that takes it, so that its Python and
    Helm SDK load between uploads rather than during one (about 0.1 s of a 100 MB chart's
    upload). It waits for its chart on stdin (:data:`ARCHIVE_IN_OPTIONS`) with the same caps
    and its own ``TMPDIR``, like a child started for the upload; a taken one is replaced a
    little after its upload's check (not during it, which it would slow). At most one idle
    process; killed by :meth:`close` (the adapter's stop), and it ends by itself when the
    gateway goes (its stdin closes)."""

    #: Seconds after a check before the next spare starts.
    REPLENISH_DELAY = 0.5

    def __init__(self, caps: RenderLimits) -> None:
        self._caps = caps
        self._work_dir: Path | None = None
        self._spare: HelmChild | None = None
        self._later: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    async def open(self, work_dir: Path) -> None:
        """Start the first spare; the chart schema is compiled now too (a first upload would
        otherwise wait for that)."""
        self._work_dir = work_dir
        await self._start()
        await asyncio.to_thread(_chart_schema_validator)

    @property
    def pid(self) -> int | None:
        """The idle spare's process id (``None`` without one)."""
        return self._spare.pid if self._spare is not None else None

    async def take(self) -> HelmChild | None:
        """The spare (started; its SDK loaded or loading), or ``None`` when there is none."""
        child, self._spare = self._spare, None
        if child is not None and not child.running:  # died meanwhile (killed from outside)
            await child.__aexit__(None, None, None)
            return None
        return child

    def replenish(self) -> None:
        if self._work_dir is None or self._later is not None:
            return

        def start() -> None:
            self._later = None
            task = asyncio.ensure_future(self._start())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._later = asyncio.get_running_loop().call_later(self.REPLENISH_DELAY, start)

    async def _start(self) -> None:
        if self._spare is not None or self._work_dir is None:
            return
        child = HelmChild(ARCHIVE_IN_OPTIONS, self._work_dir, self._caps, prefix=SPARE_PREFIX)
        try:
            await child.start()
        except BackendError:
            return  # logged; uploads start their own child (and say so if that fails too)
        if self._work_dir is None or self._spare is not None:  # closed or raced meanwhile
            await child.__aexit__(None, None, None)
            return
        self._spare = child

    async def close(self) -> None:
        self._work_dir = None
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        child, self._spare = self._spare, None
        if child is not None:
            await child.__aexit__(None, None, None)


def _over_cap(cap: str, needed: str) -> InvalidInput:
    setting = {"time": "render.timeSeconds", "memory": "render.memoryBytes"}[cap]
    return InvalidInput(
        f"rendering the chart needs {needed}, over the gateway's {cap} cap for one render "
        f"(the Helm adapter's {setting}): the chart or its values loop too much",
        details={"cap": cap, "setting": setting},
    )


def check_options(prepared: PreparedChart, config: HelmConfig) -> dict[str, Any]:
    return {
        "dependencies": bool(prepared.metadata.get("dependencies")),
        "strict": config.lint.strict,
        "kubeVersion": config.lint.kube_version,
    }


async def run_chart_check(
    archive: Path,
    options: dict[str, Any],
    *,
    time_limit: float,
    work_dir: Path,
    child: HelmChild | None = None,
    caps: RenderLimits | None = None,
) -> dict[str, Any]:
    """Lint (and list the dependencies of) ``archive`` in a child process; its JSON answer.

    ``child``: one already started for ``archive``; else one is started here. The child is
    killed when ``time_limit`` seconds pass or the awaiting task is cancelled (the core's write
    timeout, a client gone). A crash or an unreadable answer is a ``BackendError``.
    """
    if child is None:
        async with HelmChild(str(archive), work_dir, caps) as started:
            return await run_chart_check(
                archive, options, time_limit=time_limit, child=started, work_dir=work_dir
            )
    answer = await child.answer(options, time_limit)
    if not isinstance(answer.get("lint"), dict):
        raise BackendError(f"{_CHECK}: the Helm chart check failed (its answer has no lint result)")
    return answer


def _child_path() -> str:
    """``PYTHONPATH`` for the child: this very ``netweave_helm`` first, so parent and child
    always run the same code."""
    root = str(Path(__file__).resolve().parents[1])
    inherited = os.environ.get("PYTHONPATH")
    return root + os.pathsep + inherited if inherited else root


def _answer(returncode: int | None, out: bytes, err: bytes) -> dict[str, Any]:
    def failed(reason: str) -> BackendError:
        _log.error(
            "the chart check failed (%s); its stderr: %s",
            reason,
            err[-_STDERR_LOGGED:].decode("utf-8", "replace"),
        )
        return BackendError(f"{_CHECK}: the Helm chart check failed ({reason})")

    if returncode is None or returncode < 0:
        signal = -(returncode or 0)
        raise failed(f"killed by signal {signal}" if signal else "did not exit")
    if returncode != 0:
        raise failed(f"exit status {returncode}")
    try:
        answer = json.loads(out)
    except ValueError:
        raise failed("its answer is not JSON") from None
    if not isinstance(answer, dict):
        raise failed("its answer is not a JSON object")
    return answer


def _step(answer: dict[str, Any], key: str, what: str, kind: type[_R]) -> _R:
    """The result of one SDK step in the child's answer; its SDK error, mapped as in-process."""
    step = answer.get(key)
    if not isinstance(step, dict):
        raise BackendError(f"{_CHECK}: the Helm chart check gave no {key} result")
    if "error" in step:
        raise sdk.map_reported_error(step["error"], what)
    result = step.get("result")
    if not isinstance(result, kind):
        raise BackendError(f"{_CHECK}: the Helm chart check gave an unreadable {key} result")
    return result


def finish_validation(
    path: Path,
    prepared: PreparedChart,
    answer: dict[str, Any],
    *,
    config: HelmConfig,
    dependency_resolvable: Callable[[dict[str, Any]], bool] | None = None,
    known_digest: str | None = None,
) -> ValidatedChart:
    """Judge the child's dependency list and lint report; raise ``InvalidInput`` if refused."""
    metadata = prepared.metadata
    warnings: list[str] = []
    to_vendor = _check_dependencies(metadata, answer, prepared.facts, dependency_resolvable)
    report = _step(answer, "lint", "linting the chart", dict)
    errors: list[str] = []
    for message in report.get("messages") or []:
        severity = int(message.get("severity", 0))
        text = f"{message.get('path') or '(chart)'}: {message.get('error', '')}".strip()
        if severity >= _LINT_ERROR:
            errors.append(text)
        elif severity == _LINT_WARNING:
            (errors if config.lint.strict else warnings).append(f"[WARNING] {text}")
        elif severity == _LINT_INFO:
            warnings.append(f"[INFO] {text}")
    for error in report.get("errors") or []:
        if not any(str(error) in e for e in errors):
            errors.append(str(error))
    if errors:
        raise InvalidInput(
            "the chart fails helm lint: " + " | ".join(errors[:10]),
            details={"lintErrors": errors[:50]},
        )
    return ValidatedChart(
        name=prepared.name,
        version=prepared.version,
        metadata=metadata,
        digest=known_digest or file_digest(path),
        size=path.stat().st_size,
        warnings=tuple(warnings),
        facts=prepared.facts,
        to_vendor=tuple(to_vendor),
    )


async def validate_archive(
    path: Path,
    *,
    expected_name: str | None,
    expected_version: str | None,
    config: HelmConfig,
    time_limit: float,
    work_dir: Path,
    dependency_resolvable: Callable[[dict[str, Any]], bool] | None = None,
    known_digest: str | None = None,
    spare: SpareCheck | None = None,
) -> ValidatedChart:
    """Validate the chart archive at ``path``; raise ``InvalidInput`` listing what is wrong.

    The pure-Python checks run here (on a worker thread); Helm's dependency list and lint run
    in a child process (:func:`run_chart_check`), so the chart is never loaded into this
    process. ``dependency_resolvable`` decides whether a declared dependency that is *not*
    vendored in ``charts/`` can be had from a configured repository. ``known_digest``
    (``sha256:<hex>``, computed by the core while streaming the upload) saves hashing the file
    again, and reading it again when the core inspected it as it arrived. ``spare``: where a
    chart-check child started ahead is taken from.
    """
    # A spare child has its interpreter and SDK loaded already; else one starts now, so they
    # load while the archive is inspected here. Helm sees the archive only after these checks
    # passed (else the child is killed).
    child = await spare.take() if spare is not None else None
    if child is None:
        child = HelmChild(str(path), work_dir, config.render)
    try:
        async with child:
            prepared = await asyncio.to_thread(
                prepare_archive,
                path,
                expected_name=expected_name,
                expected_version=expected_version,
                config=config,
                known_digest=known_digest,
            )
            options = check_options(prepared, config)
            if child.argument == ARCHIVE_IN_OPTIONS:
                options["archive"] = str(path)
            answer = await run_chart_check(
                path, options, time_limit=time_limit, work_dir=work_dir, child=child
            )
    finally:
        if spare is not None:
            spare.replenish()
    return await asyncio.to_thread(
        finish_validation,
        path,
        prepared,
        answer,
        config=config,
        dependency_resolvable=dependency_resolvable,
        known_digest=known_digest,
    )


def _check_dependencies(
    metadata: dict[str, Any],
    answer: dict[str, Any],
    facts: ArchiveFacts,
    resolvable: Callable[[dict[str, Any]], bool] | None,
) -> list[str]:
    """Refuse unresolvable dependencies; return those a configured repository provides."""
    declared = metadata.get("dependencies") or []
    if not declared:
        return []
    from_repositories: list[str] = []
    statuses = _step(answer, "dependencies", "checking chart dependencies", list)
    by_name = {str(s.get("name")): s for s in statuses if isinstance(s, dict)}
    unresolved: list[str] = []
    for dep in declared:
        name = str(dep.get("name", ""))
        status = str(by_name.get(name, {}).get("status", "missing"))
        if status in _DEP_OK:
            continue
        vendored = _is_vendored(name, dep, facts)
        if status == "invalid version" and vendored:
            # free5gc declares vendored subcharts with no version and no repository: the
            # subchart in charts/ is what Helm loads, so the dependency is satisfied.
            continue
        if status == "missing" and not vendored and resolvable is not None and resolvable(dep):
            from_repositories.append(name)
            continue
        repo = dep.get("repository") or "(no repository)"
        unresolved.append(f"{name} {dep.get('version') or ''} from {repo}: {status}".strip())
    if unresolved:
        raise InvalidInput(
            "unresolvable chart dependencies (vendor them in charts/ or configure a "
            "repository that has them): " + "; ".join(unresolved),
            details={"dependencies": unresolved},
        )
    return from_repositories


def _is_vendored(name: str, dep: dict[str, Any], facts: ArchiveFacts) -> bool:
    if name in facts.vendored:
        return True
    prefix = f"{name}-"
    return any(v.startswith(prefix) and v.endswith(".tgz") for v in facts.vendored)


def extensions_from_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    extensions: dict[str, Any] = {"chartVersion": metadata.get("version")}
    for key in EXTENSION_FIELDS:
        value = metadata.get(key)
        if value not in (None, "", [], {}):
            extensions[key] = value
    extensions.setdefault("apiVersion", "v1")
    if extensions["apiVersion"] != "v1":
        extensions.setdefault("type", "application")
    return extensions


__all__ = [
    "CHART_NAME",
    "CHECK_COMMAND",
    "EXTENSION_FIELDS",
    "SEMVER",
    "HelmChild",
    "PreparedChart",
    "SpareCheck",
    "ValidatedChart",
    "check_options",
    "extensions_from_metadata",
    "file_digest",
    "finish_validation",
    "prepare_archive",
    "run_chart_check",
    "validate_archive",
    "validate_chart_yaml",
]
