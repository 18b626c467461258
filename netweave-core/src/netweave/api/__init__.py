"""The HTTP API (Litestar): controllers, auth, problem mapping. Entry point: ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netweave.api.app import create_app


def __getattr__(name: str) -> Any:
    # Lazy, so ``python -m netweave.api.openapi`` does not import the module twice.
    if name == "create_app":
        from netweave.api.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
