"""SOL005 VNF package subscriptions and notifications on ``/vnfpkgm/v2`` through the real app
(memory adapter) with a callback endpoint on 127.0.0.1 (``netweave.testing.etsi_notify``).

Every request and response is validated against the SOL005 contract, every notification
received against the SOL005 notification types. What is checked is the outcome: what reached
each subscription's callback (filters applied, once per id), what is stored, and that a
callback that is down gets its notifications later from the outbox."""

from __future__ import annotations

import base64
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from netweave.config import NotificationSettings
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi_notify import CallbackSink, callback_sink
from netweave.testing.postgres import temporary_database
from netweave.testing.vnfpkgm import (
    build_csar,
    sol005_pkgm_notification_validator,
    sol005_vnfpkgm_contract,
    vnfd_document,
)
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
V2 = "/vnfpkgm/v2"
HEADERS = {"Version": "2.4.0"}
ONBOARDING = "VnfPackageOnboardingNotification"
CHANGE = "VnfPackageChangeNotification"


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol005_vnfpkgm_contract(SHARED)


@pytest.fixture(scope="module")
def check_notification() -> Any:
    return sol005_pkgm_notification_validator(SHARED)


def settings_for(tmp_path: Path) -> Any:
    settings = make_settings(tmp_path / "data")
    settings.notifications = NotificationSettings(
        allowed_cidrs=["127.0.0.0/8"],
        poll_interval=0.02,
        settle_seconds=0.02,
        backoff_base=0.05,
        backoff_max=0.2,
        max_attempts=50,
        timeout=3.0,
    )
    return settings


