"""Which cluster releases go to, and the clients that reach it.

One Helm SDK ``Config`` per namespace (Helm's release storage is namespaced: status, history,
rollback and uninstall read the namespace the configuration was made for), all with this
instance's kubeconfig, context, storage driver and raised client qps/burst, created lazily and
kept for the adapter's life. Without any cluster source the adapter still serves packages;
deployment calls raise ``ClusterNotConfigured`` with a message saying how to configure one.
"""

from __future__ import annotations

import threading
from typing import Any

from netweave.adapters.kubernetes import cluster_source, new_api_client, require_cluster

from netweave_helm import sdk
from netweave_helm.config import ClusterSettings

HOW_TO_CONFIGURE = (
    "configure a cluster for this Helm adapter: set 'cluster.kubeconfig' (a kubeconfig path) or "
    "'cluster.kubeconfigContent' (inline kubeconfig YAML) and optionally 'cluster.context' in "
    "its config block, or start the gateway with KUBECONFIG pointing at a kubeconfig, or run it "
    "inside Kubernetes with a service account"
)


class ClusterAccess:
    def __init__(self, settings: ClusterSettings, adapter: str) -> None:
        self.settings = settings
        self.adapter = adapter
        self._configs: dict[str, sdk.Config] = {}
        self._offline: sdk.Config | None = None
        self._lock = threading.Lock()
        self._kube_client: Any = None

    # -- where is the cluster? -------------------------------------------------------------

    def source(self) -> str | None:
        """A description of the configured cluster source, or ``None`` when there is none."""
        return cluster_source(self.settings)

    def require(self) -> None:
        # Checked here too because the SDK panics on a missing kubeconfig file.
        require_cluster(self.settings, self.adapter, HOW_TO_CONFIGURE)

    # -- Helm SDK configurations -----------------------------------------------------------

    def configured(self, namespace: str) -> sdk.Config | None:
        """The SDK configuration for ``namespace`` if :meth:`helm` already made it (callers
        check :meth:`require` themselves)."""
        return self._configs.get(namespace)

    def helm(self, namespace: str) -> sdk.Config:
        self.require()
        with self._lock:
            config = self._configs.get(namespace)
            if config is None:
                s = self.settings
                with sdk.translated("configuring the Helm SDK"):
                    config = sdk.Config(
                        kubeconfig_path=s.kubeconfig,
                        kubeconfig_content=(
                            s.kubeconfig_content.get_secret_value()
                            if s.kubeconfig_content is not None
                            else None
                        ),
                        kube_context=s.context,
                        namespace=namespace,
                        storage_driver=s.storage_driver,
                        qps=s.qps,
                        burst_limit=s.burst,
                    )
                self._configs[namespace] = config
            return config

    def offline(self) -> sdk.Config:
        """A configuration for client-side rendering when no cluster is configured."""
        with self._lock:
            if self._offline is None:
                with sdk.translated("configuring the Helm SDK"):
                    self._offline = sdk.Config(
                        kube_apiserver="http://127.0.0.1:1",
                        storage_driver="memory",
                        namespace=self.settings.namespace,
                    )
            return self._offline

    # -- the kubernetes client (logs) ------------------------------------------------------

    def kube_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for the same cluster and context."""
        self.require()
        with self._lock:
            if self._kube_client is None:
                self._kube_client = self._new_kube_client()
            return self._kube_client

    def separate_kube_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` of its own (the caller closes it): for long-lived
        watch streams, which must not hold the connections the shared client's reads use."""
        self.require()
        return self._new_kube_client()

    def _new_kube_client(self) -> Any:
        return new_api_client(self.settings, self.adapter, HOW_TO_CONFIGURE)

    def close(self) -> None:
        with self._lock:
            for config in self._configs.values():
                config.close()
            self._configs.clear()
            if self._offline is not None:
                self._offline.close()
                self._offline = None
            if self._kube_client is not None:
                self._kube_client.close()
                self._kube_client = None


__all__ = ["HOW_TO_CONFIGURE", "ClusterAccess"]
