"""A VNF instance list page asked again while nothing was committed is answered without reading
the store again (SQLite), with the same bytes; each apiRoot and selector keeps its own body; a
change is seen by the next page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from netweave.api.etsi import vnflcm
from support.gateway import running_gateway

V2 = "/vnflcm/v2"
HEADERS = {"Version": "2.3.0", "Accept": "application/json"}
ROOTS = [V2, f"/deploymentManagers/mem{V2}"]
SELECTORS: list[dict[str, str]] = [{}, {"exclude_fields": "vnfInstanceName"}]


async def test_a_page_asked_again_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(tmp_path) as gw:
        await gw.register_package("app", "1.0.0")
        ids = []
        for n in range(3):
            created = await gw.post(
                f"{V2}/vnf_instances",
                json={"vnfdId": "app-1.0.0", "vnfInstanceName": f"n{n}"},
                headers=HEADERS,
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        reads = 0
        store = gw.app.state.services.store  # the app's own store (gw.store is a second one)
        driver_rows = store._driver_rows

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return driver_rows(*args, **kwargs)

        monkeypatch.setattr(store, "_driver_rows", counted)

        async def answers() -> dict[tuple[str, str], bytes]:
            found = {}
            for root in ROOTS:
                for selector in SELECTORS:
                    response = await gw.get(
                        f"{root}/vnf_instances",
                        params={"filter": "(eq,vnfdId,app-1.0.0)", **selector},
                        headers=HEADERS,
                    )
                    assert response.status_code == 200, response.text
                    found[(root, str(selector))] = response.content
            return found

        first = await answers()
        assert reads >= len(ROOTS)  # each root's page (another adapter condition) read
        read_first = reads
        assert await answers() == first
        assert reads == read_first  # nothing committed since: none read again
        # The bodies kept are those the full representation gives, for each root and selector.
        monkeypatch.setattr(vnflcm, "SUMMARY_PAGES", False)
        assert await answers() == first
        monkeypatch.setattr(vnflcm, "SUMMARY_PAGES", True)

        patched = await gw.patch(
            f"{V2}/vnf_instances/{ids[1]}", json={"vnfInstanceName": "renamed"}, headers=HEADERS
        )
        assert patched.status_code == 202, patched.text
        changed = await answers()
        assert reads > read_first
        for root in ROOTS:
            names = [item["vnfInstanceName"] for item in json.loads(changed[(root, "{}")])]
            assert names == ["n0", "renamed", "n2"]
