"""A plain install (no ``[testing]`` extra) imports cleanly.

The test kit lives in netweave-core (the set of distributions is fixed), so nothing outside
``netweave.testing`` may need what only the ``[testing]`` extras bring. Each distribution is
imported in a fresh interpreter where every module that only its testing extra provides is made
unimportable, the way it would be missing after ``pip install netweave-<x>``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

DISTRIBUTIONS = {
    "netweave-core": "netweave",
    "netweave-helm": "netweave_helm",
    "netweave-argocd": "netweave_argocd",
    "netweave-flux": "netweave_flux",
    "netweave-onap": "netweave_onap",
    "netweave-osm": "netweave_osm",
}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _requirements(dist: str, *, extra: str | None) -> list[str]:
    """Direct requirements of ``dist``: the unconditional ones, or those of one extra only."""
    found = []
    for req in metadata.requires(dist) or []:
        marker = req.split(";", 1)[1] if ";" in req else ""
        wanted = (
            "extra ==" not in marker
            if extra is None
            else bool(re.search(rf"extra\s*==\s*['\"]{extra}['\"]", marker))
        )
        if wanted:
            found.append(req)
    return found


def _closure(names: list[str]) -> set[str]:
    """Every distribution reachable by unconditional requirements and requested extras."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        req = todo.pop()
        name = _name(req)
        if name in seen:
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-conditional dependency not installed here
        seen.add(name)
        todo += _requirements(name, extra=None)
        extras = re.search(r"\[([^\]]+)\]", req.split(";", 1)[0])
        for extra in extras.group(1).split(",") if extras else []:
            todo += _requirements(name, extra=extra.strip())
    return seen


def _top_level_modules(dists: set[str]) -> set[str]:
    provided = metadata.packages_distributions()
    return {
        module
        for module, owners in provided.items()
        if any(owner.lower().replace("_", "-") in dists for owner in owners)
    }


def _testing_only_modules(dist: str) -> set[str]:
    plain = _closure([dist])
    with_testing = _closure([dist, *_requirements(dist, extra="testing")])
    # A module also shipped by a plain-install distribution stays importable.
    return _top_level_modules(with_testing - plain) - _top_level_modules(plain)


IMPORT_ALL = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys

    blocked = set(json.loads(sys.argv[1]))
    package = sys.argv[2]

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (testing extra)", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    root = importlib.import_module(package)
    imported = 1
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.startswith("netweave.testing") or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        imported += 1
    print(imported)
    """
)


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_plain_install_imports_without_the_testing_extra(dist: str) -> None:
    blocked = _testing_only_modules(dist)
    # The extras really differ from a plain install: otherwise this test would prove nothing.
    assert "pytest" in blocked or dist != "netweave-core"
    assert blocked, f"{dist}: its testing extra adds nothing to block"
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, json.dumps(sorted(blocked)), DISTRIBUTIONS[dist]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"{dist} needs a testing-only module outside netweave.testing:\n{result.stderr[-3000:]}"
    )
    assert int(result.stdout.strip().splitlines()[-1]) > 3


def test_the_blocker_catches_a_production_import_of_a_testing_module() -> None:
    # Proves the check can fail: a module importing pytest is refused under the same blocker.
    code = IMPORT_ALL.replace("root = importlib.import_module(package)", "import pytest")
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(["pytest"]), "netweave"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "testing extra" in result.stderr
