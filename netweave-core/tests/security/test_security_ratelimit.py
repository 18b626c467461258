"""Rate limiting per client on mutating routes: the bucket, and the app's 429 answers."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from netweave.api.auth import token_hash
from netweave.api.ratelimit import TokenBucketLimiter
from netweave.config import RateLimitSettings
from netweave.store import ApiTokenRecord
from support.gateway import make_settings, running_gateway


def test_bucket_allows_a_burst_then_refills() -> None:
    limiter = TokenBucketLimiter(3, 60.0)
    assert [limiter.take("a", now=100.0) for _ in range(3)] == [None, None, None]
    wait = limiter.take("a", now=100.0)
    assert wait == pytest.approx(20.0)  # one token every 60/3 s
    assert limiter.take("b", now=100.0) is None  # other clients have their own bucket
    assert limiter.take("a", now=110.0) == pytest.approx(10.0)
    assert limiter.take("a", now=120.5) is None
    assert limiter.take("a", now=120.5) is not None


def test_bucket_memory_is_bounded() -> None:
    limiter = TokenBucketLimiter(1, 1.0, max_clients=10)
    for n in range(100):
        limiter.take(f"client-{n}", now=0.0)
    assert limiter.take("client-99", now=0.0) is not None  # recent ones are remembered
    assert limiter.take("client-0", now=0.0) is None  # the oldest were forgotten


def test_disabled_by_default() -> None:
    assert TokenBucketLimiter.from_settings(RateLimitSettings()) is None


async def test_mutating_requests_beyond_the_limit_get_429(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    settings.api.rate_limit = RateLimitSettings(enabled=True, requests=3, window_seconds=60)
    async with running_gateway(tmp_path, settings=settings) as gw:
        for n in range(3):
            await gw.register_package(name=f"app{n}")
        refused = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            json={"name": "app9", "artifactVersion": "1.0.0", "packageUri": "oci://r/app9:1"},
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        problem = refused.json()
        assert problem["status"] == 429 and problem["error"] == "TooManyRequests"
        # Nothing was stored for the refused request.
        assert await gw.store.find_package("app9", "1.0.0") is None
        # Reads are not limited.
        for _ in range(10):
            listed = await gw.get("/o2dms/v1/nfDeploymentDescriptors")
            assert listed.status_code == 200
        # Another client (another token, another subject) has its own budget.
        other = secrets.token_urlsafe(32)
        await gw.store.add_api_token(
            ApiTokenRecord(
                token_id=uuid.uuid4().hex,
                token_hash=token_hash(other),
                scopes=["o2dms:write"],
                created_at=datetime.now(UTC),
            )
        )
        accepted = await gw.client.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            json={"name": "app8", "artifactVersion": "1.0.0", "packageUri": "oci://r/app8:1"},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert accepted.status_code == 201, accepted.text
