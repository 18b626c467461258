"""The Litestar application factory."""

from __future__ import annotations

import pluggy
from litestar import Litestar
from litestar.plugins.pydantic import PydanticPlugin

from netweave.api.plugin import NetweaveCore
from netweave.config import Settings
from netweave.registry import AdapterRegistry
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
    return Litestar(plugins=[PydanticPlugin(prefer_alias=True), core], logging_config=None)


__all__ = ["create_app"]
