"""Crash soak (issue 16): ``kill -9`` of ``netweave serve`` while Helm installs run.

S1  3 rounds of 20 creates on SQLite, the gateway SIGKILLed mid-way and restarted on the same
    data directory.
S2  30 creates across two replicas on one PostgreSQL database, one replica SIGKILLed mid-way;
    the other takes its operations over when their lease ends.

Each round prints what Helm's own release storage holds afterwards: deployed, stuck (operation
not settled, deployment still DEPLOYING, or release still pending-*), installed twice (more
than one release carrying a deployment's label). Targets: stuck = 0 and installed twice = 0;
the script exits non-zero when a target is missed.

Real components: ``netweave serve`` processes with the Helm adapter (real Helm SDK) against the
project's Kubernetes API emulator (in this process), real PostgreSQL
(``NETWEAVE_TEST_POSTGRES_URL``, default 127.0.0.1:5432 database ``test``; a throw-away database
per run). Every wait is bounded.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import shared_dir, stop_gateway  # noqa: E402
from crashround import RoundResult, crash_round  # noqa: E402
from netweave.testing.k8s import KubernetesEmulator  # noqa: E402
from netweave.testing.postgres import POSTGRES_URL, temporary_database  # noqa: E402

ROUNDS = 3
SQLITE_CREATES = 20
PG_CREATES = 30


def one_round(label: str, creates: int, replicas: int, store_url: str | None) -> RoundResult:
    chart = shared_dir() / "charts" / "hello-world-0.1.0.tgz"
    with tempfile.TemporaryDirectory(prefix="netweave-soak-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        emulator = KubernetesEmulator().start()
        started = time.monotonic()
        try:
            result, gateway = crash_round(
                emulator,
                Path(tmp),
                home,
                chart,
                creates=creates,
                replicas=replicas,
                store_url=store_url,
            )
            stop_gateway(gateway)
        finally:
            emulator.stop()
    print(f"  {label}: {result.summary()} in {time.monotonic() - started:.1f} s", flush=True)
    for problem in result.problems:
        print(f"    untruthful: {problem}", flush=True)
    return result


def postgres_round() -> RoundResult | None:
    with temporary_database("soak", required=False) as url:
        if url is None:
            print(f"  PostgreSQL not reachable at {POSTGRES_URL}: S2 not run", flush=True)
            return None
        return one_round("2 replicas, 1 killed", PG_CREATES, 2, url)


def totals(results: list[RoundResult]) -> tuple[int, int, int, int]:
    return (
        sum(r.deployed for r in results),
        sum(r.created for r in results),
        sum(r.stuck for r in results),
        sum(r.installed_twice for r in results),
    )


def main() -> int:
    missed = False
    print(f"S1  SQLite, {ROUNDS} rounds of {SQLITE_CREATES} creates, kill -9 mid-way, restart")
    sqlite = [one_round(f"round {i + 1}", SQLITE_CREATES, 1, None) for i in range(ROUNDS)]
    deployed, created, stuck, twice = totals(sqlite)
    print(f"S1  deployed {deployed}/{created}, stuck {stuck}, installed twice {twice}")
    missed |= stuck > 0 or twice > 0 or any(r.problems for r in sqlite)

    print(f"S2  PostgreSQL, {PG_CREATES} creates across two replicas, one kill -9'd")
    pg = postgres_round()
    if pg is None:
        missed |= os.environ.get("NETWEAVE_REQUIRE_BACKENDS") == "1"
    else:
        deployed, created, stuck, twice = totals([pg])
        print(f"S2  deployed {deployed}/{created}, stuck {stuck}, installed twice {twice}")
        missed |= stuck > 0 or twice > 0 or bool(pg.problems)
    print("targets: stuck = 0, installed twice = 0:", "MISSED" if missed else "met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
