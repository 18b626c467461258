"""Sessions for the netweave monorepo: tests, lint, type checks, benchmarks.

``nox`` with no arguments runs lint, typecheck and tests — the README's test command and CI's.
Each distribution keeps its own pytest and mypy configuration in its pyproject.toml.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import tempfile
import time
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CORE = "netweave-core"
ADAPTERS = ["netweave-helm", "netweave-argocd", "netweave-flux", "netweave-onap", "netweave-osm"]
#: Distributions that exist (an adapter directory may still be empty until its issue is taken).
DISTRIBUTIONS = [CORE] + [d for d in ADAPTERS if (ROOT / d / "pyproject.toml").exists()]
PACKAGES = {
    CORE: "netweave",
    **{d: d.replace("netweave-", "netweave_") for d in ADAPTERS},
}

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _editable(dist: str) -> str:
    """``./dist[testing]`` when the distribution declares a testing extra."""
    pyproject = (ROOT / dist / "pyproject.toml").read_text()
    return f"./{dist}[testing]" if "\ntesting = [" in pyproject else f"./{dist}"


def _install_all(session: nox.Session) -> None:
    # One resolver run for everything: faster, and conflicts show at once.
    args: list[str] = []
    for dist in DISTRIBUTIONS:
        args += ["-e", _editable(dist)]
    session.install(*args)


def _test_env(session: nox.Session) -> dict[str, str]:
    # helm-python-sdk (Go) reads HOME and HELM_* only from the environment the process starts
    # with, and writes caches under HOME: give every test process a fresh one.
    home = tempfile.mkdtemp(prefix="netweave-home-")
    shared = os.environ.get("NETWEAVE_SHARED_DIR") or str((ROOT / ".." / "shared").resolve())
    env = {"HOME": home, "NETWEAVE_SHARED_DIR": shared}
    for name in ("NETWEAVE_REQUIRE_BACKENDS", "NETWEAVE_PG_DSN"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _tests_dir(dist: str) -> Path:
    return ROOT / "tests" if dist == "tests" else ROOT / dist / "tests"


def _pytest(session: nox.Session, dist: str, env: dict[str, str]) -> None:
    tests = _tests_dir(dist)
    if not any(tests.rglob("test_*.py")):
        session.log(f"{dist}: no tests yet")
        return
    with session.chdir(tests.parent if dist != "tests" else tests):
        session.run("pytest", *session.posargs, env=env)


#: The test runs split into lanes that run side by side: most tests wait on sockets, child
#: processes and backends rather than on the CPU, so two lanes on two cores cut the wall time.
#: Balanced by a CI trial's times (two lanes, one 2-core machine): core 902 s + tests/ 96 s
#: against helm 524 + argocd 68 + flux 152 + onap 130 + osm 145 s. NETWEAVE_TEST_LANES=1 runs
#: everything in one sequence.
LANES = [[CORE, "tests"], [d for d in DISTRIBUTIONS if d != CORE]]


def _run_lane(
    session: nox.Session, lane: list[str], base_env: dict[str, str], logs: Path
) -> list[tuple[str, int, float, Path]]:
    """Each distribution of one lane in turn, its output to a log file (printed by the caller
    when the lane ends, so two lanes' lines never interleave)."""
    results = []
    for dist in lane:
        tests = _tests_dir(dist)
        log = logs / f"{dist}.log"
        if not any(tests.rglob("test_*.py")):
            log.write_text(f"{dist}: no tests yet\n")
            results.append((dist, 0, 0.0, log))
            continue
        # Each process its own HOME: the Helm SDK writes its caches there.
        env = {**os.environ, **base_env, "HOME": tempfile.mkdtemp(prefix="netweave-home-")}
        env["PATH"] = f"{session.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(Path(session.bin).parent)
        cwd = tests if dist == "tests" else tests.parent
        started = time.monotonic()
        with log.open("wb") as out:
            rc = subprocess.call(
                [str(Path(session.bin) / "pytest"), *session.posargs],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        results.append((dist, rc, time.monotonic() - started, log))
    return results


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Every distribution's tests and the end-to-end tests in tests/, in two lanes side by side.

    All of them run even when one fails, so a CI log shows every red distribution at once.
    """
    _install_all(session)
    env = _test_env(session)
    lanes = (
        LANES
        if os.environ.get("NETWEAVE_TEST_LANES", "2") != "1"
        else [[d for lane in LANES for d in lane]]
    )
    logs = Path(tempfile.mkdtemp(prefix="netweave-test-logs-"))
    session.log(f"running {len(lanes)} lanes side by side: {lanes}")
    with concurrent.futures.ThreadPoolExecutor(len(lanes)) as pool:
        outcomes = [
            r
            for lane in pool.map(lambda ln: _run_lane(session, ln, env, logs), lanes)
            for r in lane
        ]
    failed: list[str] = []
    for dist, rc, seconds, log in outcomes:
        print(f"\n===== {dist} ({seconds:.0f} s, exit {rc}) =====", flush=True)
        print(log.read_text(errors="replace"), flush=True)
        if rc != 0:
            failed.append(dist)
    for dist, rc, seconds, _ in outcomes:
        session.log(f"{dist}: exit {rc} in {seconds:.0f} s")
    if failed:
        session.error(f"tests failed in: {', '.join(failed)}")


@nox.session(python="3.11")
@nox.parametrize("dist", DISTRIBUTIONS)
def test(session: nox.Session, dist: str) -> None:
    """One distribution's tests: ``nox -s "test(dist='netweave-helm')"``."""
    args = ["-e", _editable(CORE)]
    if dist != CORE:
        args += ["-e", _editable(dist)]
    session.install(*args)
    _pytest(session, dist, _test_env(session))


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6", "pylint>=3.2")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Logic shared by adapters belongs once in core: fail on a block of 8+ lines repeated
    # across the adapter distributions (pylint's maintained duplicate-code checker; the
    # threshold is where today's tree passes, so any new copy of that size fails lint).
    session.run(
        "pylint",
        "--disable=all",
        "--enable=duplicate-code",
        "--min-similarity-lines=8",
        "--ignore-imports=yes",
        "--ignore-signatures=yes",
        "--ignore-docstrings=yes",
        "--ignore-comments=yes",
        "--score=no",
        *[f"{dist}/src" for dist in DISTRIBUTIONS if dist != CORE],
    )


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict, one distribution at a time (each has its own [tool.mypy]), then the
    layer contracts of ``.importlinter`` over all of them (needs every distribution installed)."""
    _install_all(session)
    session.install("mypy>=1.10", "types-PyYAML", "types-jsonschema", "import-linter>=2.1")
    # One cache for all: each adapter's run then reuses core's and the libraries' analysis
    # (82 s -> 28 s for the six on a 2-core machine); mypy checks every cached module against
    # its file and options, so nothing goes unchecked.
    cache = Path(session.create_tmp()) / "mypy-cache"
    for dist in DISTRIBUTIONS:
        with session.chdir(ROOT / dist):
            session.run("mypy", env={"MYPY_CACHE_DIR": str(cache)})
    session.run("lint-imports", str(ROOT / ".importlinter"))


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Speed and memory targets, measured side by side and printed as ratios (needs wrk and
    curl). The catalogue scale bench runs at 1 000, 10 000 and 100 000 charts, issue 18's
    size (NETWEAVE_BENCH_SCALE_MAX=10000 for a shorter run)."""
    _install_all(session)
    env = _test_env(session)
    env["NETWEAVE_BENCH_SCALE_MAX"] = os.environ.get("NETWEAVE_BENCH_SCALE_MAX", "100000")
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    for dist in DISTRIBUTIONS:
        scripts += sorted((ROOT / dist / "bench").glob("bench_*.py"))
    for script in scripts:
        session.run("python", str(script), env=env)


@nox.session(python="3.11")
def openapi(session: nox.Session) -> None:
    """Regenerate the committed OpenAPI document from the running app."""
    _install_all(session)
    session.run("python", "-m", "netweave.api.openapi", str(ROOT / CORE / "openapi.json"))
