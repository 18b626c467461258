"""pluggy hooks of the Helm adapter (registered by the loader via ``HelmAdapter.hooks``).

What a Helm instance requires of a request (a cluster, for a deployment) is its contract
pre-check ``HelmAdapter._check_deployment``, not a hook: hooks keep no state of their own.

* ``netweave_app_init`` serves every local chart repository as a standard Helm HTTP repository:
  ``GET <path>/index.yaml`` and ``GET <path>/<name>-<version>.tgz``. The first served instance
  gets ``/charts`` (``helm repo add netweave http://gateway/charts``), others
  ``/charts/<instance>``, unless ``storage.servePath`` says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, HeaderParameter
from litestar.response import File
from netweave.hookspecs import hookimpl

if TYPE_CHECKING:
    from netweave.adapters import DMSAdapter

    from netweave_helm.storage.local import LocalChartStore

DEFAULT_SERVE_PATH = "/charts"


class HelmHooks:
    """The hook implementations: stateless, they act on the adapter objects they are given."""

    @hookimpl
    def netweave_app_init(self, app_config: Any, adapters: dict[str, DMSAdapter]) -> list[Any]:
        from netweave_helm.adapter import HelmAdapter

        served: list[tuple[str, HelmAdapter]] = [
            (name, adapter)
            for name, adapter in adapters.items()
            if isinstance(adapter, HelmAdapter)
            and adapter.local_store is not None
            and adapter.serves_repository
        ]
        # Explicit paths first, so a default never takes a path someone asked for.
        served.sort(key=lambda item: item[1].requested_serve_path is None)
        routers: list[Any] = []
        taken: set[str] = set()
        for name, adapter in served:
            store = adapter.local_store
            assert store is not None
            path = adapter.requested_serve_path
            if path is None:
                path = (
                    DEFAULT_SERVE_PATH
                    if DEFAULT_SERVE_PATH not in taken
                    else f"{DEFAULT_SERVE_PATH}/{name}"
                )
            if path in taken:
                raise ValueError(f"two Helm chart repositories would be served at {path}")
            taken.add(path)
            store.served_at = path
            routers.append(repository_router(store, path))
        return routers


def repository_router(store: LocalChartStore, path: str) -> Router:
    """A Litestar router serving ``store`` as a Helm HTTP repository at ``path``."""

    @get("/index.yaml", include_in_schema=False, name=f"helm-index:{path}")
    async def index_yaml(
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
    ) -> Response[bytes]:
        # Rendered once per change; a client holding the current one gets 304 and no body.
        body, etag = await store.index()
        if if_none_match is not None and etag in (t.strip() for t in if_none_match.split(",")):
            return Response(b"", status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/x-yaml", headers={"ETag": etag})

    @get("/{filename:str}", include_in_schema=False, name=f"helm-archive:{path}")
    async def chart_archive(filename: FromPath[str]) -> File:
        archive = store.archive_path(filename)
        if archive is None:
            raise NotFoundException(f"no chart archive {filename!r}")
        return File(path=archive, filename=filename, media_type="application/gzip")

    return Router(path=path, route_handlers=[index_yaml, chart_archive])


HOOKS = HelmHooks()

__all__ = ["DEFAULT_SERVE_PATH", "HOOKS", "HelmHooks", "repository_router"]
