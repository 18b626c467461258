"""One crash round: real ``netweave serve`` processes install releases with the real Helm SDK
into a Kubernetes API emulator (in this process); one gateway is SIGKILLed while installs are
under way; a gateway (restarted on the same data directory, or the surviving replica) resumes.
Then the round reads what Helm's release storage really holds.

Used by the end-to-end tests (``test_crash_recovery.py``) and by the soak benchmark
(``benchmarks/bench_crash_soak.py``), which prints the counts.
"""

from __future__ import annotations

import hashlib
import re
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from conftest import Gateway, start_gateway, stop_gateway

BASE = "/o2dms/v1"
NAMESPACE = "crash"
DEPLOYMENT_LABEL = "netweave-deployment"  # the Helm adapter's label (netweave_helm.adapter)
TERMINAL = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
PENDING = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def label_value(value: str) -> str:
    """The adapter's label value for ``value`` (itself when Kubernetes accepts it)."""
    return value if _LABEL_VALUE.match(value) else hashlib.sha256(value.encode()).hexdigest()[:40]


def gateway_config(kubeconfig: Path, repository: Path, store_url: str | None = None) -> str:
    store = f"store: {{url: '{store_url}'}}\n" if store_url else ""
    return (
        store
        # A short lease: a crashed replica's operations are taken over within seconds.
        + "operations: {leaseSeconds: 3, pollInterval: 0.05}\n"
        "plugins:\n  dms:\n"
        "    - name: helm\n      type: helm\n      default: true\n      config:\n"
        f"        storage: {{kind: local, repositoryDir: '{repository}'}}\n"
        f"        cluster: {{kubeconfig: '{kubeconfig}', wait: none, namespace: {NAMESPACE}}}\n"
        "        timeouts: {write: 30}\n"
    )


@dataclass
class Release:
    name: str
    revisions: list[tuple[int, str]] = field(default_factory=list)
    deployment_labels: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        return max(self.revisions)[1]


def helm_releases(emulator: Any) -> dict[str, Release]:
    """Every release in Helm's storage (Secrets labelled owner=helm), by name."""
    releases: dict[str, Release] = {}
    for secret in emulator.list("v1", "Secret", NAMESPACE, label_selector="owner=helm"):
        labels = secret["metadata"]["labels"]
        release = releases.setdefault(labels["name"], Release(labels["name"]))
        release.revisions.append((int(labels["version"]), labels["status"]))
        if DEPLOYMENT_LABEL in labels:
            release.deployment_labels.add(labels[DEPLOYMENT_LABEL])
    return releases


@dataclass
class RoundResult:
    created: int
    killed_with_pending: int
    operations: dict[str, str]  # deployment id -> its create operation's state
    deployments: dict[str, dict[str, Any]]  # deployment id -> the gateway's record
    releases: dict[str, Release]
    problems: list[str]

    @property
    def deployed(self) -> int:
        return sum(
            1
            for d in self.deployments.values()
            if d["status"] == "DEPLOYED" and self._release_of(d) is not None
        )

    @property
    def stuck(self) -> int:
        """Deployments whose operation did not settle, still DEPLOYING (…) in the gateway, or
        whose release Helm still holds pending."""
        count = 0
        for deployment_id, record in self.deployments.items():
            release = self._release_of(record)
            if (
                self.operations.get(deployment_id) not in TERMINAL
                or record["status"] in {"DEPLOYING", "PENDING", "ROLLING_BACK"}
                or (release is not None and release.status in PENDING)
            ):
                count += 1
        return count

    @property
    def installed_twice(self) -> int:
        """Deployments with more than one Helm release carrying their label."""
        by_deployment: dict[str, set[str]] = defaultdict(set)
        for release in self.releases.values():
            for value in release.deployment_labels:
                by_deployment[value].add(release.name)
        return sum(1 for d in self.deployments if len(by_deployment.get(label_value(d), set())) > 1)

    def _release_of(self, record: dict[str, Any]) -> Release | None:
        return self.releases.get(record["name"])

    def summary(self) -> str:
        states: dict[str, int] = defaultdict(int)
        for state in self.operations.values():
            states[state] += 1
        return (
            f"deployed {self.deployed}/{self.created}, stuck {self.stuck}, "
            f"installed twice {self.installed_twice} "
            f"(operations {dict(sorted(states.items()))}; "
            f"{self.killed_with_pending} releases pending at the kill)"
        )


