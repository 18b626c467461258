"""netweave adapter for ONAP: CNFs through the MultiCloud k8s plugin or the Service Orchestrator.

Entry point ``onap`` in ``netweave.adapters``; ``config.backend`` (``k8splugin`` | ``so``)
chooses the backend, and constructing :class:`OnapAdapter` yields that backend's subclass.
"""

from netweave_onap.__about__ import __version__
from netweave_onap.adapter import OnapAdapter
from netweave_onap.config import OnapConfig
from netweave_onap.k8splugin import K8sPluginAdapter
from netweave_onap.so import SdcServiceModel, SoAdapter

TYPE = OnapAdapter.TYPE
DISTRIBUTION = OnapAdapter.DISTRIBUTION

__all__ = [
    "DISTRIBUTION",
    "TYPE",
    "K8sPluginAdapter",
    "OnapAdapter",
    "OnapConfig",
    "SdcServiceModel",
    "SoAdapter",
    "__version__",
]
