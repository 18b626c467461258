"""Serving a small ASGI app (a callback receiver, a JWKS issuer) on loopback for a test."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from litestar import Litestar


@asynccontextmanager
async def served_in_thread(app: Litestar, **options: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in its own thread and event loop; yields the URL
    (``https`` when ``options``, uvicorn's settings, carry a certificate).

    Its own loop because a gateway under ``AsyncTestClient`` blocks the test's loop while it
    handles a request: a server on that loop could not answer the gateway's callbacks.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, lifespan="off", access_log=False, **options)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # bounded: 5 s
            if server.started or not thread.is_alive():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        scheme = "https" if options.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
        sock.close()
