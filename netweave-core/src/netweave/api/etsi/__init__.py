"""The standard face: ETSI GS NFV-SOL 003 VNF lifecycle management (``/vnflcm/v2`` and
``/vnflcm/v1``) with SOL013 conventions, over the native services. See docs/etsi.md."""

from __future__ import annotations

from typing import Any

from litestar import Router

from netweave.api.etsi.o2ims import O2imsController
from netweave.api.etsi.subscriptions import subscriptions_controller
from netweave.api.etsi.vnflcm import MANAGER_ROOT, api_versions_handlers, vnflcm_controller
from netweave.api.etsi.vnfpkgm import VnfPkgmController
from netweave.api.etsi.vnfpkgm import api_versions_handlers as vnfpkgm_versions
from netweave.api.etsi.vnfpkgm_subscriptions import VnfPkgmSubscriptionsController


def etsi_handlers() -> list[Any]:
    """Route handlers of the standard face, mounted beside the native ones (same auth): at the
    root (every adapter instance), under each deployment manager's apiRoot (that instance
    only; left out of the OpenAPI document, whose /vnflcm paths describe it), and the O2ims
    discovery that lists those apiRoots."""
    faces = [
        vnflcm_controller(2),
        vnflcm_controller(1),
        subscriptions_controller(2),
        subscriptions_controller(1),
    ]
    per_manager = Router(
        MANAGER_ROOT,
        route_handlers=[
            *api_versions_handlers(),
            vnflcm_controller(2),
            vnflcm_controller(1),
            subscriptions_controller(2),
            subscriptions_controller(1),
        ],
        include_in_schema=False,
    )
    # SOL005 vnfpkgm: the root only.
    packages = [*vnfpkgm_versions(), VnfPkgmController, VnfPkgmSubscriptionsController]
    return [*api_versions_handlers(), *faces, O2imsController, per_manager, *packages]


__all__ = ["etsi_handlers"]
