"""Litestar handlers built from the routes adapters declare (``netweave.adapters.routes``)."""

from __future__ import annotations

import re
from typing import Any

from litestar import HttpMethod, Request, Response, route
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.response import File

from netweave.adapters.routes import Route, RouteRequest, RouteResponse
from netweave.errors import NotFound

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def build_handler(declared: Route) -> HTTPRouteHandler:
    """The Litestar handler answering ``declared``: outside the API's router (no token, no
    OpenAPI entry), its ``{name}`` path parameters strings."""
    handler = declared.handler

    async def serve(request: Request[Any, Any, Any]) -> Response[bytes] | File:
        seen = RouteRequest(
            path_params={k: str(v) for k, v in request.path_params.items()},
            headers={k.lower(): v for k, v in request.headers.items()},
            query={k: str(v) for k, v in request.query_params.items()},
        )
        try:
            answer = await handler(seen)
        except NotFound as exc:
            raise NotFoundException(str(exc)) from exc
        return _response(answer)

    return route(
        _PARAM.sub(r"{\1:str}", declared.path),
        http_method=[HttpMethod(m.upper()) for m in declared.methods],
        include_in_schema=False,
        name=declared.name,
    )(serve)


def _response(answer: RouteResponse) -> Response[bytes] | File:
    headers = dict(answer.headers) or None
    if answer.file is not None:
        return File(
            path=answer.file,
            filename=answer.filename,
            media_type=answer.media_type,
            headers=headers,
            status_code=answer.status,
        )
    if answer.media_type is None:
        return Response(answer.body, status_code=answer.status, headers=headers)
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=headers
    )


def build_handlers(routes: list[Route]) -> list[HTTPRouteHandler]:
    return [build_handler(r) for r in routes]


__all__ = ["build_handler", "build_handlers"]
