"""The gateway picks a dependency's version itself (the Helm SDK never fetches): its reading of
Helm's version ranges must be Helm's. Helm's own judgement is the oracle — ``helm dependency
list`` says ``unpacked`` for a vendored subchart whose version the range allows and ``wrong
version`` otherwise — over every pair of the versions and ranges below."""

from __future__ import annotations

from pathlib import Path

import helm_python
import pytest
import yaml
from netweave_helm.dependencies import best_version, parse_constraint, satisfies

VERSIONS = (
    "0.0.3",
    "0.0.4",
    "0.1.0",
    "0.2.5",
    "1.0.0",
    "1.2.0",
    "1.2.3",
    "1.2.5",
    "1.3.0",
    "1.3.0-rc.1",
    "2.0.0",
    "2.0.0-alpha",
    "2.1.0-beta.2",
    "10.4.1",
    "1.2.3+build.5",
)
RANGES = (
    "*",
    "1",
    "1.2",
    "1.2.3",
    "=1.2.3",
    "v1.2.3",
    "!=1.2.3",
    "!=1.2",
    ">1",
    ">1.2",
    ">1.2.3",
    ">=1.2",
    ">= 1.2.3",
    "=>1.2",
    "<2",
    "<1.3",
    "<1.2.3",
    "<=1",
    "<=1.2",
    "=<1.2.3",
    "~1",
    "~1.2",
    "~ 1.2",
    "~1.2.3",
    "~>1.2",
    "~1.3.0-rc.0",
    "^1.2.3",
    "^1.2",
    "^1.x",
    "^0.2.3",
    "^0.0.3",
    "^0",
    "^0.0",
    "^2.0.0-alpha",
    "1.2.x",
    "1.x",
    "1.*",
    "2.x.x",
    "x",
    "1.2 - 1.3.0",
    ">=1.2.0 <2.0.0",
    ">=1.2.0, <2.0.0",
    "<1.0.0 || >=2.0.0",
    ">=2.0.0-0",
    ">=2.0.0-0 <3",
    "<3 >=1.3.0-rc.0",
    ">=1.0.0-0 <2 || ^0.2",
    "1.2.3-beta",
    ">=0.0.0",
)


def helm_verdicts(root: Path, version: str) -> list[str]:
    """Helm's status of one vendored subchart at ``version`` against every range (one
    dependency per range, told apart by alias)."""
    chart = root / version / "top"
    (chart / "charts" / "sub").mkdir(parents=True)
    dependencies = [
        {"name": "sub", "version": r, "alias": f"a{i}", "repository": "https://example.invalid"}
        for i, r in enumerate(RANGES)
    ]
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v2", "name": "top", "version": "1.0.0", "dependencies": dependencies}
        )
    )
    (chart / "charts" / "sub" / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "sub", "version": version})
    )
    return [str(d["status"]) for d in helm_python.dependency_list(str(chart))]


def test_every_range_reads_as_helm_reads_it(tmp_path: Path) -> None:
    disagreements = []
    for version in VERSIONS:
        for version_range, status in zip(RANGES, helm_verdicts(tmp_path, version), strict=True):
            assert status in {"unpacked", "wrong version"}, (version, version_range, status)
            if satisfies(version, version_range) != (status == "unpacked"):
                disagreements.append((version, version_range, status))
    assert disagreements == []


def test_the_highest_allowed_version_is_picked() -> None:
    assert best_version(VERSIONS, "^1.2.0") == "1.3.0"
    assert best_version(VERSIONS, "~1.2") == "1.2.5"
    assert best_version(VERSIONS, ">=2.0.0-0 <3") == "2.1.0-beta.2"
    assert best_version(VERSIONS, "*") == "10.4.1"
    assert best_version(VERSIONS, "^3") is None


@pytest.mark.parametrize("text", ["", "  ", "latest", "1.2.3.4", ">=", "1.2 -", "~>", "a || b"])
def test_what_is_no_range_is_refused(text: str) -> None:
    # Helm refuses these too (an empty version is "invalid version" in its dependency list).
    with pytest.raises(ValueError, match="range"):
        parse_constraint(text)
