"""HTTP routes an adapter serves beside the API, declared without a web framework.

An adapter's hooks object implements ``netweave_register_routes(register, adapters)`` and
calls ``register(Route(...))`` for each route: a method, a path (``{name}`` for a path
parameter), and an async callable from :class:`RouteRequest` to :class:`RouteResponse`. Core
builds the web framework's handlers from them (``netweave.api.routes``), so no adapter imports
Litestar and the framework can change under them. A handler raising
:class:`netweave.errors.NotFound` answers 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a route handler sees of the request."""

    #: The path's ``{name}`` parameters.
    path_params: Mapping[str, str]
    #: Request headers, names lower-case (the first value of a repeated header).
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteResponse:
    """A route's answer: ``body`` bytes, or the file at ``file`` (streamed, with its size,
    modification time and ETag headers, as a download named ``filename``)."""

    status: int = 200
    body: bytes = b""
    #: ``None``: the framework's default for a body (JSON).
    media_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    file: Path | None = None
    filename: str | None = None


RouteHandler = Callable[[RouteRequest], Awaitable[RouteResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """One route: ``GET /charts/{filename}`` answered by ``handler``. Adapter routes are not
    part of the API's OpenAPI document and need no token (a Helm client fetches charts)."""

    path: str
    handler: RouteHandler
    #: Unique among all routes (the framework's route name).
    name: str
    methods: tuple[str, ...] = ("GET",)


#: What ``netweave_register_routes`` is given: call it once per route.
RegisterRoute = Callable[[Route], None]

__all__ = ["RegisterRoute", "Route", "RouteHandler", "RouteRequest", "RouteResponse"]
