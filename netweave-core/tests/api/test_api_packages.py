"""nfDeploymentDescriptors through the real app: success and failure paths."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from netweave.errors import BackendUnavailable
from support.gateway import Gateway
from support.memory_adapter import CORRUPT_MARKER
from support.problems import assert_problem

BASE = "/o2dms/v1/nfDeploymentDescriptors"


def upload_files(data: bytes = b"chart-bytes", field: str = "chart") -> dict[str, Any]:
    return {field: ("app-1.0.0.tgz", data, "application/gzip")}


async def package_count(gw: Gateway) -> int:
    return (await gw.store.list_packages(limit=1)).total


async def test_upload_multipart_streams_and_checksums(gw: Gateway) -> None:
    archive = b"\x1f\x8b" + b"a" * 100_000
    response = await gw.post(
        BASE,
        data={"name": "app", "artifactVersion": "1.0.0", "description": "demo"},
        files=upload_files(archive),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["packageId"] == "app-1.0.0"
    assert body["checksum"] == "sha256:" + hashlib.sha256(archive).hexdigest()
    assert body["adapter"] == "mem"
    assert body["state"] == "AVAILABLE"
    assert body["description"] == "demo"
    assert body["extensions"]["memory.size"] == len(archive)
    assert response.headers["location"] == f"{BASE}/app-1.0.0"
    # the adapter's lint-style warning reaches the client
    assert "icon is recommended" in response.headers["warning"]
    # the temporary file is gone once the upload is handled
    assert list((gw.settings.data_dir / "tmp").iterdir()) == []
    got = await gw.get(f"{BASE}/app-1.0.0")
    assert got.status_code == 200
    assert got.json()["checksum"] == body["checksum"]


async def test_upload_accepts_package_field_name(gw: Gateway) -> None:
    response = await gw.post(
        BASE, data={"name": "app", "artifactVersion": "2.0.0"}, files=upload_files(field="package")
    )
    assert response.status_code == 201, response.text


async def test_register_by_uri(gw: Gateway) -> None:
    package = await gw.register_package("web", "0.1.0")
    assert package["packageUri"] == "oci://registry.example/web:0.1.0"
    assert package["extensions"]["memory.source"] == "uri"


async def test_duplicate_is_409_and_nothing_changes(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    response = await gw.post(
        BASE, data={"name": "app", "artifactVersion": "1.0.0"}, files=upload_files()
    )
    body = assert_problem(response, 409)
    assert body["error"] == "AlreadyExists"
    assert await package_count(gw) == 1


async def test_corrupt_archive_is_400_nothing_stored(gw: Gateway) -> None:
    response = await gw.post(
        BASE,
        data={"name": "app", "artifactVersion": "1.0.0"},
        files=upload_files(CORRUPT_MARKER + b"junk"),
    )
    assert_problem(response, 400, "chart")
    assert await package_count(gw) == 0
    assert gw.memory.packages == {}


@pytest.mark.parametrize(
    ("form", "files", "status", "field"),
    [
        ({"name": "app"}, True, 400, "artifactVersion"),
        ({"name": "Bad Name!", "artifactVersion": "1.0.0"}, True, 400, "name"),
        ({"name": "app", "artifactVersion": "1.0.0", "colour": "red"}, True, 400, "colour"),
        ({"name": "app", "artifactVersion": "1.0.0"}, False, 400, "chart"),
        # well-formed, refused for what they name (no such adapter, not this adapter's type)
        ({"name": "app", "artifactVersion": "1.0.0", "adapter": "nope"}, True, 422, "adapter"),
        (
            {"name": "app", "artifactVersion": "1.0.0", "packageType": "zip"},
            True,
            422,
            "packageType",
        ),
    ],
)
async def test_upload_bad_input_is_4xx_naming_the_field(
    gw: Gateway, form: dict[str, str], files: bool, status: int, field: str
) -> None:
    if files:
        response = await gw.post(BASE, data=form, files=upload_files())
    else:
        # a multipart body without the archive part
        response = await gw.post(
            BASE, files={"name": (None, "app"), "artifactVersion": (None, "1")}
        )
    assert_problem(response, status, field)
    assert await package_count(gw) == 0


async def test_malformed_multipart_is_400(gw: Gateway) -> None:
    response = await gw.post(
        BASE,
        content=b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\napp\r\n--xy',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_problem(response, 400)
    response = await gw.post(BASE, content=b"abc", headers={"Content-Type": "multipart/form-data"})
    assert_problem(response, 400)
    assert await package_count(gw) == 0


async def test_oversize_upload_is_413_before_reading(tmp_path: Any) -> None:
    from support.gateway import make_settings, running_gateway

    settings = make_settings(tmp_path / "data", max_upload_bytes=1000)
    async with running_gateway(tmp_path, settings=settings) as gw:
        # announced by Content-Length: refused up front
        response = await gw.post(
            BASE,
            data={"name": "app", "artifactVersion": "1.0.0"},
            files=upload_files(b"x" * 200_000),
        )
        assert_problem(response, 413)

        assert await package_count(gw) == 0
        # refused before anything was read: no temporary file was even started
        assert not (settings.data_dir / "tmp").exists()


async def test_json_registration_bad_input(gw: Gateway) -> None:
    cases: list[tuple[Any, str]] = [
        ({"name": "app", "artifactVersion": "1.0.0", "packageUri": "x", "extra": 1}, "extra"),
        ({"name": "app", "artifactVersion": 5, "packageUri": "x"}, "artifactVersion"),
        ({"name": "app", "artifactVersion": "1.0.0"}, "packageUri"),
    ]
    for body, field in cases:
        assert_problem(await gw.post(BASE, json=body), 400, field)
    # Well-formed, but no such adapter is configured: 422.
    unknown = {"name": "app", "artifactVersion": "1.0.0", "packageUri": "x", "adapter": "zz"}
    assert_problem(await gw.post(BASE, json=unknown), 422, "adapter")
    response = await gw.post(
        BASE, content=b'{"name": "app",', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)
    response = await gw.post(BASE, content=b"name=app", headers={"Content-Type": "text/plain"})
    assert_problem(response, 415)
    assert await package_count(gw) == 0


async def test_json_body_over_limit_is_413(gw: Gateway) -> None:
    big = {"name": "app", "artifactVersion": "1.0.0", "packageUri": "x", "description": "d"}
    big["source"] = {"blob": "z" * (gw.settings.api.max_json_bytes + 10)}  # type: ignore[assignment]
    assert_problem(await gw.post(BASE, json=big), 413)
    assert await package_count(gw) == 0


async def test_list_filters_pagination_and_real_total(gw: Gateway) -> None:
    for i in range(5):
        await gw.register_package("app", f"1.0.{i}")
    await gw.register_package("other", "1.0.0")
    response = await gw.get(BASE, params={"name": "app", "limit": 2, "offset": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 5
    assert [p["artifactVersion"] for p in body["items"]] == ["1.0.1", "1.0.2"]
    assert (body["limit"], body["offset"]) == (2, 1)
    body = (await gw.get(BASE, params={"version": "1.0.0"})).json()
    assert sorted(p["name"] for p in body["items"]) == ["app", "other"]
    body = (await gw.get(BASE, params={"offset": 100})).json()
    assert body == {"items": [], "total": 6, "limit": 100, "offset": 100}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": 10**30}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 10**30}, "offset"),
        ({"limit": "ten"}, "limit"),
        ({"state": "SHINY"}, "state"),
        ({"state": "null"}, "state"),
        ({"limit": ["1", "2"]}, "limit"),
    ],
)
async def test_list_bad_query_is_400_naming_it(
    gw: Gateway, params: dict[str, Any], field: str
) -> None:
    assert_problem(await gw.get(BASE, params=params), 400, field)


async def test_an_adapter_filter_naming_no_adapter_matches_nothing(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    body = (await gw.get(BASE, params={"adapter": "nope"})).json()
    assert (body["items"], body["total"]) == ([], 0)
    assert (await gw.get(BASE, params={"adapter": "mem"})).json()["total"] == 1


async def test_backend_packages_are_listed(gw: Gateway) -> None:
    gw.memory.add_backend_package("outside", "3.0.0")
    body = (await gw.get(BASE)).json()
    assert [p["packageId"] for p in body["items"]] == ["outside-3.0.0"]
    assert body["items"][0]["extensions"] == {"memory.source": "backend"}
    got = await gw.get(f"{BASE}/outside-3.0.0")
    assert got.status_code == 200


async def test_backend_listing_failure_still_serves_the_store(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.fail("list_packages", BackendUnavailable("repository down"), times=5)
    services = gw.app.state.services
    services.packages._synced_at.clear()  # force a fresh listing
    body = (await gw.get(BASE)).json()
    assert body["total"] == 1


async def test_get_unknown_and_invalid_ids(gw: Gateway) -> None:
    body = assert_problem(await gw.get(f"{BASE}/nope-1.0.0"), 404)
    assert body["error"] == "NotFound"
    assert body["instance"] == f"{BASE}/nope-1.0.0"
    assert_problem(await gw.get(f"{BASE}/-bad%20id"), 400, "packageId")


async def test_deprecate_restore_and_invalid_state(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    url = f"{BASE}/app-1.0.0"
    response = await gw.patch(url, json={"state": "DEPRECATED"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "DEPRECATED"
    assert (await gw.get(BASE, params={"state": "DEPRECATED"})).json()["total"] == 1
    response = await gw.patch(url, json={"state": "AVAILABLE"})
    assert response.json()["state"] == "AVAILABLE"
    assert_problem(await gw.patch(url, json={"state": "IN_USE"}), 400, "state")
    assert_problem(await gw.patch(url, json={"state": "NOPE"}), 400, "state")
    assert_problem(await gw.patch(url, json={"state": "DEPRECATED", "x": 1}), 400, "x")
    assert_problem(
        await gw.patch(url, content=b"state=DEPRECATED", headers={"Content-Type": "text/plain"}),
        415,
    )
    assert_problem(await gw.patch(f"{BASE}/nope-1", json={"state": "DEPRECATED"}), 404)
    assert (await gw.store.get_package("app-1.0.0")).state == "AVAILABLE"  # type: ignore[union-attr]


async def test_delete_package(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    response = await gw.delete(f"{BASE}/app-1.0.0")
    assert response.status_code == 204
    assert gw.memory.packages == {}
    assert_problem(await gw.get(f"{BASE}/app-1.0.0"), 404)
    assert_problem(await gw.delete(f"{BASE}/app-1.0.0"), 404)


async def test_delete_in_use_is_409_naming_deployments_then_force(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0", name="web")
    got = (await gw.get(f"{BASE}/app-1.0.0")).json()
    assert got["state"] == "IN_USE"
    body = assert_problem(await gw.delete(f"{BASE}/app-1.0.0"), 409)
    assert body["error"] == "PackageInUse"
    assert body["details"]["deployments"] == [deployment["deploymentId"]]
    assert body["details"]["deploymentNames"] == ["web"]
    assert await package_count(gw) == 1
    response = await gw.delete(f"{BASE}/app-1.0.0", params={"force": "true"})
    assert response.status_code == 204
    assert await package_count(gw) == 0


async def test_package_metrics_count(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    await gw.post(BASE, data={"name": "app", "artifactVersion": "1.0.0"}, files=upload_files())
    await gw.get(BASE)
    await gw.delete(f"{BASE}/app-1.0.0")
    text = (await gw.client.get("/metrics")).text
    assert 'o2dms_package_uploads_total{adapter="mem",status="success"} 1.0' in text
    assert 'o2dms_package_uploads_total{adapter="mem",status="failure"} 1.0' in text
    assert 'o2dms_package_deletions_total{adapter="mem",status="success"} 1.0' in text
    assert 'o2dms_package_list_duration_seconds_count{adapter="all"} 1.0' in text


async def test_list_metric_labels_only_configured_adapters(gw: Gateway) -> None:
    """A client's ``adapter`` filter names the list's metric series only when it names a
    configured adapter: made-up values would each add a series /metrics keeps forever."""
    await gw.get(BASE, params={"adapter": "mem"})
    for i in range(20):
        response = await gw.get(BASE, params={"adapter": f"made-up-{i}"})
        assert response.status_code == 200 and response.json()["items"] == []
    text = (await gw.client.get("/metrics")).text
    assert "made-up" not in text
    assert 'o2dms_package_list_duration_seconds_count{adapter="mem"} 1.0' in text
    assert 'o2dms_package_list_duration_seconds_count{adapter="unknown"} 20.0' in text
    assert 'o2dms_packages_total{adapter="mem",status="AVAILABLE"} 0.0' in text
    assert "o2dms_http_requests_total" in text
    assert "o2dms_operations_running" in text


async def test_chunked_oversize_upload_is_413_while_streaming(tmp_path: Any) -> None:
    """No Content-Length (chunked): the bytes are counted while they arrive (real server)."""
    import httpx
    from support.gateway import AUTH, make_settings, served_gateway

    settings = make_settings(tmp_path / "data", max_upload_bytes=1000)

    async def chunks() -> Any:
        yield b'--b\r\nContent-Disposition: form-data; name="chart"; filename="a.tgz"\r\n\r\n'
        for _ in range(1000):
            yield b"y" * 100
        yield b"\r\n--b--\r\n"

    async with served_gateway(tmp_path, settings=settings) as (url, adapters, store):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.post(
                BASE,
                content=chunks(),
                headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
            )
        assert_problem(response, 413)
        assert (await store.list_packages()).total == 0
        assert adapters["mem"].calls_to("upload_package") == []
        assert list((settings.data_dir / "tmp").iterdir()) == []


async def test_later_backend_refreshes_run_in_the_background(gw: Gateway) -> None:
    import asyncio

    await gw.get(BASE)  # first listing: awaited
    services = gw.app.state.services
    services.packages._listing_ttl = 0.0
    gate = gw.memory.hang("list_packages")
    gw.memory.add_backend_package("late", "1.0.0")
    # the backend listing is stuck, yet the list answers from the store
    body = (await asyncio.wait_for(gw.get(BASE, params={"limit": 5}), 5)).json()
    assert body["total"] == 0
    gate.set()
    for _ in range(200):
        listed = (await gw.get(BASE, params={"name": "late"})).json()
        if listed["total"] == 1:
            break
        await asyncio.sleep(0.02)
    assert listed["total"] == 1
