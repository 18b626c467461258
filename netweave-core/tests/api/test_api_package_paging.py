"""Package lists through the real app: keyset pages by opaque marker, and totals that are
counted once per filter, not once per page, yet never hide a change made through the gateway."""

from __future__ import annotations

from typing import Any

import pytest
from support.gateway import Gateway
from support.problems import assert_problem

BASE = "/o2dms/v1/nfDeploymentDescriptors"


async def _walk(gw: Gateway, params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    marker: str | None = None
    for _ in range(50):  # bounded: a marker that never ends would fail here
        query = dict(params, **({"nextpageOpaqueMarker": marker} if marker else {}))
        response = await gw.get(BASE, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        ids += [item["packageId"] for item in body["items"]]
        marker = body.get("nextpageOpaqueMarker")
        if marker is None:
            return ids, pages
    raise AssertionError("the markers never reached the last page")


async def test_markers_walk_every_package_once_in_order_with_the_total(gw: Gateway) -> None:
    for name in ("delta", "alpha", "charlie", "bravo"):
        for version in ("1.0.0", "1.1.0"):
            await gw.register_package(name, version)
    ids, pages = await _walk(gw, {"limit": 3})
    by_offset = (await gw.get(BASE, params={"limit": 100})).json()
    assert ids == [item["packageId"] for item in by_offset["items"]]
    assert ids[:2] == ["alpha-1.0.0", "alpha-1.1.0"] and len(ids) == 8
    assert [len(p["items"]) for p in pages] == [3, 3, 2]
    assert {p["total"] for p in pages} == {8}
    assert "nextpageOpaqueMarker" not in pages[-1]  # the last page says so by its absence
    # A filter travels with the client's query; the marker only says where to start.
    ids, _ = await _walk(gw, {"limit": 1, "version": "1.1.0"})
    assert ids == ["alpha-1.1.0", "bravo-1.1.0", "charlie-1.1.0", "delta-1.1.0"]
    # offset counts from the marker's position
    first = (await gw.get(BASE, params={"limit": 2})).json()
    body = (
        await gw.get(
            BASE,
            params={"limit": 2, "offset": 2, "nextpageOpaqueMarker": first["nextpageOpaqueMarker"]},
        )
    ).json()
    assert [i["packageId"] for i in body["items"]] == ["charlie-1.0.0", "charlie-1.1.0"]


@pytest.mark.parametrize("marker", ["garbage", "k1.", "k1.!!!!", "k1.a b"])
async def test_a_malformed_marker_is_a_400_naming_it(gw: Gateway, marker: str) -> None:
    response = await gw.get(BASE, params={"nextpageOpaqueMarker": marker})
    assert_problem(response, 400, "nextpageOpaqueMarker")


@pytest.mark.parametrize("marker", ["k1.0", "k1.WzEsMl0", "k1.eyJhIjoxfQ", "k1.WyJhIl0"])
async def test_a_well_formed_marker_the_gateway_did_not_give_out_is_a_422_naming_it(
    gw: Gateway, marker: str
) -> None:
    response = await gw.get(BASE, params={"nextpageOpaqueMarker": marker})
    assert_problem(response, 422, "nextpageOpaqueMarker")


async def test_the_total_is_counted_once_per_filter_and_a_change_recounts_it(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        await gw.register_package("app", f"1.0.{i}")
    counts: list[dict[str, Any]] = []
    store = gw.app.state.services.store  # the app's own store (gw.store is a second one)
    count_packages = store.count_packages

    async def counting(**kwargs: Any) -> int:
        counts.append(kwargs)
        return await count_packages(**kwargs)

    monkeypatch.setattr(store, "count_packages", counting)
    _, pages = await _walk(gw, {"limit": 1})
    assert len(pages) == 5 and {p["total"] for p in pages} == {5}
    assert len(counts) == 1  # five pages, one COUNT
    await _walk(gw, {"limit": 2, "name": "app"})
    assert len(counts) == 2  # another filter: its own count
    await gw.register_package("app", "2.0.0")  # a change through this gateway ...
    _, pages = await _walk(gw, {"limit": 4})
    assert {p["total"] for p in pages} == {6}  # ... is never hidden by a kept total
    assert len(counts) == 3
