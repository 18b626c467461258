"""The reconciler's shard leases in ``SqlStore``: which replica reconciles which deployments."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from netweave.errors import InvalidInput
from netweave.store.engine import SqlBase, _translate
from netweave.store.rows import _R, _check_lease, _require_aware


def _presence_shard(owner: str) -> int:
    """The negative row a reconciling replica keeps alive beside its shards."""
    import zlib

    return -1 - zlib.crc32(owner.encode()) % (2**30)


class ReconcileShardRows(SqlBase):
    """The reconciler's shards shared between replicas (``reconcile_shards``)."""

    async def claim_reconcile_shards(
        self, *, owner: str, shards: int, want: int, lease_seconds: float, now: datetime
    ) -> list[int]:
        _require_aware("now", now)
        _check_lease(owner, lease_seconds)
        if not 1 <= shards <= 4096 or not 0 <= want <= shards:
            raise InvalidInput("shards must be 1..4096 and want 0..shards")
        until = now + timedelta(seconds=lease_seconds)
        free = or_(_R.c.lease_owner == owner, _R.c.lease_expires_at.is_(None))
        free = or_(free, _R.c.lease_expires_at <= now)
        real = (_R.c.shard >= 0) & (_R.c.shard < shards)
        from sqlalchemy.dialects import postgresql as pg
        from sqlalchemy.dialects import sqlite as lite

        dialect = pg if self.dialect == "postgresql" else lite
        with _translate("claiming reconcile shards"):
            async with self._conn(write=True) as conn:
                # The replica's presence (a negative shard of its own), so that the others
                # count it when they compute their fair share even while it holds none.
                presence = dialect.insert(_R).values(
                    shard=_presence_shard(owner), lease_owner=owner, lease_expires_at=until
                )
                await conn.execute(
                    presence.on_conflict_do_update(
                        index_elements=[_R.c.shard],
                        set_={"lease_owner": owner, "lease_expires_at": until},
                    )
                )
                existing = set((await conn.execute(select(_R.c.shard).where(real))).scalars())
                missing = [n for n in range(shards) if n not in existing]
                if missing:
                    # Another replica may insert the same rows meanwhile: theirs count.
                    await conn.execute(
                        dialect.insert(_R)
                        .values([{"shard": n} for n in missing])
                        .on_conflict_do_nothing()
                    )
                mine = list(
                    (
                        await conn.execute(
                            select(_R.c.shard)
                            .where(real, _R.c.lease_owner == owner)
                            .where(_R.c.lease_expires_at > now)
                            .order_by(_R.c.shard)
                            .with_for_update(skip_locked=True)
                        )
                    ).scalars()
                )
                keep = mine[:want]
                more = want - len(keep)
                if more > 0:
                    found = (
                        await conn.execute(
                            select(_R.c.shard)
                            .where(real, free, _R.c.shard.not_in(keep or [-1]))
                            .order_by(_R.c.shard)
                            .limit(more)
                            .with_for_update(skip_locked=True)
                        )
                    ).scalars()
                    keep += list(found)
                if keep:
                    await conn.execute(
                        update(_R)
                        .where(_R.c.shard.in_(keep))
                        .values(lease_owner=owner, lease_expires_at=until)
                    )
                dropped = [n for n in mine if n not in keep]
                if dropped:
                    await conn.execute(
                        update(_R)
                        .where(_R.c.shard.in_(dropped), _R.c.lease_owner == owner)
                        .values(lease_owner=None, lease_expires_at=None)
                    )
        return sorted(keep)

    async def reconcile_owners(self, *, now: datetime) -> set[str]:
        _require_aware("now", now)
        with _translate("reading reconcile shard owners"):
            async with self._conn(write=False) as conn:
                rows = await conn.execute(
                    select(_R.c.lease_owner)
                    .where(_R.c.lease_owner.is_not(None), _R.c.lease_expires_at > now)
                    .distinct()
                )
                return {str(owner) for owner in rows.scalars()}

    async def release_reconcile_shards(self, *, owner: str) -> None:
        with _translate("releasing reconcile shards"):
            async with self._conn(write=True) as conn:
                await conn.execute(
                    update(_R)
                    .where(_R.c.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )
