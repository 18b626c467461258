"""``NetweaveCore``: the one InitPlugin that wires the API (litestar-fullstack style).

Controllers, dependencies, the single exception handler, OpenAPI, middleware and the lifespan
are set up here; adapters declare their own routes through the ``netweave_register_routes``
hook (the Helm adapter serves ``/charts``), built into handlers by ``netweave.api.routes``;
other plugins may mount Litestar handlers through ``netweave_app_init``.

Lifespan, in order: store (create if not given) → migrations → API token bootstrap →
adapters start (a failing backend does not stop the gateway: its start error shows in
``/o2dms/v1/adapters`` and ``/readyz``) → services → operation worker. Shutdown is the reverse.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pluggy
import pydantic
from litestar import Litestar, Router
from litestar._signature.types import ExtendedMsgSpecValidationError
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.plugins import InitPluginProtocol

from netweave.__about__ import __version__
from netweave.adapters.routes import Route
from netweave.api.auth import (
    Authenticator,
    ChainAuthenticator,
    StaticTokenAuthenticator,
    StoredTokenAuthenticator,
    auth_middleware,
    bootstrap_token,
)
from netweave.api.common import check_query_parameters
from netweave.api.observability import observability_middleware_factory
from netweave.api.openapi import finalize_openapi
from netweave.api.problems import BodyDecodingRequest, problem_response
from netweave.api.ratelimit import TokenBucketLimiter, rate_limit_middleware
from netweave.api.routes import build_handlers
from netweave.api.ui import render_plugins, ui_handlers
from netweave.config import Settings
from netweave.config.registry import AdapterRegistry
from netweave.models import RequestModel
from netweave.operations.metrics import Metrics
from netweave.services import Services, build_services
from netweave.store import Store

_log = logging.getLogger("netweave.api")
_json_encoder = msgspec.json.Encoder()

API_DESCRIPTION = """O-RAN O2-DMS gateway (netweave-native face).

