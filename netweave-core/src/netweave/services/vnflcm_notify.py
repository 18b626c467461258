"""ETSI SOL003 LCM subscriptions and notifications, and what each occurrence changed.

Subscriptions (``LccnSubscription``) are rows of their own (``vnf_lcm_subscriptions``), made on
``/vnflcm/v2`` or ``/vnflcm/v1`` (the notifications take that version's shape and links) and
possibly on one deployment manager's apiRoot (then only its VNF instances are notified). On
create the callback passes the SSRF rules and the SOL003 test (GET → 204) before anything is
stored.

Notifications go through the one durable outbox as :class:`DirectedEvent` s: the observer
(:meth:`VnfLcmNotifier.observe`, run by the hook bus inside each change's transaction) turns a
native operation event of a VNF LCM occurrence into ``VnfLcmOperationOccurrenceNotification``
(START for STARTING / PROCESSING / ROLLING_BACK, RESULT for COMPLETED / FAILED_TEMP / FAILED /
ROLLED_BACK); the VNF LCM service adds the identifier creation and deletion notifications to
its own changes. So a notification commits with the change it reports, and the outbox's worker
delivers it with retries and back-off, in order per VNF instance and subscription; ``id`` is the
same for every subscriber and every retry (de-duplication). :class:`VnfLcmChannel` shapes each
delivery for its subscription (version, verbosity, links) at delivery time.

Resource changes: when an occurrence reaches a result state, the resources the backend reported
then are compared with those the instance had when the occurrence started (kind, namespace and
name; a ``digest`` where the adapter gives one per object marks a changed object MODIFIED):
added and removed objects, storage kinds as ``affectedVirtualStorages``, the rest as
``affectedVnfcs`` with the ids ``vnfcResourceInfo`` uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from netweave.errors import InvalidInput, NetweaveError, NotFound, Unprocessable
from netweave.logging import register_secret
from netweave.models import ResourceStatus
from netweave.notifications import Notifications
from netweave.notifications.delivery import CallbackTarget
from netweave.notifications.events import DirectedEvent
from netweave.notifications.sealing import SecretUnavailable
from netweave.operations.events import EventBatch, OperationNote
from netweave.services.subscriptions import validate_callback_uri
from netweave.store import Store
from netweave.store.outbox import Delivery
from netweave.store.vnf import VnfInstanceRecord, VnfLcmOpOccRecord, VnfLcmSubscriptionRecord

OP_OCC_NOTIFICATION: Final = "VnfLcmOperationOccurrenceNotification"
CREATION_NOTIFICATION: Final = "VnfIdentifierCreationNotification"
DELETION_NOTIFICATION: Final = "VnfIdentifierDeletionNotification"
NOTIFICATION_TYPES: Final = (OP_OCC_NOTIFICATION, CREATION_NOTIFICATION, DELETION_NOTIFICATION)
#: The notification's ``Version`` header per major version (the API version served).
API_VERSIONS: Final = {2: "2.3.0", 1: "1.3.0"}
START_STATES: Final = frozenset({"STARTING", "PROCESSING", "ROLLING_BACK"})
RESULT_STATES: Final = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
OPERATION_STATES: Final = START_STATES | RESULT_STATES
#: LcmOperationType per major version. SOL003 V2.6.1 (v1) has no CHANGE_VNFPKG: such
#: occurrences are not notified to v1 subscriptions.
_V1_OPERATIONS = (
    "INSTANTIATE", "SCALE", "SCALE_TO_LEVEL", "CHANGE_FLAVOUR", "TERMINATE", "HEAL", "OPERATE",
    "CHANGE_EXT_CONN", "MODIFY_INFO",
)  # fmt: skip
OPERATION_TYPES: Final = {
    1: frozenset(_V1_OPERATIONS),
    2: frozenset((*_V1_OPERATIONS, "CREATE_SNAPSHOT", "REVERT_TO_SNAPSHOT", "CHANGE_VNFPKG")),
}
#: Callback authentication types the gateway can use (TLS_CERT: when it has a client
#: certificate, ``notifications.clientCertFile``).
SUPPORTED_AUTH: Final = ("BASIC", "OAUTH2_CLIENT_CREDENTIALS", "TLS_CERT")
#: Kinds reported as virtualised storage (``affectedVirtualStorages``); the rest are VNFCs.
STORAGE_KINDS: Final = frozenset({"PersistentVolumeClaim", "PersistentVolume"})
#: Kinds reported as the VNF's virtual links (``affectedVirtualLinks``, the instance's
#: ``vnfVirtualLinkResourceInfo``): what a chart declares of its network — a Service (the
#: addresses its pods are reached at) and a NetworkPolicy (which traffic the pod network lets
#: through). The namespace's pod network itself is not an object a chart holds.
LINK_KINDS: Final = frozenset({"Service", "NetworkPolicy"})
_PAGE: Final = 1000
#: Bound on the subscriptions one event is matched against (pages of ``_PAGE``).
_MAX_PAGES: Final = 100


def _now() -> datetime:
    return datetime.now(UTC)


# -- resources and their changes ---------------------------------------------------------------


def snapshot(resources: Sequence[ResourceStatus], namespace: str | None) -> list[dict[str, Any]]:
    """What is kept of a backend's resource report: identity and, where given, a digest."""
    held = []
    for resource in resources:
        entry: dict[str, Any] = {
            "kind": resource.kind,
            "name": resource.name,
            "namespace": resource.namespace or namespace or "",
        }
        digest = getattr(resource, "digest", None)
        if isinstance(digest, str) and digest:
            entry["digest"] = digest
        held.append(entry)
    return held


