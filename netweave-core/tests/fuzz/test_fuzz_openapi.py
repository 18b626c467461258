"""R1: schemathesis against the committed OpenAPI document (``openapi.json``) and the real app
(memory adapter, SQLite, a valid bearer token), served by uvicorn on 127.0.0.1.

Every generated request must get an answer without a 5xx, whose status, content type, headers
and body the document describes. Bounded: ``MAX_EXAMPLES`` per operation, no deadline per
example; the module checks at the end that at least ``MIN_REQUESTS`` requests were made.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from netweave.api.app import create_app
from netweave.plugins import make_plugin_manager
from netweave.registry import AdapterRegistry
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.gateway import AUTH, make_settings
from support.memory_adapter import MemoryAdapter

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"
MAX_EXAMPLES = 100
MIN_REQUESTS = 2000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(DOCUMENT)
_requests: list[str] = []
_statuses: Counter[int] = Counter()
_operations_run: set[str] = set()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz")
    gateway_settings = make_settings(root / "data")
    gateway_settings.store.url = SecretStr(f"sqlite:///{root / 'netweave.db'}")
    app = create_app(
        gateway_settings,
        registry=AdapterRegistry({"mem": MemoryAdapter("mem")}),
        plugin_manager=make_plugin_manager(),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
    if len(_operations_run) == len(list(schema.get_all_operations())):
        # Only meaningful when every operation ran (not under -k selection).
        assert len(_requests) >= MIN_REQUESTS, len(_requests)
        print(
            f"\nR1: {len(_requests)} requests over {len(_operations_run)} operations; "
            f"statuses {dict(sorted(_statuses.items()))}"
        )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_document(case: schemathesis.Case[Any], base_url: str) -> None:
    _operations_run.add(case.operation.label)
    _requests.append(case.operation.label)
    response = case.call_and_validate(base_url=base_url, headers=dict(AUTH), checks=CHECKS)
    _statuses[response.status_code] += 1