def upload_chart(client: httpx.Client, chart: Path) -> str:
    with chart.open("rb") as archive:
        response = client.post(
            f"{BASE}/nfDeploymentDescriptors",
            data={"name": "hello-world", "artifactVersion": "0.1.0"},
            files={"chart": (chart.name, archive, "application/gzip")},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["packageId"])


def _operation_id(response: httpx.Response) -> str:
    link = response.headers.get("link") or response.headers["location"]
    return str(link.split("/operations/")[1].split(">")[0])


def create_all(
    clients: list[httpx.Client], package_id: str, count: int, prefix: str
) -> dict[str, str]:
    """POST ``count`` creates (spread over ``clients``) at once; deployment id -> operation id."""

    def post(index: int) -> tuple[str, str]:
        client = clients[index % len(clients)]
        response = client.post(
            f"{BASE}/nfDeployments",
            json={
                "name": f"{prefix}{index:02d}",
                "namespace": NAMESPACE,
                "packageId": package_id,
                "values": {"replicaCount": 1},
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["deploymentId"]), _operation_id(response)

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(post, range(count)))


def kill_mid_way(emulator: Any, victim: Gateway, count: int, timeout: float = 30.0) -> int:
    """SIGKILL ``victim`` once Helm holds several releases pending (a quarter of ``count``;
    after a few seconds, any) while others are done or not begun; the pending count."""
    started = time.monotonic()
    pending = 0
    while time.monotonic() < started + timeout:
        releases = helm_releases(emulator).values()
        pending = sum(1 for r in releases if r.status in PENDING)
        done = sum(1 for r in releases if r.status == "deployed")
        enough = max(1, count // 4) if time.monotonic() < started + 5 else 1
        if pending >= enough and done < count:
            break
        time.sleep(0.01)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    return pending


def wait_settled(
    client: httpx.Client, operations: dict[str, str], timeout: float = 60.0
) -> dict[str, str]:
    """Operation id -> state, once every operation is terminal (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        for operation_id in operations.values():
            if states.get(operation_id) in TERMINAL:
                continue
            response = client.get(f"{BASE}/operations/{operation_id}")
            assert response.status_code == 200, response.text
            states[operation_id] = str(response.json()["state"])
        if all(state in TERMINAL for state in states.values()):
            break
        time.sleep(0.1)
    return states


def read_deployments(client: httpx.Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for deployment_id in ids:
        response = client.get(f"{BASE}/nfDeployments/{deployment_id}")
        assert response.status_code == 200, response.text
        out[deployment_id] = response.json()
    return out


def check_truth(result: RoundResult, failed_detail: Callable[[str], str]) -> list[str]:
    """What makes a round untruthful: an operation's word against Helm's storage."""
    problems: list[str] = []
    for deployment_id, record in result.deployments.items():
        release = result._release_of(record)
        state = result.operations.get(deployment_id)
        if state == "COMPLETED":
            if release is None or release.status != "deployed" or record["status"] != "DEPLOYED":
                problems.append(
                    f"{record['name']}: COMPLETED but Helm holds "
                    f"{release.revisions if release else 'no release'}, status {record['status']}"
                )
        elif state == "FAILED_TEMP":
            if release is not None and release.status == "deployed":
                problems.append(
                    f"{record['name']}: FAILED_TEMP ({failed_detail(deployment_id)}) but Helm "
                    "deployed it"
                )
        else:
            problems.append(f"{record['name']}: operation {state}")
    return problems


def crash_round(
    emulator: Any,
    tmp_path: Path,
    home: Path,
    chart: Path,
    *,
    creates: int,
    replicas: int = 1,
    store_url: str | None = None,
    prefix: str = "c",
) -> tuple[RoundResult, Gateway]:
    """Run one round; return its result and the gateway still running (the caller stops it).

    ``replicas == 1``: SQLite in the data directory; the gateway is killed and restarted on the
    same data directory. ``replicas == 2``: both on ``store_url`` (PostgreSQL) with one chart
    repository; the first is killed, the second resumes its operations after the lease.
    """
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    repository = tmp_path / "charts"
    config = gateway_config(kubeconfig, repository, store_url)
    data_dirs = [tmp_path / f"data-{i}" for i in range(replicas)]
    gateways = [start_gateway(d, config, home) for d in data_dirs]
    survivor: Gateway | None = None
    # Every Deployment apply takes a moment: installs are caught in the middle. An install
    # creates its Deployment (POST); with 0.2 s on PATCH only, installs could all end while
    # the creates were still being posted, and a CI trial's kill found none pending.
    slow = emulator.faults.latency(
        1.0,
        path=f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments*",
        method=frozenset({"POST", "PATCH"}),
    )
    try:
        clients = [g.client() for g in gateways]
        package_id = upload_chart(clients[0], chart)
        operations = create_all(clients, package_id, creates, prefix)
        pending = kill_mid_way(emulator, gateways[0], creates)
        for client in clients:
            client.close()
        slow.remove()
        # SQLite: a restart on the same data directory; PostgreSQL: the other replica.
        survivor = start_gateway(data_dirs[0], config, home) if replicas == 1 else gateways[1]
        with survivor.client() as client:
            states = wait_settled(client, operations)
            deployments = read_deployments(client, list(operations))
            by_deployment = {d: states.get(o, "?") for d, o in operations.items()}
            errors: dict[str, str] = {}
            for deployment_id, operation_id in operations.items():
                if by_deployment[deployment_id] == "FAILED_TEMP":
                    body = client.get(f"{BASE}/operations/{operation_id}").json()
                    errors[deployment_id] = str((body.get("error") or {}).get("detail"))
        result = RoundResult(
            created=creates,
            killed_with_pending=pending,
            operations=by_deployment,
            deployments=deployments,
            releases=helm_releases(emulator),
            problems=[],
        )
        result.problems = check_truth(result, lambda d: errors.get(d, ""))
        return result, survivor
    except BaseException:
        for gateway in [*gateways, *([survivor] if survivor else [])]:
            stop_gateway(gateway)
        raise
    finally:
        slow.remove()
        for gateway in gateways:
            if gateway is not survivor:
                stop_gateway(gateway)


def upgrade_all(gateway: Gateway, deployment_ids: list[str], replica_count: int) -> dict[str, str]:
    """PATCH every deployment's replicaCount; deployment id -> operation state."""
    with gateway.client() as client:

        def patch(deployment_id: str) -> tuple[str, str]:
            response = client.patch(
                f"{BASE}/nfDeployments/{deployment_id}",
                json={"values": {"replicaCount": replica_count}},
            )
            assert response.status_code == 202, response.text
            return deployment_id, _operation_id(response)

        with ThreadPoolExecutor(8) as pool:
            operations = dict(pool.map(patch, deployment_ids))
        states = wait_settled(client, operations)
        return {d: states.get(o, "?") for d, o in operations.items()}


def crash_upgrades(
    emulator: Any, gateway: Gateway, home: Path, deployment_ids: list[str], replica_count: int
) -> tuple[dict[str, str], int, Gateway]:
    """PATCH every deployment's replicaCount, SIGKILL ``gateway`` while upgrades are under way,
    restart it on the same data directory; (deployment id -> operation state, releases pending
    at the kill, the restarted gateway)."""
    config = gateway.config.read_text()
    slow = emulator.faults.latency(
        0.2, path=f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments*", method="PATCH"
    )
    try:
        with gateway.client() as client:

            def patch(deployment_id: str) -> tuple[str, str]:
                response = client.patch(
                    f"{BASE}/nfDeployments/{deployment_id}",
                    json={"values": {"replicaCount": replica_count}},
                )
                assert response.status_code == 202, response.text
                return deployment_id, _operation_id(response)

            with ThreadPoolExecutor(8) as pool:
                operations = dict(pool.map(patch, deployment_ids))
        pending = kill_mid_way(emulator, gateway, len(deployment_ids))
    finally:
        slow.remove()
    restarted = start_gateway(gateway.data_dir, config, home)
    with restarted.client() as client:
        states = wait_settled(client, operations)
    return {d: states.get(o, "?") for d, o in operations.items()}, pending, restarted