def resource_id(entry: Mapping[str, Any]) -> str:
    """The id of a resource on this face (``vnfcResourceInfo``'s too): namespace/kind/name."""
    return f"{entry.get('namespace') or ''}/{entry['kind']}/{entry['name']}"


def resource_changes(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """SOL003 ``resourceChanges`` (the same shape in v1 and v2) from two snapshots."""
    old = {resource_id(r): r for r in before}
    new = {resource_id(r): r for r in after}
    changed: list[tuple[str, Mapping[str, Any], str]] = []
    for key in sorted(new.keys() - old.keys()):
        changed.append((key, new[key], "ADDED"))
    for key in sorted(old.keys() - new.keys()):
        changed.append((key, old[key], "REMOVED"))
    for key in sorted(old.keys() & new.keys()):
        was, now = old[key].get("digest"), new[key].get("digest")
        if was and now and was != now:
            changed.append((key, new[key], "MODIFIED"))
    vnfcs: list[dict[str, Any]] = []
    storages: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for key, entry, change in changed:
        handle = {"resourceId": str(entry["name"]), "vimLevelResourceType": str(entry["kind"])}
        metadata = {"kind": entry["kind"], "namespace": entry.get("namespace") or ""}
        if entry["kind"] in STORAGE_KINDS:
            storages.append(
                {
                    "id": key,
                    "virtualStorageDescId": str(entry["name"]),
                    "changeType": change,
                    "storageResource": handle,
                    "metadata": metadata,
                }
            )
        elif entry["kind"] in LINK_KINDS:
            links.append(
                {
                    "id": key,
                    "vnfVirtualLinkDescId": str(entry["name"]),
                    "changeType": change,
                    "networkResource": handle,
                    "metadata": metadata,
                }
            )
        else:
            vnfcs.append(
                {
                    "id": key,
                    "vduId": str(entry["name"]),
                    "changeType": change,
                    "computeResource": handle,
                    "metadata": metadata,
                }
            )
    result: dict[str, Any] = {}
    if vnfcs:
        result["affectedVnfcs"] = vnfcs
    if links:
        result["affectedVirtualLinks"] = links
    if storages:
        result["affectedVirtualStorages"] = storages
    return result


def versioned_changes(
    changes: Mapping[str, Any] | None,
    major: int,
    vim: str | None,
    *,
    notification: bool = False,
) -> dict[str, Any]:
    """Stored ``resourceChanges`` as ``major`` shows them: v1 (TST 010) requires each resource
    handle's ``vimConnectionId``, the adapter instance (as the v1 instance's
    ``vimConnectionInfo`` names it). ``notification``: for a
    VnfLcmOperationOccurrenceNotification rather than a VnfLcmOpOcc."""
    if not changes:
        return {}
    if major >= 2:
        return dict(changes)
    shown: dict[str, Any] = {}
    connection = {} if vim is None else {"vimConnectionId": vim}
    for key, handle in (
        ("affectedVnfcs", "computeResource"),
        ("affectedVirtualLinks", "networkResource"),
        ("affectedVirtualStorages", "storageResource"),
    ):
        if key in changes:
            shown[key] = [
                {**entry, handle: {**entry[handle], **connection}} for entry in changes[key]
            ]
    if not notification:
        for entry in shown.get("affectedVirtualLinks", []):
            # TST 010 v2.6.1 names the VLD reference virtualLinkDescId in VnfLcmOpOcc (as
            # SOL003 V2.6.1 does) but vnfVirtualLinkDescId in the notification (as V3.x does).
            entry["virtualLinkDescId"] = entry.pop("vnfVirtualLinkDescId")
    return shown


def info_changes(
    operation: str, changed_info: Mapping[str, Any] | None, major: int
) -> dict[str, Any]:
    """The occurrence's changes of the instance's information, as the version names them:
    v2 reports a CHANGE_VNFPKG's as ``modificationsTriggeredByVnfPkgChange``, everything else
    (and v1 always) as ``changedInfo``."""
    if not changed_info:
        return {}
    if operation == "CHANGE_VNFPKG" and major >= 2:
        return {"modificationsTriggeredByVnfPkgChange": dict(changed_info)}
    return {"changedInfo": dict(changed_info)}


def standard_problem(error: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A ProblemDetails with the attributes SOL013 defines (``status`` and ``detail`` always)."""
    if not error:
        return None
    problem = {k: error[k] for k in ("type", "title", "status", "detail", "instance") if k in error}
    problem.setdefault("status", 500)
    problem.setdefault("detail", str(error.get("title") or "the operation failed"))
    return problem


# -- subscription filters ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceFacts:
    """What a subscription filter selects a VNF instance by."""

    vnf_instance_id: str
    name: str | None
    vnfd_id: str
    provider: str
    product: str
    software_version: str
    vnfd_version: str
    #: The adapter instance (deployment manager) it belongs to.
    adapter: str | None


class ProductFacts(Protocol):
    """What ``vnfProductsFromProviders`` selects by (a VNF instance's or a VNF package's)."""

    @property
    def provider(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def software_version(self) -> str: ...
    @property
    def vnfd_version(self) -> str: ...


def products_match(wanted: Sequence[Mapping[str, Any]], facts: ProductFacts) -> bool:
    """SOL003/SOL005 ``vnfProductsFromProviders``: one provider entry matches (each level
    left out or empty matches everything below it)."""
    for provider in wanted:
        if provider.get("vnfProvider") != facts.provider:
            continue
        products = provider.get("vnfProducts") or []
        if not products:
            return True
        for product in products:
            if product.get("vnfProductName") != facts.product:
                continue
            versions = product.get("versions") or []
            if not versions:
                return True
            for version in versions:
                if version.get("vnfSoftwareVersion") != facts.software_version:
                    continue
                vnfd_versions = version.get("vnfdVersions") or []
                if not vnfd_versions or facts.vnfd_version in vnfd_versions:
                    return True
    return False


def subscription_matches(
    subscription: VnfLcmSubscriptionRecord,
    notification_type: str,
    facts: InstanceFacts,
    operation: str | None = None,
    state: str | None = None,
) -> bool:
    """SOL003 ``LifecycleChangeNotificationsFilter``: every attribute given must match (lists:
    any of their values); ``operationTypes``/``operationStates`` apply to the occurrence
    notifications only. A subscription on a deployment manager's apiRoot sees its instances
    only; a v1 subscription no operation v1 does not define."""
    if subscription.manager is not None and subscription.manager != facts.adapter:
        return False
    wanted = subscription.filter or {}
    types = wanted.get("notificationTypes") or []
    if types and notification_type not in types:
        return False
    if notification_type == OP_OCC_NOTIFICATION:
        if operation not in OPERATION_TYPES.get(subscription.api_major, frozenset()):
            return False
        operations = wanted.get("operationTypes") or []
        if operations and operation not in operations:
            return False
        states = wanted.get("operationStates") or []
        if states and state not in states:
            return False
    instance = wanted.get("vnfInstanceSubscriptionFilter") or {}
    vnfd_ids = instance.get("vnfdIds") or []
    if vnfd_ids and facts.vnfd_id not in vnfd_ids:
        return False
    products = instance.get("vnfProductsFromProviders") or []
    if products and not products_match(products, facts):
        return False
    ids = instance.get("vnfInstanceIds") or []
    if ids and facts.vnf_instance_id not in ids:
        return False
    names = instance.get("vnfInstanceNames") or []
    return not names or facts.name in names


def check_filter(major: int, wanted: Mapping[str, Any]) -> None:
    """What the request schema cannot say: the pairs SOL003 makes alternatives, and
    ``operationTypes``/``operationStates`` only with the occurrence notifications."""
    instance = wanted.get("vnfInstanceSubscriptionFilter") or {}
    for first, second in (
        ("vnfdIds", "vnfProductsFromProviders"),
        ("vnfInstanceIds", "vnfInstanceNames"),
    ):
        if instance.get(first) and instance.get(second):
            raise InvalidInput(
                f"vnfInstanceSubscriptionFilter: give {first} or {second}, not both",
                details={"field": f"filter.vnfInstanceSubscriptionFilter.{second}"},
            )
    types = wanted.get("notificationTypes") or []
    for name in ("operationTypes", "operationStates"):
        if wanted.get(name) and types and OP_OCC_NOTIFICATION not in types:
            raise InvalidInput(
                f"filter.{name} applies to {OP_OCC_NOTIFICATION} only, which notificationTypes "
                "leaves out",
                details={"field": f"filter.{name}"},
            )
    unknown = [op for op in wanted.get("operationTypes") or [] if op not in OPERATION_TYPES[major]]
    if unknown:
        raise InvalidInput(
            f"filter.operationTypes: {unknown[0]!r} is not an LCM operation of vnflcm v{major}",
            details={"field": "filter.operationTypes"},
        )


def usable_authentication(
    auth: Mapping[str, Any] | None, *, callback_uri: str = "", mutual_tls: bool = False
) -> dict[str, Any] | None:
    """The stored authentication record (secrets in clear) from a SOL003
    ``SubscriptionAuthentication``: the first ``authType`` listed that the gateway supports and
    whose parameters are given. ``TLS_CERT`` is usable when the gateway has a client
    certificate (``mutual_tls``) and the callback is https (the certificate authenticates the
    TLS session: over plain HTTP there is none). 422 when none is usable (credentials
    "provisioned out of band" are not supported)."""
    if auth is None:
        return None
    kinds = list(auth.get("authType") or [])
    basic = auth.get("paramsBasic") or {}
    oauth = auth.get("paramsOauth2ClientCredentials") or {}
    https = callback_uri.lower().startswith("https://")
    for kind in kinds:
        if kind == "TLS_CERT" and mutual_tls and https:
            return {"authType": ["TLS_CERT"]}
        if kind == "BASIC" and basic.get("userName") and basic.get("password"):
            register_secret(str(basic["password"]))
            return {
                "authType": ["BASIC"],
                "paramsBasic": {"userName": basic["userName"], "password": basic["password"]},
            }
        if (
            kind == "OAUTH2_CLIENT_CREDENTIALS"
            and oauth.get("clientId")
            and oauth.get("clientPassword")
            and oauth.get("tokenEndpoint")
        ):
            register_secret(str(oauth["clientPassword"]))
            return {
                "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {
                    "clientId": oauth["clientId"],
                    "clientPassword": oauth["clientPassword"],
                    "tokenEndpoint": oauth["tokenEndpoint"],
                },
            }
    if "TLS_CERT" in kinds and not mutual_tls:
        tls = (
            "TLS_CERT needs a client certificate this gateway has not been given "
            "(notifications.clientCertFile and clientKeyFile)"
        )
    elif "TLS_CERT" in kinds:
        tls = "TLS_CERT needs an https callbackUri"
    else:
        tls = "TLS_CERT (mutually authenticated TLS, https callbacks)"
    supported = list(SUPPORTED_AUTH) if mutual_tls else list(SUPPORTED_AUTH[:2])
    raise Unprocessable(
        f"authentication: none of authType {kinds} can be used: this VNFM supports BASIC "
        "(with paramsBasic userName and password), OAUTH2_CLIENT_CREDENTIALS (with "
        "paramsOauth2ClientCredentials clientId, clientPassword and tokenEndpoint) and "
        f"{tls}; credentials provisioned out of band are not supported",
        details={"field": "authentication.authType", "supported": supported},
    )


# -- the subscriptions -------------------------------------------------------------------------


FilterCheck = Callable[[int, Mapping[str, Any]], None]


class EtsiSubscriptions:
    """Create (tested), read, list and delete the ETSI subscriptions of one interface: ``api``
    ``vnflcm`` (SOL003 LCM, filters checked by :func:`check_filter`) or ``vnfpkgm`` (SOL005
    packages, ``netweave.services.vnfpkgm_notify``). Both share the callback rules (SSRF
    policy, the GET test, BASIC/OAuth2 authentication sealed at rest), the table and the
    outbox; a subscription is found only on the interface, version and apiRoot it was made
    on."""

    def __init__(
        self,
        store: Store,
        notifications: Notifications | None,
        *,
        test_callback: bool = True,
        api: str = "vnflcm",
        check: FilterCheck = check_filter,
    ) -> None:
        self._store = store
        self._notifications = notifications
        self._test_callback = test_callback
        self.api = api
        self._check = check

    async def create(
        self,
        *,
        major: int,
        api_base: str,
        manager: str | None,
        callback_uri: str,
        wanted: dict[str, Any],
        verbosity: str,
        authentication: Mapping[str, Any] | None,
    ) -> VnfLcmSubscriptionRecord:
        """400 for a malformed request, 422 for a callback that may not be called or fails the
        test (nothing stored then)."""
        validate_callback_uri(callback_uri)
        self._check(major, wanted)
        record = usable_authentication(
            authentication,
            callback_uri=callback_uri,
            mutual_tls=self._notifications is not None and self._notifications.client.mutual_tls,
        )
        if self._notifications is None:
            raise NetweaveError("this gateway's store keeps no notification outbox")
        try:
            # Encrypted at rest (netweave.notifications.sealing); the test below uses the clear.
            stored = self._notifications.sealer.seal(record)
        except SecretUnavailable as exc:
            raise NetweaveError(f"cannot store the callback secrets: {exc}") from None
        policy = self._notifications.client.policy
        await policy.check_url(callback_uri, field="callbackUri")
        oauth = (record or {}).get("paramsOauth2ClientCredentials")
        if oauth:
            await policy.check_url(
                str(oauth["tokenEndpoint"]),
                field="authentication.paramsOauth2ClientCredentials.tokenEndpoint",
            )
        if self._test_callback:
            # SOL003 clause 5.4.20.3.2: GET the endpoint, 204 expected; else 422.
            await self._notifications.client.test(callback_uri, record)
        subscription = VnfLcmSubscriptionRecord(
            subscription_id=str(uuid.uuid4()),
            api_major=major,
            api_base=api_base,
            callback_uri=callback_uri,
            created_at=_now(),
            filter=wanted,
            verbosity=verbosity,
            manager=manager,
            authentication=stored,
            api=self.api,
        )
        await self._store.add_vnf_subscription(subscription)
        return subscription

    async def get(
        self, subscription_id: str, *, major: int, manager: str | None
    ) -> VnfLcmSubscriptionRecord:
        """A subscription made on this version (and apiRoot): others are not found here."""
        record = await self._store.get_vnf_subscription(subscription_id)
        if (
            record is None
            or record.api != self.api
            or record.api_major != major
            or record.manager != manager
        ):
            raise NotFound(
                f"subscription {subscription_id!r} not found",
                details={"subscriptionId": subscription_id},
            )
        return record

    async def page(
        self, after: tuple[datetime, str] | None, limit: int
    ) -> list[VnfLcmSubscriptionRecord]:
        return await self._store.list_vnf_subscriptions(after=after, limit=limit, api=self.api)

    async def delete(self, subscription_id: str, *, major: int, manager: str | None) -> None:
        await self.get(subscription_id, major=major, manager=manager)
        await self._store.delete_vnf_subscription(subscription_id)


#: The SOL003 LCM subscriptions (the name ``netweave.services.vnflcm`` knows them by).
VnfLcmSubscriptions = EtsiSubscriptions


def render_subscription(record: VnfLcmSubscriptionRecord) -> dict[str, Any]:
    """``LccnSubscription`` (v1 has no ``verbosity``); the authentication is never returned."""
    body: dict[str, Any] = {"id": record.subscription_id}
    if record.filter:
        body["filter"] = record.filter
    body["callbackUri"] = record.callback_uri
    if record.api_major >= 2:
        body["verbosity"] = record.verbosity
    body["_links"] = {"self": {"href": f"{record.api_base}/subscriptions/{record.subscription_id}"}}
    return body


# -- the observer: occurrences' ends and their notifications -------------------------------------


class SubscriptionList:
    """Every ETSI subscription of one interface (``api``), for the notifiers. On a store only
    this process writes (SQLite), the copy read last while no subscription write was under
    way, as long as none has been made since; elsewhere read anew each time."""

    def __init__(self, store: Store, api: str) -> None:
        self._store = store
        self._api = api
        self._cached: tuple[tuple[int, int], list[VnfLcmSubscriptionRecord]] | None = None

    async def __call__(self) -> list[VnfLcmSubscriptionRecord]:
        writes = self._store.subscription_writes()
        cached = self._cached
        if cached is not None and cached[0] == writes:
            return cached[1]
        found: list[VnfLcmSubscriptionRecord] = []
        after: tuple[datetime, str] | None = None
        for _ in range(_MAX_PAGES):
            batch = await self._store.list_vnf_subscriptions(
                after=after, limit=_PAGE, api=self._api
            )
            found.extend(batch)
            if len(batch) < _PAGE:
                break
            after = (batch[-1].created_at, batch[-1].subscription_id)
        if (
            self._store.sole_writer
            and writes[0] == writes[1]
            and self._store.subscription_writes() == writes
        ):
            self._cached = (writes, found)
        return found


class VnfLcmNotifier:
    """Runs in each change's transaction (:meth:`HookBus.observe`); see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store
        #: Every LCM subscription (see :class:`SubscriptionList`).
        self.subscriptions = SubscriptionList(store, "vnflcm")

    async def facts(self, record: VnfInstanceRecord) -> InstanceFacts:
        deployment = (
            await self._store.get_deployment(record.deployment_id) if record.deployment_id else None
        )
        vnfd_id = deployment.package_id if deployment is not None else record.vnfd_id
        package = await self._store.get_package(vnfd_id)
        return InstanceFacts(
            vnf_instance_id=record.vnf_instance_id,
            name=record.name,
            vnfd_id=vnfd_id,
            provider=(package.provider or "") if package is not None else "",
            product=package.name if package is not None else "",
            software_version=package.version if package is not None else "",
            vnfd_version=package.version if package is not None else "",
            adapter=(
                deployment.adapter
                if deployment is not None
                else (package.adapter if package is not None else None)
            ),
        )

    async def identifier_event(
        self, batch: EventBatch, notification_type: str, record: VnfInstanceRecord
    ) -> None:
        """A VNF instance was created or is being deleted (in the caller's change)."""
        subscriptions = await self.subscriptions()
        if not subscriptions:
            return
        facts = await self.facts(record)
        targets = tuple(
            s.subscription_id
            for s in subscriptions
            if subscription_matches(s, notification_type, facts)
        )
        payload = {"notificationType": notification_type, "vnfInstanceId": record.vnf_instance_id}
        batch.directed(
            DirectedEvent(notification_type, payload, targets, _ordering(record.vnf_instance_id))
        )

    async def occurrence_event(
        self, batch: EventBatch, op_occ: VnfLcmOpOccRecord, state: str
    ) -> None:
        """``op_occ`` entered ``state`` (in the caller's change): its notification."""
        subscriptions = await self.subscriptions()
        if not subscriptions:
            return
        record = await self._store.get_vnf_instance(op_occ.vnf_instance_id)
        if record is None:
            return
        facts = await self.facts(record)
        targets = tuple(
            s.subscription_id
            for s in subscriptions
            if subscription_matches(s, OP_OCC_NOTIFICATION, facts, op_occ.operation, state)
        )
        if not targets:
            return
        result = state in RESULT_STATES
        payload: dict[str, Any] = {
            "notificationType": OP_OCC_NOTIFICATION,
            "notificationStatus": "RESULT" if result else "START",
            "operationState": state,
            "vnfInstanceId": op_occ.vnf_instance_id,
            "operation": op_occ.operation,
            "isAutomaticInvocation": False,
            "vnfLcmOpOccId": op_occ.op_occ_id,
        }
        if facts.adapter is not None:
            payload["adapter"] = facts.adapter
        if result and op_occ.resource_changes:
            payload["resourceChanges"] = op_occ.resource_changes
        if state == "COMPLETED" and op_occ.changed_info:
            payload["changedInfo"] = op_occ.changed_info
        if state in ("FAILED_TEMP", "FAILED", "ROLLED_BACK"):
            problem = standard_problem(op_occ.error)
            if problem is not None:
                payload["error"] = problem
        batch.directed(
            DirectedEvent(OP_OCC_NOTIFICATION, payload, targets, _ordering(op_occ.vnf_instance_id))
        )

    async def observe(self, batch: EventBatch) -> None:
        """The hook bus's observer: each operation event of a VNF LCM occurrence updates the
        occurrence (resource changes, last error, changed information) and is notified."""
        for note in list(batch.operations):
            result = note.state in RESULT_STATES
            if result:
                await self._follow_package(note.deployment_id)
            if not result and not await self.subscriptions():
                continue  # nothing to record and nobody to tell
            op_occ = await self._store.get_vnf_op_occ(note.operation_id)
            if op_occ is None:
                if note.resources is not None:
                    await self._native_end(note)
                continue
            op_occ = await self._record_end(op_occ, note)
            await self.occurrence_event(batch, op_occ, note.state)

    async def _follow_package(self, deployment_id: str) -> None:
        """Keep a VNF instance's stored ``vnfd_id`` the package its deployment runs (an update
        or its rollback changed it, through this face or the native one), so a list filters
        ``vnfdId`` on that one indexed column exactly."""
        record = await self._store.vnf_instance_of_deployment(deployment_id)
        if record is None:
            return
        deployment = await self._store.get_deployment(deployment_id)
        if deployment is not None and deployment.package_id != record.vnfd_id:
            await self._store.update_vnf_instance(
                record.vnf_instance_id, vnfd_id=deployment.package_id
            )

    async def _record_end(
        self, op_occ: VnfLcmOpOccRecord, note: OperationNote
    ) -> VnfLcmOpOccRecord:
        changes: dict[str, Any] = {}
        if note.resources is not None:
            record = await self._store.get_vnf_instance(op_occ.vnf_instance_id)
            namespace = await self._namespace(note.deployment_id)
            after = snapshot(note.resources, namespace)
            changes["resource_changes"] = resource_changes(op_occ.resources_before or [], after)
            if record is not None:
                await self._store.set_vnf_instance_resources(record.vnf_instance_id, after)
        if note.state == "FAILED_TEMP" and note.error:
            changes["error"] = note.error
        if note.state == "COMPLETED":
            info = await self._changed_info(op_occ)
            if info is not None:
                changes["changed_info"] = info
        if not changes:
            return op_occ
        return await self._store.update_vnf_op_occ(op_occ.op_occ_id, **changes)

    async def _native_end(self, note: OperationNote) -> None:
        """A native operation on a VNF instance's deployment: the instance's resources are
        what the next occurrence's changes start from."""
        record = await self._store.vnf_instance_of_deployment(note.deployment_id)
        if record is not None and note.resources is not None:
            namespace = await self._namespace(note.deployment_id)
            after = snapshot(note.resources, namespace)
            await self._store.set_vnf_instance_resources(record.vnf_instance_id, after)

    async def _namespace(self, deployment_id: str) -> str | None:
        deployment = await self._store.get_deployment(deployment_id)
        return deployment.namespace if deployment is not None else None

    async def _changed_info(self, op_occ: VnfLcmOpOccRecord) -> dict[str, Any] | None:
        """What a completed occurrence changed of the instance's information."""
        if op_occ.operation == "CHANGE_VNFPKG":
            vnfd_id = op_occ.operation_params.get("vnfdId")
            package = await self._store.get_package(str(vnfd_id)) if vnfd_id else None
            if package is None:
                return None
            return {
                "vnfdId": package.package_id,
                "vnfProvider": package.provider or "",
                "vnfProductName": package.name,
                "vnfSoftwareVersion": package.version,
                "vnfdVersion": package.version,
            }
        if op_occ.operation == "INSTANTIATE":
            properties = op_occ.operation_params.get("vnfConfigurableProperties")
            if isinstance(properties, dict) and properties:
                record = await self._store.get_vnf_instance(op_occ.vnf_instance_id)
                if record is not None:
                    return {"vnfConfigurableProperties": record.properties}
        return None


def _ordering(vnf_instance_id: str) -> str:
    # One subscription's notifications about one instance go out one at a time, in order.
    return f"vnf:{vnf_instance_id}"


# -- delivery: each notification shaped for its subscription --------------------------------------


class VnfLcmChannel:
    """The outbox worker's channel for the three LCM notification types."""

    event_types = frozenset(NOTIFICATION_TYPES)

    def __init__(self, store: Store) -> None:
        self._store = store

    async def target(self, delivery: Delivery) -> CallbackTarget | None:
        subscription = await self._store.get_vnf_subscription(delivery.subscription_id)
        if subscription is None or subscription.api != "vnflcm":
            return None
        body = notification_body(delivery.event_id, subscription, delivery.payload)
        headers = {"Version": API_VERSIONS[subscription.api_major]}
        return CallbackTarget(subscription.callback_uri, subscription.authentication, body, headers)


def notification_body(
    event_id: str, subscription: VnfLcmSubscriptionRecord, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """The notification as the subscription's version shapes it; ``id`` is the event's, the
    same for every subscriber and every retry."""
    base = subscription.api_base
    kind = str(payload["notificationType"])
    body: dict[str, Any] = {
        "id": event_id,
        "notificationType": kind,
        "subscriptionId": subscription.subscription_id,
        "timeStamp": payload["timeStamp"],
    }
    links: dict[str, Any] = {
        "vnfInstance": {"href": f"{base}/vnf_instances/{payload['vnfInstanceId']}"},
        "subscription": {"href": f"{base}/subscriptions/{subscription.subscription_id}"},
    }
    if kind != OP_OCC_NOTIFICATION:
        body["vnfInstanceId"] = payload["vnfInstanceId"]
        body["_links"] = links
        return body
    full = subscription.verbosity != "SHORT"
    body.update(
        {
            "notificationStatus": payload["notificationStatus"],
            "operationState": payload["operationState"],
            "vnfInstanceId": payload["vnfInstanceId"],
            "operation": payload["operation"],
            "isAutomaticInvocation": bool(payload.get("isAutomaticInvocation")),
            "vnfLcmOpOccId": payload["vnfLcmOpOccId"],
        }
    )
    if subscription.api_major >= 2:
        body["verbosity"] = subscription.verbosity
    if full:
        adapter = payload.get("adapter")
        body.update(
            versioned_changes(
                payload.get("resourceChanges"), subscription.api_major, adapter, notification=True
            )
        )
        operation = str(payload["operation"])
        body.update(info_changes(operation, payload.get("changedInfo"), subscription.api_major))
    if payload.get("error"):
        body["error"] = payload["error"]
    links["vnfLcmOpOcc"] = {"href": f"{base}/vnf_lcm_op_occs/{payload['vnfLcmOpOccId']}"}
    body["_links"] = links
    return body


__all__ = [
    "API_VERSIONS",
    "CREATION_NOTIFICATION",
    "DELETION_NOTIFICATION",
    "NOTIFICATION_TYPES",
    "OPERATION_STATES",
    "OPERATION_TYPES",
    "OP_OCC_NOTIFICATION",
    "SUPPORTED_AUTH",
    "EtsiSubscriptions",
    "FilterCheck",
    "InstanceFacts",
    "ProductFacts",
    "SubscriptionList",
    "VnfLcmChannel",
    "VnfLcmNotifier",
    "VnfLcmSubscriptions",
    "check_filter",
    "info_changes",
    "notification_body",
    "products_match",
    "render_subscription",
    "resource_changes",
    "snapshot",
    "standard_problem",
    "subscription_matches",
    "usable_authentication",
    "versioned_changes",
]
