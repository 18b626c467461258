"""Prometheus metrics of one gateway instance (one ``CollectorRegistry`` per app, so several
apps in one process — tests — never collide).

Names from the design note: ``o2dms_package_uploads_total{adapter,status}``,
``o2dms_package_deletions_total{adapter,status}``,
``o2dms_package_list_duration_seconds{adapter}``, ``o2dms_packages_total{adapter,status}``;
plus HTTP request metrics, operation metrics and notification delivery metrics
(``o2dms_notifications_*``, counted by the replica that made the attempt).
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

_M = TypeVar("_M", bound=MetricWrapperBase)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        r = self.registry
        self.package_uploads = Counter(
            "o2dms_package_uploads",
            "Package uploads and registrations by outcome (success, failure).",
            ["adapter", "status"],
            registry=r,
        )
        self.package_deletions = Counter(
            "o2dms_package_deletions",
            "Package deletions by outcome (success, failure).",
            ["adapter", "status"],
            registry=r,
        )
        self.package_list_duration = Histogram(
            "o2dms_package_list_duration_seconds",
            "Time to list packages (adapter = the filter, or 'all').",
            ["adapter"],
            registry=r,
        )
        self.packages = Gauge(
            "o2dms_packages_total",
            "Packages by adapter and state as clients see it (IN_USE derived; set on scrape).",
            ["adapter", "status"],
            registry=r,
        )
        self.requests = Counter(
            "o2dms_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "code"],
            registry=r,
        )
        self.request_duration = Histogram(
            "o2dms_http_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ["method", "route"],
            registry=r,
        )
        self.operations = Counter(
            "o2dms_operations",
            "Operation occurrences that reached a final or failed state.",
            ["adapter", "type", "state"],
            registry=r,
        )
        self.operation_duration = Histogram(
            "o2dms_operation_duration_seconds",
            "Time from an operation's start to its completion or failure.",
            ["adapter", "type"],
            registry=r,
            buckets=(0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
        )
        self.operations_running = Gauge(
            "o2dms_operations_running",
            "Operations this instance is running now.",
            registry=r,
        )
        self.notifications_delivered = Counter(
            "o2dms_notifications_delivered",
            "Notifications a callback accepted (2xx), by event type.",
            ["event_type"],
            registry=r,
        )
        self.notifications_failed = Counter(
            "o2dms_notifications_failed",
            "Notifications given up (maxAttempts reached or subscription deleted), by reason.",
            ["reason"],
            registry=r,
        )
        self.notification_retries = Counter(
            "o2dms_notification_retries",
            "Failed delivery attempts that will be retried after back-off, by reason.",
            ["reason"],
            registry=r,
        )
        self.notification_latency = Histogram(
            "o2dms_notification_delivery_latency_seconds",
            "From recording an event (its change's commit) to a callback accepting it.",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
        )
        self.notifications_pending = Gauge(
            "o2dms_notifications_pending",
            "Deliveries waiting in the outbox, all replicas (set on scrape).",
            registry=r,
        )

    def child(self, metric: _M, *values: str) -> _M:
        """``metric.labels(*values)``, looked up once per label set: prometheus_client's
        ``labels()`` validates and takes a lock on every call, and these run per request and
        per operation. Label sets are bounded (route templates, adapters, types, states)."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found  # type: ignore[return-value]
