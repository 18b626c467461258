"""SOL003 LCM subscriptions and notifications on ``/vnflcm/v2`` and ``/vnflcm/v1`` through the
real app (a memory adapter that reports resources), with a callback endpoint on 127.0.0.1.

Every request and response goes through the standard SMO (``netweave.testing.etsi``), so it
validates against the SOL003 V3.7.1 contract (v2) or TST 010 v2.6.1 (v1); every notification
received validates against its version's notification contract. What the test checks is the
outcome: what reached the callback (once per id, in order), what is stored, and what the
occurrences say the backend changed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import DeploymentInfo
from netweave.config import NotificationSettings, Settings
from netweave.models import ResourceStatus
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import StandardSmo, sol003_v1_contract, sol003_vnflcm_contract
from netweave.testing.etsi_notify import (
    CallbackSink,
    callback_sink,
    notification_validator,
    occurrence_story,
)
from netweave.testing.postgres import temporary_database
from notify_support import Subscriber, subscriber_server
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter, Release

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
OP_OCC = "VnfLcmOperationOccurrenceNotification"
CREATED = "VnfIdentifierCreationNotification"
DELETED = "VnfIdentifierDeletionNotification"


class ResourceAdapter(MemoryAdapter):
    """Reports a release's objects as a Helm release would: a Deployment (its digest follows
    ``replicaCount``) and a Service, and a PersistentVolumeClaim while ``values.storage`` is
    set."""

    def _info(self, ref: str, release: Release) -> DeploymentInfo:
        info = super()._info(ref, release)
        replicas = str(release.values.get("replicaCount"))
        objects = [
            ResourceStatus(kind="Deployment", name=f"{release.name}-app", digest=replicas),
            ResourceStatus(kind="Service", name=f"{release.name}-svc", digest="svc"),
        ]
        if release.values.get("storage"):
            objects.append(
                ResourceStatus(kind="PersistentVolumeClaim", name=f"{release.name}-data")
            )
        held = tuple(r.model_copy(update={"namespace": release.namespace}) for r in objects)
        return dataclasses.replace(info, resources=held)


@pytest.fixture(scope="module")
def contracts() -> dict[int, ContractValidator]:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return {2: sol003_vnflcm_contract(SHARED), 1: sol003_v1_contract(SHARED)}


@pytest.fixture(scope="module")
def validators() -> dict[int, Any]:
    return {2: notification_validator(SHARED, 2), 1: notification_validator(SHARED, 1)}


def settings_for(tmp_path: Path, *, test_callback: bool = True) -> Settings:
    settings = make_settings(tmp_path / "data")
    settings.notifications = NotificationSettings(
        allowed_cidrs=["127.0.0.0/8"],
        test_callback=test_callback,
        poll_interval=0.02,
        settle_seconds=0.02,
        backoff_base=0.05,
        backoff_max=0.2,
        max_attempts=20,
        timeout=3.0,
    )
    return settings


@asynccontextmanager
async def gateway(
    tmp_path: Path, store_url: str | None = None, **options: Any
) -> AsyncIterator[Gateway]:
    async with running_gateway(
        tmp_path,
        adapters=[ResourceAdapter("mem")],
        settings=settings_for(tmp_path, **options),
        store_url=store_url,
    ) as gw:
        yield gw


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The gateway's store: SQLite, or a fresh PostgreSQL database (where the notifier reads
    the subscriptions in each change's transaction instead of a cached copy)."""
    if request.param == "sqlite":
        yield None
        return
    with temporary_database("nw_etsi_notify") as url:
        yield url


