"""The API's browser UI, served offline, and the pointer at ``/``.

Litestar's render plugins load their scripts from a public CDN by default; telecom networks are
often air-gapped, where that gives a blank page. Swagger UI's assets come instead from the
``swagger-ui-py`` package (Apache-2.0; it ships the ``swagger-ui-dist`` files under
``swagger_ui/static``) and are served by the gateway itself under :data:`UI_ASSETS_PATH`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

#: Where the Swagger UI files are served (outside ``/o2dms``: open, like ``/schema``).
UI_ASSETS_PATH = "/schema/assets/swagger-ui"
#: The only files the page needs (the package also ships Swagger Editor and source maps).
_UI_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "LICENSE",
)


def swagger_ui_directory() -> Path:
    """The installed package's directory of Swagger UI's distribution files."""
    return Path(str(files("swagger_ui").joinpath("static")))


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``/schema`` and ``/schema/swagger``, its assets from the gateway."""
    return [
        SwaggerRenderPlugin(
            js_url=f"{UI_ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{UI_ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{UI_ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{UI_ASSETS_PATH}/favicon-32x32.png'>",
            path=["/", "/swagger"],
        )
    ]


def ui_handlers() -> list[ControllerRouterHandler]:
    """The assets router and ``GET /``."""
    directory = swagger_ui_directory()
    missing = [name for name in _UI_FILES if not (directory / name).is_file()]
    if missing:  # a packaging change in swagger-ui-py: say so at startup, not as a blank page
        raise RuntimeError(f"swagger-ui-py lacks {', '.join(missing)} in {directory}")
    assets = create_static_files_router(
        path=UI_ASSETS_PATH,
        directories=[directory],
        include_in_schema=False,
        name="swagger-ui-assets",
    )
    return [assets, root]


@get("/", include_in_schema=False, sync_to_thread=False)
def root(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Point a visitor (or a script) to the UI and the API root instead of a bare 404."""
    base = str(request.base_url).rstrip("/")
    return {
        "name": "netweave O2-DMS gateway",
        "ui": f"{base}/schema",
        "openapi": f"{base}/schema/openapi.json",
        "api": f"{base}/o2dms/v1",
        "health": f"{base}/healthz",
    }


__all__ = ["UI_ASSETS_PATH", "render_plugins", "root", "swagger_ui_directory", "ui_handlers"]
