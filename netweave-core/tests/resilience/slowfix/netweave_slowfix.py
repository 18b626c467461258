"""A slow test adapter that records every backend action in PostgreSQL (survives SIGKILL).

Loaded by a real ``netweave serve`` through a ``netweave.adapters`` entry point (the test writes
a ``.dist-info`` next to this module on the child's ``PYTHONPATH``). Each deployment create:

1. records the call (``slow_calls``: idempotency key, operation id, process id);
2. if an execution with that idempotency key exists, returns its result (a backend that honours
   idempotency tokens, as the contract asks adapters to do) — nothing is executed again;
3. otherwise waits ``before`` seconds, records the execution (``slow_executions``, no unique
   constraint, so a double execution shows as two rows), then waits ``after`` seconds (the
   backend applied the change but the answer is still on its way: a kill here is the case an
   idempotency key exists for).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, ClassVar

import asyncpg  # type: ignore[import-untyped]
from netweave.adapters import (
    AdapterConfig,
    AdapterHealth,
    Capability,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import NotFound
from netweave.models import DeploymentStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS slow_calls (
    id bigserial PRIMARY KEY, key text NOT NULL, operation_id text NOT NULL,
    pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS slow_executions (
    id bigserial PRIMARY KEY, key text NOT NULL, operation_id text NOT NULL,
    ref text NOT NULL, pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
"""


class SlowConfig(AdapterConfig):
    dsn: str
    before: float = 1.0
    after: float = 0.0


class SlowAdapter(DMSAdapter):
    TYPE: ClassVar[str] = "slowfix"
    DISTRIBUTION: ClassVar[str] = "netweave-slowfix"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PACKAGE_MANAGEMENT,
            Capability.PACKAGE_LISTING,
            Capability.DEPLOYMENT_LIFECYCLE,
        }
    )
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({"slow"})
    DESCRIPTION: ClassVar[str] = "test fixture: slow, counts executions per idempotency key"
    Config = SlowConfig

    config: SlowConfig

    def __init__(self, name: str, config: AdapterConfig, *, data_dir: Path | None = None) -> None:
        super().__init__(name, config, data_dir=data_dir)
        self._pool: Any = None

    async def _start(self) -> None:
        self._pool = await asyncpg.create_pool(self.config.dsn, min_size=1, max_size=8)
        async with self._pool.acquire() as conn:
            await conn.execute(SCHEMA)

    async def _stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _health(self) -> AdapterHealth:
        return AdapterHealth(healthy=True)

    async def _list_packages(self) -> list[PackageInfo]:
        return []

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        return PackageInfo(
            backend_ref=f"{upload.name}:{upload.version}",
            name=upload.name,
            version=upload.version,
            package_type="slow",
            package_uri=upload.package_uri,
        )

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        name, _, version = backend_ref.partition(":")
        return PackageInfo(backend_ref=backend_ref, name=name, version=version, package_type="slow")

    async def _delete_package(self, backend_ref: str) -> None:
        return None

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        ref = f"{spec.namespace}/{spec.name}"
        pid = os.getpid()
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO slow_calls (key, operation_id, pid) VALUES ($1, $2, $3)",
                ctx.idempotency_key,
                ctx.operation_id,
                pid,
            )
            done = await conn.fetchval(
                "SELECT count(*) FROM slow_executions WHERE key = $1", ctx.idempotency_key
            )
        if done:
            return self._deployed(ref)
        await asyncio.sleep(self.config.before)
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO slow_executions (key, operation_id, ref, pid) VALUES ($1, $2, $3, $4)",
                ctx.idempotency_key,
                ctx.operation_id,
                ref,
                pid,
            )
        await asyncio.sleep(self.config.after)
        return self._deployed(ref)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT count(*) FROM slow_executions WHERE ref = $1", backend_ref
            )
        if not found:
            raise NotFound(f"no deployment {backend_ref}")
        return self._deployed(backend_ref)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        return None

    @staticmethod
    def _deployed(ref: str) -> DeploymentInfo:
        return DeploymentInfo(backend_ref=ref, status=DeploymentStatus.DEPLOYED, revision=1)
