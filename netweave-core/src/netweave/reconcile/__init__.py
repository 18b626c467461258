"""The reconciler: between operations, keeps each deployment's recorded state true."""

from netweave.reconcile.reconciler import Reconciler, ReconcileStats, shard_of

__all__ = ["ReconcileStats", "Reconciler", "shard_of"]
