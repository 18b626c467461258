"""netweave: an O-RAN O2-DMS gateway with pluggable backend adapters."""

from netweave.__about__ import CONTRACT_VERSION, __version__
from netweave.hookspecs import hookimpl

__all__ = ["CONTRACT_VERSION", "__version__", "hookimpl"]
