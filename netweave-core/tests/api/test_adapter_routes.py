"""Routes adapters declare through ``netweave_register_routes`` (no Litestar in the adapter):
core builds the handlers, outside the token-protected API and its OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netweave.adapters import RegisterRoute, Route, RouteRequest, RouteResponse
from netweave.config.plugins import make_plugin_manager
from netweave.errors import NotFound
from netweave.hookspecs import hookimpl
from support.gateway import running_gateway
from support.problems import assert_problem


class FilesPlugin:
    """Serves ``<dir>/<name>`` at ``/files/<instance>/<name>`` and a listing with an ETag."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @hookimpl
    def netweave_register_routes(self, register: RegisterRoute, adapters: dict[str, Any]) -> None:
        for instance in sorted(adapters):

            async def listing(request: RouteRequest, instance: str = instance) -> RouteResponse:
                body = f"{instance}: {sorted(p.name for p in self.directory.iterdir())}\n"
                etag = f'"{len(body)}"'
                if request.headers.get("if-none-match") == etag:
                    return RouteResponse(status=304, headers={"ETag": etag})
                suffix = request.query.get("suffix", "")
                return RouteResponse(
                    body=(body + suffix).encode(), media_type="text/plain", headers={"ETag": etag}
                )

            async def one(request: RouteRequest) -> RouteResponse:
                name = request.path_params["name"]
                path = self.directory / name
                if not path.is_file():
                    raise NotFound(f"no file {name!r}")
                return RouteResponse(file=path, filename=name, media_type="application/gzip")

            register(Route(f"/files/{instance}/index", listing, name=f"files-index:{instance}"))
            register(Route(f"/files/{instance}/{{name}}", one, name=f"files-one:{instance}"))


async def test_declared_routes_are_served_without_a_token(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "a-1.0.0.tgz").write_bytes(b"\x1f\x8b archive")
    pm = make_plugin_manager()
    pm.register(FilesPlugin(served))
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        client = gw.client  # no Authorization header: like a Helm client
        listing = await client.get("/files/mem/index", params={"suffix": "!"})
        assert listing.status_code == 200, listing.text
        assert listing.text == "mem: ['a-1.0.0.tgz']\n!"
        assert listing.headers["content-type"].startswith("text/plain")
        etag = listing.headers["ETag"]
        again = await client.get("/files/mem/index", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""

        archive = await client.get("/files/mem/a-1.0.0.tgz")
        assert archive.status_code == 200
        assert archive.content == b"\x1f\x8b archive"
        assert archive.headers["content-type"] == "application/gzip"
        assert archive.headers["content-disposition"] == 'attachment; filename="a-1.0.0.tgz"'

        # NotFound from the handler: a 404 problem naming it; an unknown instance: no route.
        assert_problem(await client.get("/files/mem/b-1.0.0.tgz"), 404, "b-1.0.0.tgz")
        assert (await client.get("/files/other/a-1.0.0.tgz")).status_code == 404

        document = (await client.get("/schema/openapi.json")).json()
        assert not [p for p in document["paths"] if p.startswith("/files")]
