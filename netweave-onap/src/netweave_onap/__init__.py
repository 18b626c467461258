"""netweave adapter for ONAP: CNFs through the MultiCloud k8s plugin or the Service Orchestrator.

Entry point ``onap`` in ``netweave.adapters``; ``config.backend`` (``k8splugin`` | ``so``)
chooses the backend; an :class:`OnapAdapter` instance drives that backend's
:class:`OnapBackend` and reports its capabilities as its own.
"""

from netweave_onap.__about__ import __version__
from netweave_onap.adapter import OnapAdapter, OnapBackend
from netweave_onap.config import OnapConfig
from netweave_onap.k8splugin import K8sPluginBackend
from netweave_onap.so import SdcServiceModel, SoBackend

TYPE = OnapAdapter.TYPE
DISTRIBUTION = OnapAdapter.DISTRIBUTION

__all__ = [
    "DISTRIBUTION",
    "TYPE",
    "K8sPluginBackend",
    "OnapAdapter",
    "OnapBackend",
    "OnapConfig",
    "SdcServiceModel",
    "SoBackend",
    "__version__",
]
