"""The Litestar application factory."""

from __future__ import annotations

import pluggy
from litestar import Litestar
from litestar.plugins.pydantic import PydanticPlugin
from litestar.routes import HTTPRoute

from netweave.api.plugin import NetweaveCore
from netweave.config import Settings
from netweave.config.registry import AdapterRegistry
from netweave.store import Store


def create_app(
    settings: Settings,
    *,
    registry: AdapterRegistry | None = None,
    store: Store | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> Litestar:
    """Build the gateway's app. What is not given is built from ``settings``: the plugin
    manager and the adapters now (adapters may mount routes), the store in the lifespan."""
    core = NetweaveCore(settings, registry=registry, store=store, plugin_manager=plugin_manager)
    # The pydantic plugin must be given to the constructor: Litestar adds its default one (no
    # aliases) before init plugins run. ``prefer_alias``: camelCase on the wire and in OpenAPI.
    # ``logging_config=None``: netweave configures logging itself (``netweave.logging``, from
    # the CLI); Litestar's default would attach its own handler to the root logger, bound to
    # whatever stderr was when the app was built (a closed capture stream, later, in tests).
    app = Litestar(plugins=[PydanticPlugin(prefer_alias=True), core], logging_config=None)
    _answer_options_with_every_method(app)
    return app


def _answer_options_with_every_method(app: Litestar) -> None:
    """Make each path's automatic ``OPTIONS`` answer ``Allow`` with all of the path's methods.

    Litestar 2 creates that handler with the path's first route and keeps it when later
    handlers of the same path rebuild the route, so ``Allow`` listed only the first handler's
    methods (litestar#4169, fixed in Litestar 3). The handler reads ``methods`` from the route
    it closes over: point it at the route the app dispatches to.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        entry = route.route_handler_map.get("OPTIONS")
        if entry is None:
            continue
        function = entry[0].fn
        if getattr(function, "__name__", "") != "options_handler":
            continue  # an OPTIONS handler of our own: it answers for itself
        for cell in getattr(function, "__closure__", None) or ():
            if isinstance(cell.cell_contents, HTTPRoute):
                cell.cell_contents = route


__all__ = ["create_app"]
