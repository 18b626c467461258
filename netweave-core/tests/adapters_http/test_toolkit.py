"""core's shared adapter helpers: one deadline rule, one timestamp reading, one values merge."""

from __future__ import annotations

import pytest
from netweave.adapters.polling import poll_until
from netweave.adapters.times import parse_time
from netweave.adapters.values import merge_values
from netweave.errors import BackendTimeout


async def test_returns_the_first_result_that_is_done() -> None:
    seen: list[int] = []

    async def fetch() -> int:
        seen.append(len(seen))
        return len(seen)

    assert await poll_until(fetch, lambda n: n >= 3, within=5, interval=0.001, what="x") == 3
    assert seen == [0, 1, 2]


async def test_the_deadline_raises_backend_timeout_naming_the_wait_and_the_last_state() -> None:
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        return "PROCESSING"

    with pytest.raises(BackendTimeout) as caught:
        await poll_until(
            fetch,
            lambda s: s == "COMPLETED",
            within=0.05,
            interval=0.01,
            what="operation 7 finishing",
            describe=lambda s: f"still {s}",
            details={"op": 7},
        )
    assert (
        str(caught.value) == "operation 7 finishing did not happen within 0.05 s (still PROCESSING)"
    )
    assert caught.value.details == {"op": 7}
    # Bounded: never more than within / interval + 2 reads, whatever the clock does.
    assert 2 <= calls <= 7


async def test_a_result_done_at_the_last_read_is_returned_not_timed_out() -> None:
    async def fetch() -> bool:
        return True

    assert await poll_until(fetch, bool, within=0, interval=0.01, what="x") is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-06T20:00:00Z", "2026-12-06T20:00:00+00:00"),
        ("2026-12-06T20:00:00.5+02:00", "2026-12-06T20:00:00.500000+02:00"),
        ("2026-12-06T20:00:00", "2026-12-06T20:00:00+00:00"),
        (1_765_051_200, "2025-12-06T20:00:00+00:00"),
        (1_765_051_200.25, "2025-12-06T20:00:00.250000+00:00"),
        ("yesterday", None),
        ("", None),
        (None, None),
        (0, None),
        (-5, None),
        (float("nan"), None),
        (1e300, None),
        (True, None),
    ],
)
def test_parse_time_reads_backend_timestamps_and_never_raises(
    value: object, expected: str | None
) -> None:
    parsed = parse_time(value)
    assert (parsed.isoformat() if parsed else None) == expected


def test_merge_values_merges_mappings_and_keeps_null_for_the_backend() -> None:
    base = {"image": {"repository": "nginx", "pullPolicy": "Always"}, "ports": [80], "n": 1}
    change = {"image": {"pullPolicy": None, "tag": "1.27"}, "ports": [8080]}
    merged = merge_values(base, change)
    assert merged == {
        "image": {"repository": "nginx", "pullPolicy": None, "tag": "1.27"},
        "ports": [8080],
        "n": 1,
    }
    # No aliasing: changing the result changes neither input.
    merged["image"]["repository"] = "other"
    merged["ports"].append(1)
    assert base["image"]["repository"] == "nginx"
    assert change["ports"] == [8080]
    # A mapping over a scalar (and a scalar over a mapping) replaces.
    assert merge_values({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge_values({"a": {"b": 2}}, {"a": 3}) == {"a": 3}
