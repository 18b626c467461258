"""pluggy hook specifications: netweave's lifecycle and event hooks.

The data path (packages, deployments, operations) is *not* here: it is the ``DMSAdapter`` ABC,
called directly on the selected adapter instance. Hooks are for cross-cutting concerns.

Who implements them: an adapter class may name a hooks object in ``hooks`` (anything carrying
``@hookimpl`` functions); the loader registers it under the adapter's type. Other plugins can be
registered by configuration (``plugins.hooks``: importable module names).

Rules (checked when a plugin is registered):

* every hook is prefixed ``netweave_``;
* ``firstresult`` and wrapper hooks are synchronous — an ``async def`` implementation of a
  ``firstresult`` hook would return an un-awaited coroutine that silently "wins";
* broadcast *event* hooks may return an awaitable; the core awaits each one with a timeout, and
  an implementation's failure is logged, never propagated into the request.

Groups, in the order they are called in a process's life: configuration, application,
validation, events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

    from netweave.adapters import DMSAdapter, PackageUpload
    from netweave.adapters.routes import RegisterRoute
    from netweave.models import DeploymentRequest, Operation

PROJECT_NAME = "netweave"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- configuration -------------------------------------------------------------------------


@hookspec(historic=True)
def netweave_configure(settings: Any) -> None:
    """Called once with the validated gateway settings (``netweave.config.Settings``).

    Historic: a plugin registered later still receives it. Secrets in ``settings`` are
    ``pydantic.SecretStr``; never log their values.
    """


@hookspec
def netweave_adapter_started(adapter: DMSAdapter) -> None:
    """Called after an adapter instance's ``start()`` succeeded, once per instance."""


# -- application ---------------------------------------------------------------------------


@hookspec
def netweave_app_init(app_config: AppConfig, adapters: dict[str, DMSAdapter]) -> list[Any] | None:
    """Called while the Litestar app is assembled, before it is built.

    Return Litestar route handlers, controllers or routers to mount, or ``None``.
    Implementations may also edit ``app_config`` (add middleware, plugins, dependencies).
    Broadcast; results are concatenated. Adapters declare their routes through
    ``netweave_register_routes`` instead, without importing Litestar.
    """


@hookspec
def netweave_register_routes(register: RegisterRoute, adapters: dict[str, DMSAdapter]) -> None:
    """Called while the app is assembled: declare HTTP routes served beside the API.

    Call ``register(netweave.adapters.routes.Route(...))`` once per route (for example the Helm
    adapter serves its chart repository at ``/charts``); core builds the web framework's
    handlers (``netweave.api.routes``). ``adapters`` are the configured instances, by name.
    Broadcast.
    """


# -- selection and validation (synchronous) -------------------------------------------------


@hookspec(firstresult=True)
def netweave_select_adapter(
    kind: str, payload: dict[str, Any], candidates: list[str]
) -> str | None:
    """Choose the adapter instance for a request that names none.

    ``kind`` is ``"package"`` or ``"deployment"``; ``payload`` the request body as accepted;
    ``candidates`` the enabled instance names that support the request. Return one of them, or
    ``None`` to fall through to the configured default. First result wins; must be synchronous.
    """


@hookspec
def netweave_validate_package(upload: PackageUpload, adapter: DMSAdapter) -> None:
    """Validate a package before the adapter uploads it (after the adapter's own
    ``check_package``); ``adapter`` is the instance chosen for it. Raise
    ``netweave.errors.InvalidInput`` (or another ``NetweaveError``) to refuse it; nothing is
    stored then. Synchronous. (What an adapter itself requires belongs in its
    ``_check_package``, not in a hook.)"""


@hookspec
def netweave_validate_deployment(request: DeploymentRequest, adapter: DMSAdapter) -> None:
    """Validate a deployment request before its operation is stored (policy, quotas, naming),
    after the owning adapter's ``check_deployment``; ``adapter`` is that instance. Raise a
    ``NetweaveError`` to refuse it with that error's HTTP status. Synchronous."""


# -- events (notifications, audit) ---------------------------------------------------------


@hookspec
def netweave_package_event(event_type: str, package: dict[str, Any]) -> Any:
    """A package was uploaded, changed state or was deleted. ``package`` is its wire form.

    May return an awaitable. Called after the change is committed to the store.
    """


@hookspec
def netweave_deployment_event(event_type: str, deployment: dict[str, Any]) -> Any:
    """A deployment was created, changed (status, values, revision) or deleted.

    May return an awaitable. Called after the change is committed to the store.
    """


@hookspec
def netweave_operation_event(operation: Operation, previous_state: str | None) -> Any:
    """An operation occurrence entered a new state (``previous_state`` is ``None`` when created).

    May return an awaitable. Called after the state is committed to the store.
    """
