"""The container recipe (deploy/container/Containerfile) without a container engine: its
instructions are read and checked (non-root user, health check, data volume, the adapters as a
build argument, sources that exist), and its install step is executed as written — the same
command line, the COPY instructions laid out as links in a build directory — into a fresh
environment for a chosen set of adapters.

What this does not verify: the base image, and the resolution of third-party dependencies
(the install runs with ``--no-deps`` and without an index, so the test needs no network; the
image's ``RUN netweave --version`` is the build-time check of those). docs/deploying.md says
how the image was built by hand."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "deploy" / "container" / "Containerfile"
CHART = REPO / "deploy" / "helm" / "netweave"
#: What pip needs to build the distributions without build isolation (hatchling's own needs).
BUILD_BACKEND = {
    "hatchling": "hatchling",
    "pathspec": "pathspec",
    "pluggy": "pluggy",
    "packaging": "packaging",
    "trove_classifiers": "trove-classifiers",
}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _one(stage: list[tuple[str, str]], keyword: str) -> str:
    (found,) = [rest for k, rest in stage if k == keyword]
    return found


def test_the_recipe_runs_netweave_as_a_non_root_user_with_a_health_check_and_a_volume() -> None:
    instructions = _instructions(RECIPE.read_text())
    build, final = _stages(instructions)
    assert _one(build, "FROM").endswith(" AS build")
    # The adapters are a build argument, "helm" unless told otherwise, in both stages.
    for stage in (build, final):
        assert _one(stage, "ARG") == 'ADAPTERS="helm"'
    user = _one(final, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    # Every RUN after USER runs as that user; the user and its data directory exist before.
    user_at = final.index(("USER", user))
    assert any(k == "RUN" and f"--uid {uid}" in rest for k, rest in final[:user_at])
    assert json.loads(_one(final, "VOLUME")) == ["/var/lib/netweave"]
    assert "NETWEAVE_DATA_DIR=/var/lib/netweave" in _one(final, "ENV")
    health = _one(final, "HEALTHCHECK")
    assert "http://127.0.0.1:8080/healthz" in health
    assert json.loads(_one(final, "ENTRYPOINT")) == ["netweave"]
    assert json.loads(_one(final, "CMD"))[:1] == ["serve"]
    assert _one(final, "EXPOSE") == "8080"
    # The final stage copies the environment only, not the sources.
    assert [rest for k, rest in final if k == "COPY"] == [
        "--from=build /opt/netweave /opt/netweave"
    ]
    # Every source the build copies exists (the context is the repository's root).
    for keyword, rest in build:
        if keyword == "COPY":
            source, _ = shlex.split(rest)
            assert (REPO / source).exists(), source

    # The chart runs the image as the same user and probes the same path.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    assert values["livenessProbe"]["httpGet"]["path"] == "/healthz"


def _build_dir(tmp_path: Path, build: list[tuple[str, str]]) -> tuple[Path, Path]:
    """The build stage's file system as its COPY instructions lay it out (links to the
    checkout); returns the directory standing for ``/`` and the WORKDIR in it."""
    root = tmp_path / "root"
    for keyword, rest in build:
        if keyword != "COPY":
            continue
        source, dest = shlex.split(rest)
        target = root / dest.lstrip("/").rstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((REPO / source).resolve())
    workdir = root / _one(build, "WORKDIR").lstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    return root, workdir


def _build_backend(tmp_path: Path) -> Path:
    """This interpreter's copy of the build backend, importable without installing it."""
    directory = tmp_path / "backend"
    directory.mkdir()
    for module, dist in BUILD_BACKEND.items():
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            pytest.fail(f"{dist} is needed (netweave-core[testing] installs hatchling)")
        (directory / module).symlink_to(Path(spec.origin).parent)
        info = importlib.metadata.distribution(dist)
        path = (
            Path(str(info.locate_file(""))) / f"{dist.replace('-', '_')}-{info.version}.dist-info"
        )
        if path.is_dir():
            (directory / path.name).symlink_to(path)
    return directory


def _run_install(tmp_path: Path, adapters: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    build, _ = _stages(_instructions(RECIPE.read_text()))
    (run,) = [rest for k, rest in build if k == "RUN"]
    root, workdir = _build_dir(tmp_path, build)
    # The RUN line as written, its absolute paths moved under the build directory.
    command = run.replace("/src", str(root / "src")).replace("/opt/", f"{root}/opt/")
    env = {
        **os.environ,
        "ADAPTERS": adapters,
        # The interpreter's pip (the recipe's base image has one); offline, no dependencies.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(_build_backend(tmp_path)),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        # pip reads a false value of this negative option as "no build isolation".
        "PIP_NO_BUILD_ISOLATION": "0",
    }
    result = subprocess.run(
        ["sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    return result, root / "opt" / "netweave"


def test_the_install_step_installs_core_and_the_chosen_adapters(tmp_path: Path) -> None:
    result, venv = _run_install(tmp_path, "helm, argocd")
    assert result.returncode == 0, result.stdout + result.stderr
    listing = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, json; print(json.dumps(["
            "sorted(d.metadata['Name'] for d in m.distributions()),"
            "sorted(e.name for e in m.entry_points(group='netweave.adapters'))]))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    distributions, adapters = json.loads(listing.stdout)
    # netweave-core and exactly the adapters asked for; no pip in the image's environment.
    assert distributions == ["netweave-argocd", "netweave-core", "netweave-helm"]
    assert adapters == ["argocd", "helm"]
    assert (venv / "bin" / "netweave").is_file()
    # Installed, not linked to the checkout (the image keeps no sources).
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "netweave" / "__init__.py").is_file()
    assert not list(site.glob("__editable__*"))


@pytest.mark.parametrize("adapters", ["helm kubernetes", "helm;rm"])
def test_an_unknown_adapter_fails_the_build_naming_it(tmp_path: Path, adapters: str) -> None:
    result, venv = _run_install(tmp_path, adapters)
    assert result.returncode == 2
    bad = re.split(r"[ ,]", adapters)[-1]
    assert f"unknown adapter '{bad}'" in result.stderr
    assert not venv.exists()