async def subscribe(smo: StandardSmo, body: dict[str, Any]) -> dict[str, Any]:
    response = await smo.call("POST", "/subscriptions", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["Location"] == created["_links"]["self"]["href"]
    return created


async def new_instance(smo: StandardSmo, vnfd_id: str, name: str = "vnf") -> str:
    response = await smo.call(
        "POST", "/vnf_instances", {"vnfdId": vnfd_id, "vnfInstanceName": name}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def changes(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(kind of entry, changeType, id) of an op-occ's or notification's resource changes."""
    found = set()
    source = body.get("resourceChanges", body)
    for entry in source.get("affectedVnfcs", []):
        found.add(("vnfc", entry["changeType"], entry["id"]))
    for entry in source.get("affectedVirtualStorages", []):
        found.add(("storage", entry["changeType"], entry["id"]))
    for entry in source.get("affectedVirtualLinks", []):
        found.add(("link", entry["changeType"], entry["id"]))
    return found


def check_all(sink: CallbackSink, validate: Any, version: str) -> None:
    for received in sink.received:
        validate(received.body)
        assert received.headers.get("Version") == version, received.headers
        assert received.headers.get("Content-Type", "").startswith("application/json")


async def test_v2_subscriber_follows_the_lifecycle_with_resource_changes(
    tmp_path: Path,
    store_url: str | None,
    contracts: dict[int, ContractValidator],
    validators: dict[int, Any],
) -> None:
    with callback_sink() as sink:
        async with gateway(tmp_path, store_url) as gw:
            smo = StandardSmo(gw, contracts[2])
            package = await gw.register_package()
            subscription = await subscribe(
                smo,
                {
                    "callbackUri": sink.url,
                    "authentication": {
                        "authType": ["TLS_CERT", "BASIC"],
                        "paramsBasic": {"userName": "smo", "password": "s3cret-callback-pw"},
                    },
                },
            )
            assert len(sink.gets) == 1  # the endpoint was tested before the subscription existed
            assert subscription["verbosity"] == "FULL"
            assert "authentication" not in subscription
            instance_id = await new_instance(smo, package["packageId"])
            op = await smo.task(
                f"/vnf_instances/{instance_id}/instantiate",
                {
                    "flavourId": "default",
                    "additionalParams": {"namespace": "ns1", "values": {"storage": True}},
                },
            )
            done = await smo.poll(op)
            assert done["operationState"] == "COMPLETED", done
            op_id = done["id"]
            got = await sink.wait_for(lambda bs: "RESULT:COMPLETED" in occurrence_story(bs, op_id))
            assert got[0]["notificationType"] == CREATED
            assert occurrence_story(got, op_id) == [
                "START:STARTING",
                "START:PROCESSING",
                "RESULT:COMPLETED",
            ]

            # The occurrence and its RESULT notification say what the backend added.
            full = (await smo.call("GET", f"{op}?all_fields")).json()
            added = {
                ("vnfc", "ADDED", "ns1/Deployment/vnf-app"),
                ("link", "ADDED", "ns1/Service/vnf-svc"),
                ("storage", "ADDED", "ns1/PersistentVolumeClaim/vnf-data"),
            }
            assert changes(full) == added, full
            result = next(b for b in got if b.get("notificationStatus") == "RESULT")
            assert changes(result) == added
            # The ids are those of the instance's vnfcResourceInfo.
            info = (await smo.instance(instance_id, "?all_fields"))["instantiatedVnfInfo"]
            assert [v["id"] for v in info["vnfcResourceInfo"]] == ["ns1/Deployment/vnf-app"]
            # The Service is a virtual link, the PersistentVolumeClaim a virtual storage.
            assert [
                (v["id"], v["networkResource"]["vimLevelResourceType"])
                for v in info["vnfVirtualLinkResourceInfo"]
            ] == [("ns1/Service/vnf-svc", "Service")]
            assert [(v["id"], v["virtualStorageDescId"]) for v in
                    info["virtualStorageResourceInfo"]] == [
                ("ns1/PersistentVolumeClaim/vnf-data", "vnf-data")
            ]  # fmt: skip

            # Scale out: the Deployment is MODIFIED (its digest changed), nothing else.
            op = await smo.task(
                f"/vnf_instances/{instance_id}/scale", {"type": "SCALE_OUT", "aspectId": "default"}
            )
            assert (await smo.poll(op))["operationState"] == "COMPLETED"
            full = (await smo.call("GET", f"{op}?all_fields")).json()
            assert changes(full) == {("vnfc", "MODIFIED", "ns1/Deployment/vnf-app")}, full

            # A change that drops the storage: only the PVC is REMOVED.
            op = await smo.task(
                f"/vnf_instances/{instance_id}/change_vnfpkg",
                {
                    "vnfdId": package["packageId"],
                    "additionalParams": {"values": {"storage": False}},
                },
            )
            done = await smo.poll(op)
            assert done["operationState"] == "COMPLETED", done
            full = (await smo.call("GET", f"{op}?all_fields")).json()
            assert changes(full) == {("storage", "REMOVED", "ns1/PersistentVolumeClaim/vnf-data")}
            # v2 reports a package change's new identity as modificationsTriggeredByVnfPkgChange.
            assert full["modificationsTriggeredByVnfPkgChange"]["vnfdId"] == package["packageId"]
            assert "changedInfo" not in full

            # PATCH: MODIFY_INFO, PROCESSING then COMPLETED with changedInfo.
            response = await smo.call(
                "PATCH", f"/vnf_instances/{instance_id}", {"vnfInstanceDescription": "edited"}
            )
            assert response.status_code == 202, response.text
            modify_id = response.headers["Location"].rsplit("/", 1)[1]

            op = await smo.task(
                f"/vnf_instances/{instance_id}/terminate", {"terminationType": "FORCEFUL"}
            )
            done = await smo.poll(op)
            assert done["operationState"] == "COMPLETED"
            full = (await smo.call("GET", f"{op}?all_fields")).json()
            assert changes(full) == {
                ("vnfc", "REMOVED", "ns1/Deployment/vnf-app"),
                ("link", "REMOVED", "ns1/Service/vnf-svc"),
            }
            assert (await smo.call("DELETE", f"/vnf_instances/{instance_id}")).status_code == 204
            got = await sink.wait_for(lambda bs: any(b["notificationType"] == DELETED for b in bs))

    check_all(sink, validators[2], "2.3.0")
    # Each notification once, all under this subscription, with BASIC auth on every POST.
    assert len(sink.accepted()) == len(got)
    assert {b["subscriptionId"] for b in got} == {subscription["id"]}
    assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in sink.received)
    assert sink.gets[0].get("Authorization", "").startswith("Basic ")
    assert occurrence_story(got, modify_id) == ["START:PROCESSING", "RESULT:COMPLETED"]
    modify = next(b for b in got if b.get("vnfLcmOpOccId") == modify_id and "changedInfo" in b)
    assert modify["changedInfo"] == {"vnfInstanceDescription": "edited"}
    # Links are absolute, under the apiRoot the subscription was made on.
    first = got[0]
    assert first["_links"]["vnfInstance"]["href"].endswith(
        f"/vnflcm/v2/vnf_instances/{instance_id}"
    )
    assert first["_links"]["subscription"]["href"] == subscription["_links"]["self"]["href"]
    # The instance's story in order: created first, deleted last.
    assert got[0]["notificationType"] == CREATED and got[-1]["notificationType"] == DELETED


async def test_v1_subscriptions_notify_in_v1_shapes(
    tmp_path: Path, contracts: dict[int, ContractValidator], validators: dict[int, Any]
) -> None:
    with callback_sink() as sink, callback_sink() as v2_sink:
        async with gateway(tmp_path) as gw:
            v1 = StandardSmo(gw, contracts[1], major=1)
            v2 = StandardSmo(gw, contracts[2])
            package = await gw.register_package()
            subscription = await subscribe(v1, {"callbackUri": sink.url})
            assert "verbosity" not in subscription
            # A subscription lives on the version it was made on.
            assert (await v2.call("GET", f"/subscriptions/{subscription['id']}")).status_code == 404
            listed = (await v1.call("GET", "/subscriptions")).json()
            assert [s["id"] for s in listed] == [subscription["id"]]
            other = await subscribe(v2, {"callbackUri": v2_sink.url})
            assert [s["id"] for s in (await v2.call("GET", "/subscriptions")).json()] == [
                other["id"]
            ]

            instance_id = await new_instance(v1, package["packageId"])
            op = await v1.task(
                f"/vnf_instances/{instance_id}/instantiate",
                {"flavourId": "default", "additionalParams": {"values": {"storage": True}}},
            )
            assert (await v1.poll(op))["operationState"] == "COMPLETED"
            # V2.6.1's names (TST 010 schemas): virtualLinkResourceInfo, each handle's VIM.
            info = (await v1.instance(instance_id, "?all_fields"))["instantiatedVnfInfo"]
            link = info["virtualLinkResourceInfo"][0]
            vim = info["vnfcResourceInfo"][0]["computeResource"]["vimConnectionId"]
            assert vim and link["networkResource"]["vimConnectionId"] == vim
            assert link["vnfVirtualLinkDescId"] == "vnf-svc"
            assert info["virtualStorageResourceInfo"][0]["storageResource"]["resourceId"] == (
                "vnf-data")  # fmt: skip
            # A package change: v1 (SOL003 V2.6.1) has no such operation, so no notification.
            pkg_op = await v2.task(
                f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": package["packageId"]}
            )
            assert (await v2.poll(pkg_op))["operationState"] == "COMPLETED"
            op = await v1.task(
                f"/vnf_instances/{instance_id}/terminate", {"terminationType": "GRACEFUL"}
            )
            assert (await v1.poll(op))["operationState"] == "COMPLETED"
            assert (await v1.call("DELETE", f"/vnf_instances/{instance_id}")).status_code == 204
            got = await sink.wait_for(lambda bs: any(b["notificationType"] == DELETED for b in bs))
            v2_got = await v2_sink.wait_for(
                lambda bs: any(b["notificationType"] == DELETED for b in bs)
            )

    check_all(sink, validators[1], "1.3.0")
    check_all(v2_sink, validators[2], "2.3.0")
    operations = {b.get("operation") for b in got} - {None}
    assert operations == {"INSTANTIATE", "TERMINATE"}
    links = [
        link
        for b in got
        if b.get("notificationStatus") == "RESULT"
        for link in b.get("affectedVirtualLinks", [])
    ]
    assert {(v["changeType"], v["vnfVirtualLinkDescId"]) for v in links} == {
        ("ADDED", "vnf-svc"),
        ("REMOVED", "vnf-svc"),
    }
    assert "CHANGE_VNFPKG" in {b.get("operation") for b in v2_got}
    # Same events, same ids for both subscribers (de-duplication ids are per event).
    shared = {b["id"] for b in got} & {b["id"] for b in v2_got}
    assert len(shared) == len(got)
    assert all(b["_links"]["vnfInstance"]["href"].count("/vnflcm/v1/") == 1 for b in got)


async def test_filters_select_what_each_subscription_gets(
    tmp_path: Path, contracts: dict[int, ContractValidator], validators: dict[int, Any]
) -> None:
    with callback_sink() as sink:
        async with gateway(tmp_path) as gw:
            smo = StandardSmo(gw, contracts[2])
            response = await gw.post(
                "/o2dms/v1/nfDeploymentDescriptors",
                json={
                    "name": "app",
                    "artifactVersion": "1.0.0",
                    "provider": "acme",
                    "packageUri": "oci://registry.example/app:1.0.0",
                },
            )
            assert response.status_code == 201, response.text
            package = response.json()
            other = await gw.register_package(name="other-app")
            url = sink.url
            subs = {
                "creations": {"notificationTypes": [CREATED]},
                "scale-results": {
                    "notificationTypes": [OP_OCC],
                    "operationTypes": ["SCALE"],
                    "operationStates": ["COMPLETED"],
                },
                "by-name": {"vnfInstanceSubscriptionFilter": {"vnfInstanceNames": ["wanted"]}},
                "by-vnfd": {"vnfInstanceSubscriptionFilter": {"vnfdIds": [other["packageId"]]}},
                "by-product": {
                    "vnfInstanceSubscriptionFilter": {
                        "vnfProductsFromProviders": [
                            {
                                "vnfProvider": "acme",
                                "vnfProducts": [
                                    {
                                        "vnfProductName": package["name"],
                                        "versions": [
                                            {"vnfSoftwareVersion": package["artifactVersion"]}
                                        ],
                                    }
                                ],
                            }
                        ]
                    }
                },
            }
            ids = {}
            for name, wanted in subs.items():
                ids[name] = (
                    await subscribe(smo, {"callbackUri": f"{url}?{name}", "filter": wanted})
                )["id"]
            short = await subscribe(smo, {"callbackUri": f"{url}?short", "verbosity": "SHORT"})

            wanted = await new_instance(smo, package["packageId"], name="wanted")
            await new_instance(smo, other["packageId"], name="ignored")
            op = await smo.task(
                f"/vnf_instances/{wanted}/instantiate",
                {"flavourId": "default", "additionalParams": {"values": {"storage": True}}},
            )
            assert (await smo.poll(op))["operationState"] == "COMPLETED"
            op = await smo.task(
                f"/vnf_instances/{wanted}/scale", {"type": "SCALE_OUT", "aspectId": "default"}
            )
            assert (await smo.poll(op))["operationState"] == "COMPLETED"
            scale_id = op.rsplit("/", 1)[1]
            await sink.wait_for(
                lambda bs: (
                    any(b["subscriptionId"] == ids["scale-results"] for b in bs)
                    and sum(b["subscriptionId"] == short["id"] for b in bs) >= 8
                )
            )

            # SOL013 on the list: filter over LccnSubscription, no attribute selectors.
            listed = await smo.call("GET", "/subscriptions?filter=(cont,callbackUri,by-)")
            assert sorted(s["id"] for s in listed.json()) == sorted(
                ids[k] for k in ("by-name", "by-vnfd", "by-product")
            )
            refused = await smo.call("GET", "/subscriptions?filter=(eq,nope,1)")
            assert refused.status_code == 400
            assert (
                await gw.get("/vnflcm/v2/subscriptions?all_fields", headers=smo.headers)
            ).status_code == 400
            # Delete: gone (404 after), and it gets nothing more.
            assert (await smo.call("DELETE", f"/subscriptions/{ids['by-name']}")).status_code == 204
            assert (await smo.call("GET", f"/subscriptions/{ids['by-name']}")).status_code == 404
            assert (await smo.call("DELETE", f"/subscriptions/{ids['by-name']}")).status_code == 404

    check_all(sink, validators[2], "2.3.0")
    got = sink.unique()

    def of(name: str) -> list[dict[str, Any]]:
        return [b for b in got if b["subscriptionId"] == ids.get(name, name)]

    assert {b["notificationType"] for b in of("creations")} == {CREATED}
    assert len(of("creations")) == 2  # both instances
    assert [(b["operation"], b["operationState"]) for b in of("scale-results")] == [
        ("SCALE", "COMPLETED")
    ]
    assert of("scale-results")[0]["vnfLcmOpOccId"] == scale_id
    assert {b["vnfInstanceId"] for b in of("by-name")} == {wanted}
    assert {b["vnfInstanceId"] for b in of("by-vnfd")} == {
        b["vnfInstanceId"] for b in of("creations")
    } - {wanted}
    assert {b["vnfInstanceId"] for b in of("by-product")} == {wanted}
    # SHORT: the occurrence notifications carry no change details (the SMO GETs the op-occ).
    short_results = [b for b in of(short["id"]) if b.get("notificationStatus") == "RESULT"]
    assert short_results and all(b["verbosity"] == "SHORT" for b in short_results)
    assert not any("affectedVnfcs" in b or "affectedVirtualStorages" in b for b in short_results)
    full_results = [b for b in of("by-name") if b.get("notificationStatus") == "RESULT"]
    assert any("affectedVirtualStorages" in b for b in full_results)


async def test_refused_subscriptions_store_nothing(
    tmp_path: Path, contracts: dict[int, ContractValidator]
) -> None:
    with callback_sink(get_status=500) as failing, callback_sink() as working:
        async with gateway(tmp_path) as gw:
            smo = StandardSmo(gw, contracts[2])
            v1 = StandardSmo(gw, contracts[1], major=1)
            cases: list[tuple[dict[str, Any], int, str]] = [
                # SOL003 clause 5.4.18.3.1: the endpoint test failed → 422.
                ({"callbackUri": failing.url}, 422, "callback test failed"),
                # The SSRF rules: a metadata address, a private address not allowed.
                ({"callbackUri": "http://169.254.169.254/latest"}, 422, "metadata"),
                ({"callbackUri": "http://10.1.2.3/cb"}, 422, "private"),
                (
                    {"callbackUri": working.url, "authentication": {"authType": ["TLS_CERT"]}},
                    422,
                    "TLS_CERT",
                ),
                (
                    {"callbackUri": working.url, "authentication": {"authType": ["BASIC"]}},
                    422,
                    "provisioned out of band",
                ),
                (
                    {
                        "callbackUri": working.url,
                        "authentication": {
                            "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                            "paramsOauth2ClientCredentials": {
                                "clientId": "a",
                                "clientPassword": "b",
                                "tokenEndpoint": "http://10.9.9.9/token",
                            },
                        },
                    },
                    422,
                    "tokenEndpoint",
                ),
                ({"callbackUri": "ftp://127.0.0.1/cb"}, 400, "callbackUri"),
                (
                    {
                        "callbackUri": working.url,
                        "filter": {
                            "vnfInstanceSubscriptionFilter": {
                                "vnfdIds": ["a"],
                                "vnfProductsFromProviders": [{"vnfProvider": "x"}],
                            }
                        },
                    },
                    400,
                    "not both",
                ),
                (
                    {
                        "callbackUri": working.url,
                        "filter": {
                            "notificationTypes": [CREATED],
                            "operationStates": ["COMPLETED"],
                        },
                    },
                    400,
                    "operationStates",
                ),
                ({"callbackUri": working.url, "verbosity": "LOUD"}, 400, "verbosity"),
            ]
            for body, status, words in cases:
                response = await gw.post(
                    "/vnflcm/v2/subscriptions",
                    json=body,
                    headers={**smo.headers, "Content-Type": "application/json"},
                )
                assert response.status_code == status, (body, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert words.lower() in response.text.lower(), (words, response.text)
            # v1 knows no CHANGE_VNFPKG (its contract refuses this request too, so it is sent
            # around the validating SMO).
            response = await gw.post(
                "/vnflcm/v1/subscriptions",
                json={"callbackUri": working.url, "filter": {"operationTypes": ["CHANGE_VNFPKG"]}},
                headers={**v1.headers, "Content-Type": "application/json"},
            )
            assert response.status_code == 400, response.text
            # Without a token: 401, as on the rest of the face.
            anonymous = await gw.client.post(
                "/vnflcm/v2/subscriptions",
                json={"callbackUri": working.url},
                headers={**smo.headers, "Content-Type": "application/json"},
            )
            assert anonymous.status_code == 401, anonymous.text
            for client in (smo, v1):
                assert (await client.call("GET", "/subscriptions")).json() == []
            assert await gw.store.list_vnf_subscriptions(after=None, limit=10) == []
            # Only the failing endpoint was called (once): refused hosts never were.
            assert len(failing.gets) == 1
            assert working.gets == []
            # Nothing reaches a callback that was refused: a VNF instance is created quietly.
            package = await gw.register_package()
            await new_instance(smo, package["packageId"])
    assert failing.received == [] and working.received == []


async def test_oauth2_client_credentials_authenticate_each_notification(
    tmp_path: Path, contracts: dict[int, ContractValidator], validators: dict[int, Any]
) -> None:
    subscriber = Subscriber(require_token=True)
    async with subscriber_server(subscriber) as url, gateway(tmp_path) as gw:
        smo = StandardSmo(gw, contracts[2])
        subscription = await subscribe(
            smo,
            {
                "callbackUri": f"{url}/cb",
                "authentication": {
                    "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                    "paramsOauth2ClientCredentials": {
                        "clientId": subscriber.client_id,
                        "clientPassword": subscriber.client_secret,
                        "tokenEndpoint": f"{url}/token",
                    },
                },
            },
        )
        assert "authentication" not in subscription
        package = await gw.register_package()
        instance_id = await new_instance(smo, package["packageId"])
        for _ in range(200):  # bounded: 10 s
            if subscriber.accepted():
                break
            await asyncio.sleep(0.05)
        # The secret is stored sealed, never in clear.
        stored = await gw.store.get_vnf_subscription(subscription["id"])
        assert stored is not None
        assert subscriber.client_secret not in str(stored.authentication)
    assert subscriber.token_requests >= 1
    bodies = subscriber.accepted()
    assert [b["vnfInstanceId"] for b in bodies] == [instance_id]
    validators[2](bodies[0])
    assert all(
        r.authorization and r.authorization.startswith("Bearer ") for r in subscriber.receipts
    )


async def test_a_deployment_managers_subscription_hears_of_its_instances_only(
    tmp_path: Path, contracts: dict[int, ContractValidator], validators: dict[int, Any]
) -> None:
    with callback_sink() as sink:
        async with running_gateway(
            tmp_path,
            adapters=[ResourceAdapter("east"), ResourceAdapter("west")],
            default="east",
            settings=settings_for(tmp_path),
        ) as gw:
            east = StandardSmo(gw, contracts[2], root="/deploymentManagers/east")
            root = StandardSmo(gw, contracts[2])
            subscription = await subscribe(east, {"callbackUri": sink.url})
            href = subscription["_links"]["self"]["href"]
            assert "/deploymentManagers/east/vnflcm/v2/subscriptions/" in href
            # It lives on that apiRoot: not found at the gateway's root, nor on another's.
            assert (
                await root.call("GET", f"/subscriptions/{subscription['id']}")
            ).status_code == 404
            west_root = StandardSmo(gw, contracts[2], root="/deploymentManagers/west")
            assert (await west_root.call("GET", "/subscriptions")).json() == []
            ours = await gw.register_package("app", "1.0.0", adapter="east")
            theirs = await gw.register_package("app", "2.0.0", adapter="west")
            mine = await new_instance(root, ours["packageId"])
            await new_instance(root, theirs["packageId"])
            got = await sink.wait_for(lambda bs: len(bs) >= 1)
            await asyncio.sleep(0.3)  # room for a wrong second notification to arrive
    got = sink.unique()
    assert [(b["notificationType"], b["vnfInstanceId"]) for b in got] == [(CREATED, mine)]
    validators[2](got[0])
    assert (
        "/deploymentManagers/east/vnflcm/v2/vnf_instances/"
        in got[0]["_links"]["vnfInstance"]["href"]
    )