Every `/o2dms` route needs `Authorization: Bearer <token>` (scopes `o2dms:read`, `o2dms:write`,
`o2dms:admin`). Every error is `application/problem+json` (RFC 9457 plus `error`, `message`,
`code`, `details`). Changes are operation occurrences run asynchronously: follow the
`Location` of a 202 (or the `Link rel="operation"` of a 201).
"""


class NetweaveCore(InitPluginProtocol):
    def __init__(
        self,
        settings: Settings,
        *,
        registry: AdapterRegistry | None = None,
        store: Store | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.plugin_manager = plugin_manager
        self.metrics = Metrics()
        #: Built in the lifespan (``services`` of every handler).
        self._services: Services | None = None

    # -- assembly ------------------------------------------------------------------------------

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from netweave.api.controllers import API_CONTROLLERS, OPEN_HANDLERS

        if self.plugin_manager is None:
            from netweave.config.plugins import make_plugin_manager

            self.plugin_manager = make_plugin_manager(self.settings)
        if self.registry is None:
            from netweave.config.loading import load_adapters

            self.registry = load_adapters(self.settings, self.plugin_manager)

        limiter = TokenBucketLimiter.from_settings(self.settings.api.rate_limit)
        app_config.state.update(
            {
                "settings": self.settings,
                "metrics": self.metrics,
                "adapter_start_errors": {},
                "adapters_started": False,
                "rate_limiter": limiter,
            }
        )
        from netweave.api.etsi import etsi_handlers

        app_config.route_handlers.append(
            Router(
                "/",
                # The native face, then the standard one (ETSI SOL003, netweave.api.etsi).
                route_handlers=[*API_CONTROLLERS, *etsi_handlers()],
                # Rate limiting after authentication (it keys by the authenticated subject),
                # and only when enabled: reads should not pay for a no-op layer.
                middleware=[auth_middleware, rate_limit_middleware]
                if limiter
                else [auth_middleware],
                # On the router: Litestar ignores an app-level value set by an init plugin.
                request_max_body_size=self.settings.api.max_json_bytes,
                security=[{"bearerAuth": []}],
                before_request=check_query_parameters,
            )
        )
        app_config.route_handlers.extend(OPEN_HANDLERS)
        app_config.route_handlers.extend(ui_handlers())
        # Request bodies are validated strictly ("2" is not an integer): see strict_json_decoder.
        # Appended as its own init plugin so it runs after Litestar's pydantic plugin has put
        # its decoders first (the first matching decoder wins).
        app_config.plugins.append(_StrictRequestBodies())
        # A provider without parameters: Litestar then extracts nothing for it per request (a
        # ``state`` parameter cost a copy of the application state on every request).
        app_config.dependencies["services"] = Provide(self._provide_services, sync_to_thread=False)
        app_config.exception_handlers[Exception] = problem_response
        app_config.middleware.insert(0, observability_middleware_factory(self.metrics))
        app_config.openapi_config = OpenAPIConfig(
            title="netweave O2-DMS API",
            version=__version__,
            description=API_DESCRIPTION,
            components=Components(
                security_schemes={
                    "bearerAuth": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="Static, generated or stored API token, or an OAuth2 JWT",
                    )
                }
            ),
            tags=[
                Tag(name="nfDeploymentDescriptors", description="Deployment packages"),
                Tag(name="nfDeployments", description="NF deployments and their lifecycle"),
                Tag(name="operations", description="Operation occurrences (ETSI LCM op occ)"),
                Tag(name="subscriptions", description="Event subscriptions"),
                Tag(name="adapters", description="Configured adapter instances"),
                Tag(name="info", description="API information"),
                Tag(name="health", description="Liveness, readiness, metrics"),
            ],
            use_handler_docstrings=True,
            # Swagger UI from the installed package, no CDN (netweave.api.ui).
            render_plugins=render_plugins(),
        )
        app_config.lifespan.append(self.lifespan)

        # Adapters (and other plugins) may mount routes, e.g. the Helm chart repository.
        results = self.plugin_manager.hook.netweave_app_init(
            app_config=app_config, adapters=dict(self.registry.adapters)
        )
        for handlers in results:
            if handlers:
                app_config.route_handlers.extend(handlers)
        # Routes adapters declare without Litestar (netweave.adapters.routes).
        declared: list[Route] = []
        self.plugin_manager.hook.netweave_register_routes(
            register=declared.append, adapters=dict(self.registry.adapters)
        )
        app_config.route_handlers.extend(build_handlers(declared))
        return app_config

    def _provide_services(self) -> Services:
        services = self._services
        if services is None:
            raise RuntimeError("the gateway's services are not started (lifespan)")
        return services

    # -- lifespan ------------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        assert self.registry is not None
        assert self.plugin_manager is not None
        owned_store = self.store is None
        store = self.store if self.store is not None else await self._create_store()
        try:
            await store.migrate()
            token = self.settings.api.token
            configured = token.get_secret_value() if token is not None else None
            await bootstrap_token(store, configured)
            chain: list[Authenticator] = []
            if configured:
                chain.append(StaticTokenAuthenticator(configured))
            jwt_auth = None
            if self.settings.api.jwt:
                # Imported only when configured: PyJWT and its crypto cost start-up otherwise.
                from netweave.api.jwt import JwtAuthenticator

                jwt_auth = JwtAuthenticator(self.settings.api.jwt)
            if jwt_auth is not None:
                chain.append(jwt_auth)  # before stored tokens: a JWT never costs a store query
            chain.append(StoredTokenAuthenticator(store))
            app.state.authenticator = ChainAuthenticator(chain)

            await self._start_adapters(app)
            services = build_services(
                self.settings, store, self.registry, self.plugin_manager, self.metrics
            )
            app.state.services = services
            self._services = services
            services.worker.start()
            if services.notifications is not None:
                services.notifications.worker.start()
            if services.reconciler is not None:
                services.reconciler.start()
            finalize_openapi(app)
            try:
                yield
            finally:
                self._services = None
                if services.reconciler is not None:
                    await services.reconciler.stop()
                await services.worker.stop()
                if services.notifications is not None:
                    await services.notifications.close()
                if jwt_auth is not None:
                    await jwt_auth.close()
                await services.packages.close()
                await self.registry.stop_all()
                app.state.adapters_started = False
        finally:
            if owned_store:
                await store.close()

    async def _create_store(self) -> Store:
        from netweave.store.sql import create_store

        created: Any = create_store(self.settings.store_url())
        if inspect.isawaitable(created):
            created = await created
        store: Store = created
        return store

    async def _start_adapters(self, app: Litestar) -> None:
        assert self.registry is not None
        assert self.plugin_manager is not None
        errors: dict[str, str] = app.state.adapter_start_errors
        for name, adapter in self.registry.adapters.items():
            try:
                await adapter.start()
            except Exception as exc:
                message = getattr(exc, "message", None) or type(exc).__name__
                errors[name] = str(message)
                _log.error("adapter %s failed to start: %s", name, message)
                continue
            try:
                self.plugin_manager.hook.netweave_adapter_started(adapter=adapter)
            except Exception:
                _log.exception("netweave_adapter_started hook failed for %s", name)
        app.state.adapters_started = True


class _StrictRequestBodies(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        # A body the decoder cannot read is the client's fault (problems.BodyDecodingRequest).
        app_config.request_class = app_config.request_class or BodyDecodingRequest
        app_config.type_decoders = [
            (is_request_model, strict_json_decoder),
            *(app_config.type_decoders or []),
        ]
        return app_config


def is_request_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, RequestModel)


def strict_json_decoder(model: type[RequestModel], value: Any) -> RequestModel:
    """Validate a JSON body in pydantic's strict JSON mode.

    Litestar hands over the already-decoded Python value; pydantic's strict *Python* mode would
    refuse enum members given as strings, its lax mode accepts ``"2"`` for an integer. The
    strict *JSON* mode is what a JSON API wants, so the value goes back to JSON first (request
    bodies are small; the cost is a few microseconds).
    """
    try:
        return model.model_validate_json(_json_encoder.encode(value), strict=True)
    except pydantic.ValidationError as exc:
        # The form Litestar turns into a ValidationException naming each field. Private, but
        # the one way a type decoder reports several field errors: Litestar's own pydantic
        # plugin raises it too, and its public option (validate_strict) is pydantic's strict
        # *Python* mode, which refuses enum members and timestamps given as JSON strings.
        # Raising ValidationException here instead collapses every error into one on "data".
        errors = exc.errors(include_url=False, include_input=False)
        raise ExtendedMsgSpecValidationError(errors=[dict(e) for e in errors]) from None


def services_of(app: Litestar) -> Services:
    services: Services = app.state.services
    return services
