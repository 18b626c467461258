"""pluggy hooks of the Helm adapter (registered by the loader via ``HelmAdapter.hooks``).

* ``netweave_app_init`` serves every local chart repository as a standard Helm HTTP repository:
  ``GET <path>/index.yaml`` and ``GET <path>/<name>-<version>.tgz``. The first served instance
  gets ``/charts`` (``helm repo add netweave http://gateway/charts``), others
  ``/charts/<instance>``, unless ``storage.servePath`` says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File
from netweave.hookspecs import hookimpl

if TYPE_CHECKING:
    from netweave.adapters import DMSAdapter

    from netweave_helm.storage.local import LocalChartStore

DEFAULT_SERVE_PATH = "/charts"


class HelmHooks:
    """The hook implementations; one shared object, state per gateway process."""

    @hookimpl
    def netweave_app_init(self, app_config: Any, adapters: dict[str, DMSAdapter]) -> list[Any]:
        from netweave_helm.adapter import HelmAdapter

        routers: list[Any] = []
        taken: set[str] = set()
        for name, adapter in adapters.items():
            if not isinstance(adapter, HelmAdapter):
                continue
            store = adapter.local_store
            if store is None or not adapter.serves_repository:
                continue
            path = adapter.requested_serve_path
            if path is None:
                path = (
                    DEFAULT_SERVE_PATH
                    if DEFAULT_SERVE_PATH not in taken
                    else (f"{DEFAULT_SERVE_PATH}/{name}")
                )
            if path in taken:
                raise ValueError(f"two Helm repositories would be served at {path}")
            taken.add(path)
            store.served_at = path
            routers.append(repository_router(store, path))
        return routers


def repository_router(store: LocalChartStore, path: str) -> Router:
    """A Litestar router serving ``store`` as a Helm HTTP repository at ``path``."""

    @get("/index.yaml", include_in_schema=False, name=f"helm-index:{path}")
    async def index_yaml() -> Response[bytes]:
        return Response(await store.index_bytes(), media_type="application/x-yaml")

    @get("/{filename:str}", include_in_schema=False, name=f"helm-archive:{path}")
    async def chart_archive(filename: FromPath[str]) -> File:
        archive = store.archive_path(filename)
        if archive is None:
            raise NotFoundException(f"no chart archive {filename!r}")
        return File(path=archive, filename=filename, media_type="application/gzip")

    return Router(path=path, route_handlers=[index_yaml, chart_archive])


HOOKS = HelmHooks()

__all__ = ["DEFAULT_SERVE_PATH", "HOOKS", "HelmHooks", "repository_router"]
