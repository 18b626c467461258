"""pluggy hooks of the Helm adapter (registered by the loader via ``HelmAdapter.hooks``).

What a Helm instance requires of a request (a cluster, for a deployment) is its contract
pre-check ``HelmAdapter._check_deployment``, not a hook: hooks keep no state of their own.

* ``netweave_register_routes`` serves every local chart repository as a standard Helm HTTP
  repository (routes declared with core's ``netweave.adapters.routes``, no web framework):
  ``GET <path>/index.yaml`` and ``GET <path>/<name>-<version>.tgz``. The first served instance
  gets ``/charts`` (``helm repo add netweave http://gateway/charts``), others
  ``/charts/<instance>``, unless ``storage.servePath`` says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netweave.adapters.routes import RegisterRoute, Route, RouteRequest, RouteResponse
from netweave.errors import NotFound
from netweave.hookspecs import hookimpl

if TYPE_CHECKING:
    from netweave.adapters import DMSAdapter

    from netweave_helm.storage.local import LocalChartStore

DEFAULT_SERVE_PATH = "/charts"


class HelmHooks:
    """The hook implementations: stateless, they act on the adapter objects they are given."""

    @hookimpl
    def netweave_register_routes(
        self, register: RegisterRoute, adapters: dict[str, DMSAdapter]
    ) -> None:
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
            for route in repository_routes(store, path):
                register(route)


def repository_routes(store: LocalChartStore, path: str) -> list[Route]:
    """The routes serving ``store`` as a Helm HTTP repository at ``path``."""

    async def index_yaml(request: RouteRequest) -> RouteResponse:
        # Rendered once per change; a client holding the current one gets 304 and no body.
        body, etag = await store.index()
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag in (t.strip() for t in if_none_match.split(",")):
            return RouteResponse(status=304, headers={"ETag": etag})
        return RouteResponse(body=body, media_type="application/x-yaml", headers={"ETag": etag})

    async def chart_archive(request: RouteRequest) -> RouteResponse:
        filename = request.path_params["filename"]
        archive = store.archive_path(filename)
        if archive is None:
            raise NotFound(f"no chart archive {filename!r}")
        return RouteResponse(file=archive, filename=filename, media_type="application/gzip")

    return [
        Route(f"{path}/index.yaml", index_yaml, name=f"helm-index:{path}"),
        Route(f"{path}/{{filename}}", chart_archive, name=f"helm-archive:{path}"),
    ]


HOOKS = HelmHooks()

__all__ = ["DEFAULT_SERVE_PATH", "HOOKS", "HelmHooks", "repository_routes"]
