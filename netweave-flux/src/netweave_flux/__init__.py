"""netweave adapter for Flux CD: NF deployments as HelmReleases and Kustomizations.

The adapter class is :class:`netweave_flux.adapter.FluxAdapter` (entry point ``flux`` in
``netweave.adapters``). It writes Flux custom resources through the Kubernetes API (``cluster``
mode) or commits them to a Git repository (``git`` mode), and reads their state from the cluster.
"""

from netweave_flux.__about__ import __version__

__all__ = ["__version__"]
