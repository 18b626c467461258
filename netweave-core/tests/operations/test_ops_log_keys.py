"""Every line logged while an operation runs (the adapter's too) carries its ids as keys."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.logging import configure_logging
from netweave.testing.gateway import running_gateway
from support.memory_adapter import MemoryAdapter


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    yield out
    for handler in list(root.handlers):
        if handler.get_name() == "netweave":
            root.removeHandler(handler)
    root.setLevel(level)


class LoggingAdapter(MemoryAdapter):
    """Logs from inside the backend call, as an adapter's client would."""

    async def _create_deployment(self, *args: Any, **kwargs: Any) -> Any:
        logging.getLogger("netweave.test.backend").info("backend call")
        return await super()._create_deployment(*args, **kwargs)


async def test_adapter_lines_carry_the_operation_ids(tmp_path: Path, stream: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=stream)
    adapter = LoggingAdapter()
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        uploaded = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            data={"name": "hello", "artifactVersion": "0.1.0"},
            files={"chart": ("hello.tgz", b"chart bytes", "application/gzip")},
        )
        assert uploaded.status_code == 201, uploaded.text
        created = await gw.post(
            "/o2dms/v1/nfDeployments", json={"name": "web", "packageId": "hello-0.1.0"}
        )
        assert created.status_code in (201, 202), created.text
        operation_id = gw.operation_id(created)
        final = await gw.wait_operation(operation_id)
        assert final["state"] == "COMPLETED"
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    (backend,) = [r for r in records if r.get("event") == "backend call"]
    assert backend["operationId"] == operation_id
    assert backend["deploymentId"] == created.json()["deploymentId"]
    assert backend["adapter"] == "memory"
    assert backend["operationType"] == "CREATE"
    # Outside the operation, nothing is bound: the ids do not leak into other lines.
    assert all("operationId" not in r for r in records if r.get("event") != "backend call"
               and r.get("logger", "").startswith("netweave.api"))  # fmt: skip


async def test_worker_lines_carry_the_creating_request_id(
    tmp_path: Path, stream: io.StringIO
) -> None:
    configure_logging("json", "INFO", stream=stream)
    async with running_gateway(tmp_path, adapters=[LoggingAdapter()]) as gw:
        uploaded = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            data={"name": "hello", "artifactVersion": "0.1.0"},
            files={"chart": ("hello.tgz", b"chart bytes", "application/gzip")},
        )
        assert uploaded.status_code == 201, uploaded.text
        created = await gw.post(
            "/o2dms/v1/nfDeployments",
            json={"name": "web", "packageId": "hello-0.1.0"},
            headers={"X-Request-ID": "req-create-0042"},
        )
        assert created.status_code in (201, 202), created.text
        assert created.headers["X-Request-ID"] == "req-create-0042"
        operation_id = gw.operation_id(created)
        final = await gw.wait_operation(operation_id)
        assert final["state"] == "COMPLETED"
        # Stored with the operation, never shown: params are the client's.
        assert "_requestId" not in final.get("params", {})
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    (backend,) = [r for r in records if r.get("event") == "backend call"]
    assert backend["requestId"] == "req-create-0042"
    assert backend["operationId"] == operation_id
    # The HTTP line of that POST has the same id: the two are found together.
    access = [r for r in records if r.get("requestId") == "req-create-0042"]
    assert any(r.get("logger") == "netweave.access" for r in access), access
