"""netweave adapter for Argo CD: NF deployments as Argo CD Applications (REST API of argocd-server).

The adapter class is :class:`netweave_argocd.adapter.ArgoCDAdapter` (entry point ``argocd`` in
``netweave.adapters``).
"""

from netweave_argocd.__about__ import __version__

__all__ = ["__version__"]
