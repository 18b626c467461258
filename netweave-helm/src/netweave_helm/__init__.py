"""netweave adapter for Helm: charts and releases on the Helm v4 Go SDK (helm-python-sdk).

The adapter class is :class:`netweave_helm.adapter.HelmAdapter` (entry point ``helm`` in
``netweave.adapters``). Importing this package is cheap; the SDK loads with the adapter module.
"""

from netweave_helm.__about__ import __version__

__all__ = ["__version__"]
