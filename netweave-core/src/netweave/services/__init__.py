"""The service layer: what the API controllers call (packages, deployments, occurrences,
subscriptions, the ETSI faces), and ``build_services`` wiring it to the operation machinery.

One data path: HTTP → controller → service here → ``DMSAdapter`` template method → backend.
This package knows the adapter contract, the store and the models; never the API.
"""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from netweave.config import Settings
from netweave.config.registry import AdapterRegistry
from netweave.notifications import Notifications, build_notifications
from netweave.operations.events import HookBus
from netweave.operations.metrics import Metrics
from netweave.operations.runner import OperationRunner
from netweave.operations.worker import OperationWorker
from netweave.reconcile import Reconciler
from netweave.services.deployments import Accepted, DeploymentService
from netweave.services.idempotency import IdempotencyService
from netweave.services.occurrences import OperationService
from netweave.services.packages import PackageService
from netweave.services.subscriptions import SubscriptionService
from netweave.services.vnflcm import VnfLcmService
from netweave.services.vnfpkgm import VnfPkgmService
from netweave.store import Store


@dataclass(slots=True)
class Services:
    store: Store
    registry: AdapterRegistry
    hooks: HookBus
    metrics: Metrics
    packages: PackageService
    deployments: DeploymentService
    operations: OperationService
    subscriptions: SubscriptionService
    idempotency: IdempotencyService
    worker: OperationWorker
    #: Outbox recorder, delivery worker and callback client (``None`` without an outbox).
    notifications: Notifications | None = None
    #: The ETSI SOL003 face's mapping onto the services above (``netweave.api.etsi``).
    vnflcm: VnfLcmService | None = None
    #: The ETSI SOL005 package face over the package store (``netweave.api.etsi.vnfpkgm``).
    vnfpkgm: VnfPkgmService | None = None
    #: Keeps recorded states true between operations (``None``: ``reconcile.enabled`` false).
    reconciler: Reconciler | None = None


def build_services(
    settings: Settings,
    store: Store,
    registry: AdapterRegistry,
    plugin_manager: pluggy.PluginManager,
    metrics: Metrics,
) -> Services:
    notifications = build_notifications(settings, store, metrics)
    hooks = HookBus(plugin_manager, recorder=notifications.recorder if notifications else None)
    packages = PackageService(store, registry, hooks, metrics)
    runner = OperationRunner(
        store,
        registry,
        hooks,
        metrics,
        max_attempts=settings.operations.max_attempts,
        package_cache=packages.cache,
    )
    worker = OperationWorker(
        store,
        runner,
        metrics,
        concurrency=settings.operations.workers,
        lease_seconds=settings.operations.lease_seconds,
        poll_interval=settings.operations.poll_interval,
    )
    deployments = DeploymentService(store, registry, hooks, worker, packages.cache)
    reconciler = None
    if settings.reconcile.enabled:
        r = settings.reconcile
        reconciler = Reconciler(
            store,
            registry,
            hooks,
            owner=worker.owner,
            interval=r.interval,
            resync=r.resync,
            max_interval=r.max_interval,
            shards=r.shards,
            lease_seconds=r.lease_seconds,
            rate=r.rate,
            concurrency=r.concurrency,
            list_interval=r.list_interval,
        )
    operations = OperationService(store, hooks, worker)
    services = Services(
        store=store,
        registry=registry,
        hooks=hooks,
        metrics=metrics,
        packages=packages,
        deployments=deployments,
        operations=operations,
        subscriptions=SubscriptionService(
            store, notifications, test_callback=settings.notifications.test_callback
        ),
        idempotency=IdempotencyService(store),
        worker=worker,
        notifications=notifications,
        vnflcm=VnfLcmService(
            store,
            registry,
            hooks,
            deployments,
            operations,
            notifications,
            test_callback=settings.notifications.test_callback,
        ),
        vnfpkgm=VnfPkgmService(
            store,
            registry,
            packages,
            settings.data_dir,
            fetch=settings.fetch,
            max_upload_bytes=settings.api.max_upload_bytes,
            hooks=hooks,
            notifications=notifications,
            test_callback=settings.notifications.test_callback,
            trust_anchors=settings.vnfpkgm.trust_anchor_files,
        ),
        reconciler=reconciler,
    )
    if services.vnflcm is not None and services.vnfpkgm is not None:
        # Instantiate takes the scaling aspects the package's VNFD declares.
        services.vnflcm.vnfd_aspects = services.vnfpkgm.vnfd_aspects
        services.vnflcm.vnfd_levels = services.vnfpkgm.vnfd_levels
        services.vnflcm.vnfd_default_level = services.vnfpkgm.vnfd_default_level
    return services


__all__ = [
    "Accepted",
    "DeploymentService",
    "HookBus",
    "IdempotencyService",
    "Metrics",
    "OperationRunner",
    "OperationService",
    "OperationWorker",
    "PackageService",
    "Services",
    "SubscriptionService",
    "VnfLcmService",
    "build_services",
]
