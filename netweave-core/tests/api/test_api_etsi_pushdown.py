"""SOL013 filters pushed down to SQL keep their exact semantics: for a varied set of VNF
instances and occurrences (names that look like date-times, hold LIKE wildcards, differ only in
case or are absent; instantiated and not; two packages) every filter answers the same items,
in the same order, with the pushdown as without it — on SQLite and on PostgreSQL, whose LIKE and
NULL handling differ. Paging through a pushed-down filter visits each match once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.api.etsi import sol013, vnflcm
from netweave.services.vnflcm import VnfLcmService
from netweave.testing import require_backend
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.postgres import POSTGRES_URL, temporary_database

V2 = "/vnflcm/v2"
HEADERS = {"Version": "2.3.0", "Accept": "application/json"}
NAMES = [
    "alpha", "ALPHA", "al%pha", "al_pha", "2026-01-02T03:04:05Z", "2026-01-02", "beta",
    None, "gamma", "a'b", "x,y", "",
]  # fmt: skip
FILTERS = [
    "(eq,vnfInstanceName,alpha)",
    "(neq,vnfInstanceName,alpha)",
    "(in,vnfInstanceName,alpha,beta,gamma)",
    "(nin,vnfInstanceName,alpha,beta)",
    "(cont,vnfInstanceName,alp)",
    "(cont,vnfInstanceName,%)",
    "(cont,vnfInstanceName,_)",
    "(ncont,vnfInstanceName,a)",
    "(eq,vnfInstanceName,2026-01-02T03:04:05+00:00)",
    "(gt,vnfInstanceName,2026-01-01)",
    "(eq,vnfInstanceName,'a''b')",
    "(eq,vnfInstanceName,'x,y')",
    "(eq,vnfInstanceName,)",
    "(eq,instantiationState,INSTANTIATED)",
    "(neq,instantiationState,NOT_INSTANTIATED)",
    "(eq,instantiationState,NOT_INSTANTIATED)",
    "(eq,vnfdId,app-1.0.0)",
    "(eq,vnfdId,app-2.0.0)",
    "(neq,vnfdId,app-1.0.0)",
    "(eq,vnfdId,app-2.0.0);(eq,instantiationState,INSTANTIATED)",
    "(cont,vnfInstanceDescription,d1)",
    "(eq,vnfProductName,app);(cont,vnfInstanceName,a)",
    "(in,vnfdId,app-1.0.0,app-2.0.0);(nin,vnfInstanceName,alpha,beta)",
    "(eq,vnfSoftwareVersion,2.0.0);(neq,instantiationState,INSTANTIATED)",
    "(eq,id,none-such)",
    # Nested JSON attributes (pre-filtered on SQLite, checked in Python everywhere).
    "(eq,metadata/i,5)",
    "(in,metadata/i,0,10)",
    "(eq,metadata/i,5.0)",
    "(eq,metadata/tags,red)",
    "(eq,metadata/flag,true)",
    "(eq,metadata/at,2026-01-02T03:04:05+00:00)",
    "(eq,metadata/deep/k,v)",
    "(eq,vnfConfigurableProperties/p,1)",
]
#: Selectors for the joined page (plain attributes only) and the full representation.
SELECTORS: list[dict[str, str]] = [
    {},
    {"exclude_default": ""},
    {"fields": "metadata"},
    {"all_fields": ""},
    {"exclude_fields": "vnfInstanceName"},
    {"exclude_fields": "vnfConfigurableProperties,vimConnectionInfo,instantiatedVnfInfo,"
                       "metadata,extensions,vnfInstanceDescription"},
]  # fmt: skip
OP_FILTERS = [
    "(eq,operation,INSTANTIATE)",
    "(neq,operation,INSTANTIATE)",
    "(in,operation,MODIFY_INFO,SCALE)",
    "(eq,operation,INSTANTIATE);(eq,operationState,COMPLETED)",
    "(cont,operation,INST)",
]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str | None]:
    with temporary_database("nw_etsi_pushdown", required=False) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None
) -> AsyncIterator[Gateway]:
    store_url = None
    if request.param == "postgresql":
        if pg_url is None:
            require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
        store_url = pg_url
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], store_url=store_url
    ) as gw:
        if store_url is not None:
            for table in ("vnf_lcm_op_occs", "vnf_instances", "operations", "deployments",
                          "packages", "idempotency_keys"):  # fmt: skip
                async with gw.store.engine.begin() as conn:
                    await conn.exec_driver_sql(f"DELETE FROM {table}")
        yield gw


async def _seed(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    await gw.register_package("app", "2.0.0")
    for i, name in enumerate(NAMES):
        body: dict[str, Any] = {"vnfdId": "app-1.0.0" if i % 3 else "app-2.0.0"}
        if name is not None:
            body["vnfInstanceName"] = name
        if i % 4 == 0:
            body["vnfInstanceDescription"] = f"d{i}"
        created = await gw.post(f"{V2}/vnf_instances", json=body, headers=HEADERS)
        assert created.status_code == 201, created.text
        instance_id = created.json()["id"]
        if i % 2 == 0:
            op = await gw.post(
                f"{V2}/vnf_instances/{instance_id}/instantiate",
                json={"flavourId": "default", "additionalParams": {"releaseName": f"r{i}"}},
                headers=HEADERS,
            )
            assert op.status_code == 202, op.text
            await gw.wait_operation(op.headers["location"].rsplit("/", 1)[1])
        if i % 5 == 0:
            patched = await gw.patch(
                f"{V2}/vnf_instances/{instance_id}",
                json={"metadata": _metadata(i)},
                headers=HEADERS,
            )
            assert patched.status_code == 202, patched.text
        if i == 4:
            # Instantiated on app-1.0.0, then changed to app-2.0.0: its vnfdId is the new one.
            op = await gw.post(
                f"{V2}/vnf_instances/{instance_id}/change_vnfpkg",
                json={"vnfdId": "app-2.0.0"},
                headers=HEADERS,
            )
            assert op.status_code == 202, op.text
            await gw.wait_operation(op.headers["location"].rsplit("/", 1)[1])


def _metadata(i: int) -> dict[str, Any]:
    """Nested values of each JSON type, arrays among them (an array matches by an element)."""
    return {
        "i": i if i != 10 else "10",
        "tags": ["red", "blue"] if i == 0 else "red" if i == 5 else [],
        "flag": i == 5,
        "at": "2026-01-02T03:04:05Z",
        "deep": [{"k": "v"}] if i == 10 else {"k": "w"},
    }


async def _three_instances(gw: Gateway) -> list[str]:
    """Instances named one, two and three of package app-1.0.0, in that order."""
    await gw.register_package("app", "1.0.0")
    ids = []
    for name in ("one", "two", "three"):
        created = await gw.post(
            f"{V2}/vnf_instances",
            json={"vnfdId": "app-1.0.0", "vnfInstanceName": name},
            headers=HEADERS,
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


async def _rename(gw: Gateway, instance_id: str, name: str) -> None:
    """PATCH the instance's name, with the ETag just read as If-Match."""
    url = f"{V2}/vnf_instances/{instance_id}"
    current = await gw.get(url, headers=HEADERS)
    patched = await gw.patch(
        url,
        json={"vnfInstanceName": name},
        headers={**HEADERS, "If-Match": current.headers["etag"],
                 "Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    assert patched.status_code == 202, patched.text


async def _ids(gw: Gateway, resource: str, expression: str) -> list[str]:
    response = await gw.get(f"{V2}/{resource}", params={"filter": expression}, headers=HEADERS)
    assert response.status_code == 200, (expression, response.text)
    return [item["id"] for item in response.json()]


async def test_pushed_down_filters_answer_as_python_does(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(gateway)
    pushed = {f: await _ids(gateway, "vnf_instances", f) for f in FILTERS}
    pushed_ops = {f: await _ids(gateway, "vnf_lcm_op_occs", f) for f in OP_FILTERS}
    assert sum(map(len, pushed.values())) > 50 and all(pushed_ops.values())
    # The same filters with nothing pushed down: Python alone over every row.
    monkeypatch.setattr(sol013, "pushdown", lambda terms, *args: [])
    monkeypatch.setattr(vnflcm, "SUMMARY_PAGES", False)
    for expression, ids in pushed.items():
        assert await _ids(gateway, "vnf_instances", expression) == ids, expression
    for expression, ids in pushed_ops.items():
        assert await _ids(gateway, "vnf_lcm_op_occs", expression) == ids, expression


async def test_paging_through_a_pushed_down_filter(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(gateway)
    expected = await _ids(gateway, "vnf_instances", "(eq,vnfdId,app-1.0.0)")
    monkeypatch.setattr(vnflcm, "PAGE_SIZE", 2)
    assert len(expected) > 2 * 2  # several pages
    seen: list[str] = []
    path = f"{V2}/vnf_instances?filter=(eq,vnfdId,app-1.0.0)"
    for _ in range(20):  # bounded
        response = await gateway.get(path, headers=HEADERS)
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()]
        link = response.headers.get("link")
        if link is None:
            break
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert match is not None, link
        path = match.group(1).split("://", 1)[1].split("/", 1)[1]
        path = "/" + path
    assert seen == expected


async def test_joined_pages_answer_as_the_full_representation_does(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page read as one joined query (exact filter, plain attributes) is the page the full
    representation gives, body for body, on the gateway's root and a deployment manager's;
    and a changed package's new vnfdId is found by the filter."""
    await _seed(gateway)
    roots = [V2, f"/deploymentManagers/mem{V2}"]

    async def answers() -> dict[tuple[str, str, str], Any]:
        found: dict[tuple[str, str, str], Any] = {}
        for root in roots:
            for expression in [None, *FILTERS]:
                for selector in SELECTORS:
                    params = dict(selector)
                    if expression is not None:
                        params["filter"] = expression
                    response = await gateway.get(
                        f"{root}/vnf_instances", params=params, headers=HEADERS
                    )
                    key = (root, str(expression), str(selector))
                    found[key] = (response.status_code, response.json())
        return found

    joined = await answers()
    changed = joined[(V2, "(eq,vnfdId,app-2.0.0)", "{}")][1]
    assert any(item.get("vnfInstanceName") == NAMES[4] for item in changed), changed
    assert all(status == 200 for status, _ in joined.values())
    monkeypatch.setattr(vnflcm, "SUMMARY_PAGES", False)
    monkeypatch.setattr(sol013, "pushdown", lambda terms, *args: [])
    assert await answers() == joined


async def test_a_joined_page_shows_an_instance_changed_since_it_was_read(gateway: Gateway) -> None:
    """The page's items kept from an earlier read are used only for rows unchanged since: a
    renamed and an instantiated instance are rendered again, their neighbours kept."""
    ids = await _three_instances(gateway)
    url = f"{V2}/vnf_instances"
    params = {"filter": "(eq,vnfdId,app-1.0.0)"}

    async def page() -> list[tuple[str, str]]:
        response = await gateway.get(url, params=params, headers=HEADERS)
        assert response.status_code == 200, response.text
        return [(i["vnfInstanceName"], i["instantiationState"]) for i in response.json()]

    assert await page() == [("one", "NOT_INSTANTIATED"), ("two", "NOT_INSTANTIATED"),
                            ("three", "NOT_INSTANTIATED")]  # fmt: skip
    await _rename(gateway, ids[1], "renamed")
    op = await gateway.post(
        f"{url}/{ids[2]}/instantiate",
        json={"flavourId": "default", "additionalParams": {"releaseName": "r3"}},
        headers=HEADERS,
    )
    assert op.status_code == 202, op.text
    await gateway.wait_operation(op.headers["location"].rsplit("/", 1)[1])
    assert await page() == [("one", "NOT_INSTANTIATED"), ("renamed", "NOT_INSTANTIATED"),
                            ("three", "INSTANTIATED")]  # fmt: skip


async def test_pages_of_kept_items_answer_as_their_first_reading(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging again through unchanged instances answers the same items and the same ``Link``
    markers, checked by each row's stamp alone (the rendered columns are not read again); a
    renamed instance sends its page back to a full read, once."""
    await _seed(gateway)
    monkeypatch.setattr(vnflcm, "PAGE_SIZE", 2)
    full_reads: list[Any] = []
    summary_page = VnfLcmService.summary_page

    async def counted(self: VnfLcmService, *args: Any) -> Any:
        full_reads.append(args[0])
        return await summary_page(self, *args)

    monkeypatch.setattr(VnfLcmService, "summary_page", counted)

    async def walk() -> list[tuple[list[dict[str, Any]], str | None]]:
        pages = []
        path = f"{V2}/vnf_instances?filter=(in,vnfdId,app-1.0.0,app-2.0.0)"
        for _ in range(20):  # bounded
            response = await gateway.get(path, headers=HEADERS)
            assert response.status_code == 200, response.text
            link = response.headers.get("link")
            pages.append((response.json(), link))
            if link is None:
                return pages
            path = "/" + link[1:].split(">", 1)[0].split("://", 1)[1].split("/", 1)[1]
        raise AssertionError("more than 20 pages")

    first = await walk()
    assert len(first) == 6 and len(full_reads) == 6  # twelve instances, two a page
    assert await walk() == first
    assert len(full_reads) == 6  # every item kept: stamps only
    await _rename(gateway, first[2][0][1]["id"], "renamed")
    third = await walk()
    assert len(full_reads) == 7  # the renamed instance's page only
    assert third[2][0][1]["vnfInstanceName"] == "renamed"
    assert [page for i, page in enumerate(third) if i != 2] == [
        page for i, page in enumerate(first) if i != 2
    ]


async def test_a_page_read_again_in_full_answers_the_store_as_it_is_then(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a page's stamps name items not kept, the page is read again in full: an instance
    renamed and one deleted between the two reads show as the second read found them (renamed,
    absent), and what was kept for them is not answered."""
    ids = await _three_instances(gateway)
    url = f"{V2}/vnf_instances"
    params = {"filter": "(eq,vnfdId,app-1.0.0)"}

    async def names() -> list[str]:
        response = await gateway.get(url, params=params, headers=HEADERS)
        assert response.status_code == 200, response.text
        return [item["vnfInstanceName"] for item in response.json()]

    assert await names() == ["one", "two", "three"]  # every item kept from here on
    await _rename(gateway, ids[0], "first")  # its stamp changes: the page is read in full
    summary_page = VnfLcmService.summary_page

    async def meanwhile(self: VnfLcmService, *args: Any) -> Any:
        # Between the stamps and the full read, as another replica would: a rename, a delete.
        await self._store.update_vnf_instance(ids[1], name="second")
        await self._store.delete_vnf_instance(ids[2])
        return await summary_page(self, *args)

    monkeypatch.setattr(VnfLcmService, "summary_page", meanwhile)
    assert await names() == ["first", "second"]
    monkeypatch.setattr(VnfLcmService, "summary_page", summary_page)
    assert await names() == ["first", "second"]  # now from kept items, by the new stamps