async def call(
    gw: Gateway,
    contract: ContractValidator,
    method: str,
    path: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {**HEADERS, **headers}
    if content is not None:
        response = await gw.request(method, V2 + path, content=content, headers=sent)
    else:
        if body is not None and method in {"POST", "PATCH"}:
            contract.validate_request(method, path, body=body)
        response = await gw.request(method, V2 + path, json=body, headers=sent)
    kind = response.headers.get("content-type", "")
    answer = response.json() if response.content and "json" in kind else None
    contract.validate_response(
        method, path, response.status_code, answer, headers=dict(response.headers)
    )
    return response


def chart(tmp_path: Path, name: str, version: str = "1.0.0") -> bytes:
    path = tmp_path / f"{name}-{version}.tgz"
    data = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


async def subscribe(
    gw: Gateway, contract: ContractValidator, sink: CallbackSink, flt: dict[str, Any] | None
) -> str:
    body: dict[str, Any] = {"callbackUri": sink.url}
    if flt is not None:
        body["filter"] = flt
    created = await call(gw, contract, "POST", "/subscriptions", body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == created.json()["_links"]["self"]["href"]
    return str(created.json()["id"])


async def onboard(
    gw: Gateway, contract: ContractValidator, content: bytes, media: str
) -> tuple[str, str]:
    """A VNF package made and uploaded through vnfpkgm: (vnfPkgId, vnfdId)."""
    pkg = (await call(gw, contract, "POST", "/vnf_packages", {})).json()["id"]
    put = await call(
        gw, contract, "PUT", f"/vnf_packages/{pkg}/package_content", content=content,
        **{"Content-Type": media},
    )  # fmt: skip
    assert put.status_code == 202, put.text
    got = await call(gw, contract, "GET", f"/vnf_packages/{pkg}")
    return pkg, str(got.json()["vnfdId"])


def story(bodies: list[dict[str, Any]], subscription: str) -> list[tuple[str, ...]]:
    """(type, vnfPkgId, vnfdId[, changeType, operationalState]) received by one subscription."""
    out = []
    for body in bodies:
        if body["subscriptionId"] != subscription:
            continue
        item: tuple[str, ...] = (body["notificationType"], body["vnfPkgId"], body["vnfdId"])
        if body["notificationType"] == CHANGE:
            item += (body["changeType"], body.get("operationalState", "-"))
        out.append(item)
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Any:
    """SQLite (the notifier's subscription list cached between changes) or PostgreSQL (read in
    each change's transaction)."""
    if request.param == "sqlite":
        yield None
        return
    with temporary_database("nw_pkgm_notify") as url:
        yield url


async def test_onboarding_state_change_and_deletion_notify_through_filters(
    tmp_path: Path,
    contract: ContractValidator,
    check_notification: Any,
    store_url: str | None,
) -> None:
    settings = settings_for(tmp_path)
    with callback_sink() as sink:
        async with running_gateway(
            tmp_path, adapters=[MemoryAdapter("mem")], settings=settings, store_url=store_url
        ) as gw:
            everything = await subscribe(gw, contract, sink, None)
            by_vnfd = await subscribe(gw, contract, sink, {"vnfdId": ["vnfd-42"]})
            by_product = await subscribe(
                gw, contract, sink,
                {"vnfProductsFromProviders": [
                    {"vnfProvider": "netweave", "vnfProducts": [{"vnfProductName": "bare"}]}
                ]},
            )  # fmt: skip
            disabling = await subscribe(
                gw, contract, sink,
                {"notificationTypes": [CHANGE], "operationalState": ["DISABLED"]},
            )  # fmt: skip
            assert len(sink.gets) == 4  # each callback tested before it was stored

            # A CSAR, a bare chart through vnfpkgm, a package registered natively.
            csar = build_csar(
                tmp_path / "p.csar",
                vnfd=vnfd_document("vnfd-42"),
                chart=_write(tmp_path / "web-1.0.0.tgz", chart(tmp_path, "web")),
            )
            csar_pkg, csar_vnfd = await onboard(gw, contract, csar.read_bytes(), "application/zip")
            bare_pkg, bare_vnfd = await onboard(
                gw, contract, chart(tmp_path, "bare"), "application/gzip"
            )
            native = await gw.register_package("app", "1.0.0")
            assert csar_vnfd == "vnfd-42" and bare_pkg != bare_vnfd

            # Disabled through vnfpkgm, enabled again natively, disabled again and deleted.
            patched = await call(
                gw, contract, "PATCH", f"/vnf_packages/{csar_pkg}", {"operationalState": "DISABLED"}
            )
            assert patched.status_code == 200, patched.text
            enabled = await gw.patch(
                "/o2dms/v1/nfDeploymentDescriptors/vnfd-42", json={"state": "AVAILABLE"}
            )
            assert enabled.status_code == 200
            same = await gw.patch(
                "/o2dms/v1/nfDeploymentDescriptors/vnfd-42", json={"state": "AVAILABLE"}
            )
            assert same.status_code == 200  # no change: no notification
            await call(
                gw, contract, "PATCH", f"/vnf_packages/{csar_pkg}", {"operationalState": "DISABLED"}
            )
            deleted = await call(gw, contract, "DELETE", f"/vnf_packages/{csar_pkg}")
            assert deleted.status_code == 204

            expected_all = [
                (ONBOARDING, csar_pkg, "vnfd-42"),
                (ONBOARDING, bare_pkg, bare_vnfd),
                (ONBOARDING, native["packageId"], native["packageId"]),
                (CHANGE, csar_pkg, "vnfd-42", "OP_STATE_CHANGE", "DISABLED"),
                (CHANGE, csar_pkg, "vnfd-42", "OP_STATE_CHANGE", "ENABLED"),
                (CHANGE, csar_pkg, "vnfd-42", "OP_STATE_CHANGE", "DISABLED"),
                (CHANGE, csar_pkg, "vnfd-42", "PKG_DELETE", "-"),
            ]
            # Every subscription's deliveries asserted below: each goes out on its own.
            bodies = await sink.wait_for(
                lambda got: (
                    len(story(got, everything)) >= len(expected_all)
                    and len(story(got, by_vnfd)) >= 5
                    and len(story(got, by_product)) >= 1
                    and len(story(got, disabling)) >= 3
                )
            )
            # In order per package (the outbox orders by package); packages apart may overtake.
            assert sorted(story(bodies, everything)) == sorted(expected_all)
            assert [e for e in story(bodies, everything) if e[1] == csar_pkg] == [
                e for e in expected_all if e[1] == csar_pkg
            ]
            assert story(bodies, by_vnfd) == [e for e in expected_all if e[2] == "vnfd-42"]
            assert story(bodies, by_product) == [(ONBOARDING, bare_pkg, bare_vnfd)]
            # The state filter matches the package's state: DISABLED when it was deleted.
            assert story(bodies, disabling) == [
                (CHANGE, csar_pkg, "vnfd-42", "OP_STATE_CHANGE", "DISABLED"),
                (CHANGE, csar_pkg, "vnfd-42", "OP_STATE_CHANGE", "DISABLED"),
                (CHANGE, csar_pkg, "vnfd-42", "PKG_DELETE", "-"),
            ]
            base = str(gw.client.base_url).rstrip("/") + V2
            for body in bodies:
                check_notification(body)
                assert body["_links"]["vnfPackage"]["href"] == (
                    f"{base}/vnf_packages/{body['vnfPkgId']}"
                )
                assert body["_links"]["subscription"]["href"] == (
                    f"{base}/subscriptions/{body['subscriptionId']}"
                )
            headers = [r.headers for r in sink.received]
            assert {h.get("Version") for h in headers} == {"2.4.0"}
            # One event, one id: the same for every subscription it went to.
            delete_ids = {b["id"] for b in bodies if b.get("changeType") == "PKG_DELETE"}
            assert len(delete_ids) == 1

            # The subscriptions: listed, read, deleted; a deleted one hears nothing more.
            listed = await call(gw, contract, "GET", "/subscriptions")
            assert {s["id"] for s in listed.json()} == {everything, by_vnfd, by_product, disabling}
            one = await call(gw, contract, "GET", f"/subscriptions/{by_vnfd}")
            assert one.json()["filter"] == {"vnfdId": ["vnfd-42"]}
            assert "authentication" not in one.json()
            filtered = await gw.request(
                "GET", f"{V2}/subscriptions", headers=HEADERS,
                params={"filter": f"(eq,id,{disabling})"},
            )  # fmt: skip
            assert [s["id"] for s in filtered.json()] == [disabling]
            assert (
                await call(gw, contract, "DELETE", f"/subscriptions/{by_vnfd}")
            ).status_code == (204)
            gone = await call(gw, contract, "GET", f"/subscriptions/{by_vnfd}")
            assert gone.status_code == 404
            # An LCM subscription's id is not one of these, nor the other way round.
            lcm = await gw.request(
                "GET", f"/vnflcm/v2/subscriptions/{everything}", headers={"Version": "2.0.0"}
            )
            assert lcm.status_code == 404
            lcm_list = await gw.request(
                "GET", "/vnflcm/v2/subscriptions", headers={"Version": "2.0.0"}
            )
            assert lcm_list.json() == []
            before = len(sink.unique())
            await gw.register_package("other", "1.0.0")
            bodies = await sink.wait_for(lambda got: len(got) > before)
            assert by_vnfd not in {b["subscriptionId"] for b in bodies[before:]}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_a_callback_that_is_down_gets_its_notifications_later(
    tmp_path: Path, contract: ContractValidator, check_notification: Any
) -> None:
    """Refused connections, then 503s: the outbox keeps retrying; once the endpoint answers,
    every notification arrives, each id accepted once, in order per package."""
    with callback_sink() as sink:
        async with running_gateway(
            tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_for(tmp_path)
        ) as gw:
            # With BASIC callback authentication (the LCM machinery's, shared).
            created = await call(
                gw, contract, "POST", "/subscriptions",
                {"callbackUri": sink.url, "authentication": {
                    "authType": ["BASIC"],
                    "paramsBasic": {"userName": "smo", "password": "s3cret-pkgm"},
                }},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            assert "authentication" not in created.json()
            subscription = created.json()["id"]
            sink.stop()  # down: connections refused
            first = await gw.register_package("one", "1.0.0")
            second = await gw.register_package("two", "1.0.0")
            sink.post_status = 503
            sink.start()  # same port, answering 503
            await gw.patch(
                f"/o2dms/v1/nfDeploymentDescriptors/{first['packageId']}",
                json={"state": "DEPRECATED"},
            )
            for _ in range(200):  # bounded: until a 503 was seen
                if sink.received:
                    break
                await _sleep(0.02)
            assert sink.received and not sink.accepted()
            sink.post_status = 204
            bodies = await sink.wait_for(lambda got: len(got) >= 3)
            # In order per package (its ordering key); packages apart may overtake each other.
            got = story(bodies, subscription)
            assert sorted(got) == sorted(
                [
                    (ONBOARDING, first["packageId"], first["packageId"]),
                    (ONBOARDING, second["packageId"], second["packageId"]),
                    (CHANGE, first["packageId"], first["packageId"], "OP_STATE_CHANGE", "DISABLED"),
                ]
            )
            assert [g[0] for g in got if g[1] == first["packageId"]] == [ONBOARDING, CHANGE]
            for body in bodies:
                check_notification(body)
            ids = [b["id"] for b in sink.accepted()]
            assert len(ids) == len(set(ids)) == 3
            basic = "Basic " + base64.b64encode(b"smo:s3cret-pkgm").decode()
            assert {r.headers.get("Authorization") for r in sink.received} == {basic}
            assert sink.gets[0].get("Authorization") == basic  # the callback test too


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_a_bad_subscription_is_refused_and_nothing_is_stored(
    tmp_path: Path, contract: ContractValidator
) -> None:
    with callback_sink() as sink, callback_sink(get_status=404) as broken:
        async with running_gateway(
            tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_for(tmp_path)
        ) as gw:
            cases: list[tuple[dict[str, Any], int]] = [
                ({"filter": {}}, 400),  # no callbackUri
                ({"callbackUri": "not a url"}, 400),
                ({"callbackUri": "ftp://127.0.0.1/x"}, 400),
                ({"callbackUri": sink.url, "filter": {"vnfdId": ["a"], "vnfPkgId": ["b"]}}, 400),
                (
                    {
                        "callbackUri": sink.url,
                        "filter": {"notificationTypes": [ONBOARDING], "usageState": ["IN_USE"]},
                    },
                    400,
                ),
                ({"callbackUri": sink.url, "filter": {"notificationTypes": ["Nope"]}}, 400),
                ({"callbackUri": sink.url, "authentication": {"authType": ["TLS_CERT"]}}, 422),
                ({"callbackUri": broken.url}, 422),  # the test GET answers 404
            ]
            for body, status in cases:
                response = await gw.request("POST", f"{V2}/subscriptions", json=body,
                                            headers=HEADERS)  # fmt: skip
                assert response.status_code == status, (body, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                contract.validate_response(
                    "POST", "/subscriptions", status, response.json(),
                    headers=dict(response.headers),
                )  # fmt: skip
            assert await gw.store.list_vnf_subscriptions(after=None, limit=10, api="vnfpkgm") == []
            listed = await call(gw, contract, "GET", "/subscriptions")
            assert listed.json() == []
            selectors = await gw.request(
                "GET", f"{V2}/subscriptions", headers=HEADERS, params={"fields": "id"}
            )
            assert selectors.status_code == 400
            # Nothing was stored, so nothing is notified.
            await gw.register_package("app", "1.0.0")
            await _sleep(0.3)
            assert sink.received == [] and broken.received == []
