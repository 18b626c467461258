"""The generated corpus of hostile archives (core's test kit, netweave.testing.archives): each
is refused with InvalidInput (400) before Helm sees it, and nothing is written to the
repository or anywhere else."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import AdapterFactory, upload_of
from netweave.errors import InvalidInput
from netweave.testing.archives import (
    CORPUS,
    EXPECTED_REASON,
    LIMITS_FOR,
    NAME,
    TEST_LIMITS,
    VERSION,
    valid_chart,
)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20
    assert set(CORPUS) == set(EXPECTED_REASON)


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(CORPUS))
async def test_hostile_archive_is_refused_and_nothing_is_written(
    case: str, tmp_path: Path, adapter_factory: AdapterFactory
) -> None:
    work = tmp_path / "upload" / "deep" / "er"
    work.mkdir(parents=True)
    archive = CORPUS[case](work / f"{NAME}-{VERSION}.tgz")
    adapter = await adapter_factory({"limits": LIMITS_FOR.get(case, TEST_LIMITS)})
    repo = tmp_path / "repo"
    before = _snapshot(tmp_path)

    with pytest.raises(InvalidInput) as caught:
        await adapter.upload_package(upload_of(archive, NAME, VERSION))

    assert EXPECTED_REASON[case].lower() in caught.value.message.lower(), caught.value.message
    assert caught.value.status == 400
    assert _snapshot(tmp_path) == before
    assert not list(repo.glob("*.tgz"))
    assert not any(p.name == "evil.txt" for p in tmp_path.parent.rglob("evil.txt"))
    assert await adapter.list_packages() == []


async def test_the_same_chart_without_the_hostile_part_is_accepted(
    tmp_path: Path, adapter_factory: AdapterFactory
) -> None:
    """Control: the corpus base chart is fine, so the refusals above are about the attack."""
    archive = valid_chart(tmp_path / f"{NAME}-{VERSION}.tgz")
    adapter = await adapter_factory({"limits": TEST_LIMITS})
    info = await adapter.upload_package(upload_of(archive, NAME, VERSION))
    assert info.backend_ref == f"{NAME}:{VERSION}"
