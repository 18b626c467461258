"""``live.inspect``: every object of the manifest read and judged by its kind's rule, a
Service by the Pods its live selector selects."""

from __future__ import annotations

from typing import Any

import pytest
from netweave.errors import BackendUnavailable
from netweave_helm import live

MANIFEST = """---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
"""


def _pod(app: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{app}-pod", "labels": {"app": app}},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


class Reader:
    """Answers from a dict of path (+ selector) → object; records what it was asked."""

    def __init__(self, objects: dict[str, Any], fail: str | None = None) -> None:
        self.objects = objects
        self.fail = fail
        self.reads: list[str] = []

    def get(self, path: str, **query: str) -> dict[str, Any] | None:
        key = f"{path}?{query['labelSelector']}" if query else path
        self.reads.append(key)
        if key == self.fail:
            raise BackendUnavailable(f"reading {path}: unreachable")
        value = self.objects.get(key)
        return dict(value) if value is not None else None


SERVICE = "/api/v1/namespaces/ns/services/web"
DEPLOYMENT = "/apis/apps/v1/namespaces/ns/deployments/web"
PODS = "/api/v1/namespaces/ns/pods"
READY_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "generation": 1},
    "spec": {"replicas": 1},
    "status": {
        "observedGeneration": 1,
        "replicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
        "readyReplicas": 1,
    },
}


def _service(app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": app}}}  # fmt: skip


def test_every_object_and_the_selected_pods_are_read_and_judged() -> None:
    reader = Reader(
        {
            SERVICE: _service("web"),
            DEPLOYMENT: READY_DEPLOYMENT,
            f"{PODS}?app=web": {"items": [_pod("web", True)]},
        }
    )
    view = live.inspect(reader, MANIFEST, "ns")  # type: ignore[arg-type]
    assert sorted(reader.reads) == sorted([SERVICE, DEPLOYMENT, f"{PODS}?app=web"])
    assert [(r.kind, r.ready) for r in view.resources] == [("Service", True), ("Deployment", True)]
    assert view.drift == ()


def test_a_service_whose_live_selector_was_edited_is_judged_by_its_live_pods() -> None:
    # The rendered selector selects a ready Pod, the live one (edited) selects none ready: the
    # Service is judged by what it selects now, and the edit is drift.
    reader = Reader(
        {
            SERVICE: _service("other"),
            DEPLOYMENT: READY_DEPLOYMENT,
            f"{PODS}?app=web": {"items": [_pod("web", True)]},
            f"{PODS}?app=other": {"items": [_pod("other", False)]},
        }
    )
    view = live.inspect(reader, MANIFEST, "ns")  # type: ignore[arg-type]
    assert f"{PODS}?app=other" in reader.reads
    service = view.resources[0]
    assert (service.kind, service.ready) == ("Service", False)
    assert [(d.kind, d.change) for d in view.drift] == [("Service", "modified")]


def test_a_missing_object_is_not_ready_and_a_failed_read_is_raised() -> None:
    reader = Reader({SERVICE: _service("web"), f"{PODS}?app=web": {"items": []}})
    view = live.inspect(reader, MANIFEST, "ns")  # type: ignore[arg-type]
    assert [(r.kind, r.ready) for r in view.resources] == [
        ("Service", False),
        ("Deployment", False),
    ]
    assert [(d.kind, d.change) for d in view.drift] == [("Deployment", "missing")]
    failing = Reader({SERVICE: _service("web")}, fail=DEPLOYMENT)
    with pytest.raises(BackendUnavailable):
        live.inspect(failing, MANIFEST, "ns")  # type: ignore[arg-type]


def test_a_manifest_read_again_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner's polls and the reconciler's reads describe the same release (the same
    # manifest, a new string each time): its objects are parsed once; another manifest, or the
    # same in another namespace, is parsed; the kept ones are bounded.
    parses: list[str] = []
    real = live.load_documents

    def counted(text: str) -> list[Any]:
        parses.append(text)
        return real(text)

    monkeypatch.setattr(live, "load_documents", counted)
    monkeypatch.setattr(live, "_parsed", type(live._parsed)())
    monkeypatch.setattr(live, "_parsed_chars", 0)
    first = live.desired_objects(MANIFEST, "ns")
    assert len(parses) == 2  # two documents
    again = live.desired_objects("".join(list(MANIFEST)), "ns")
    assert len(parses) == 2
    assert again == first and again is not first
    reader = Reader({SERVICE: _service("web"), DEPLOYMENT: READY_DEPLOYMENT})
    view = live.inspect(reader, MANIFEST, "ns")  # type: ignore[arg-type]
    assert len(parses) == 2 and [r.kind for r in view.resources] == ["Service", "Deployment"]
    other = live.desired_objects(MANIFEST, "other")
    assert len(parses) == 4 and {d.namespace for d in other} == {"other"}
    changed = live.desired_objects(MANIFEST.replace("replicas: 1", "replicas: 2"), "ns")
    assert len(parses) == 6 and changed[1].obj["spec"] == {"replicas": 2}
    # Bounded: the least recently used goes first.
    monkeypatch.setattr(live, "_PARSED_ENTRIES", 2)
    live.desired_objects(MANIFEST, "ns")  # used again: now the most recent
    live.desired_objects(MANIFEST, "third")
    assert len(live._parsed) == 2 and ("other", MANIFEST) not in live._parsed
    assert ("ns", MANIFEST) in live._parsed


SERVICE_ACCOUNT = "/api/v1/namespaces/ns/serviceaccounts/web"
WITH_ACCOUNT = (
    MANIFEST.replace("---\napiVersion: apps/v1", "---\napiVersion: v1\nkind: ServiceAccount\n"
                     "metadata:\n  name: web\n---\napiVersion: apps/v1")
)  # fmt: skip


def test_the_read_begins_right_before_the_first_object_the_watch_reports() -> None:
    # Service, ServiceAccount, Deployment: the account (a kind the watch does not report) is
    # read first, then the cue, then the watched objects in the manifest's order (the Pods a
    # Service selects right after it); the view keeps the manifest's order.
    reader = Reader(
        {
            SERVICE: _service("web"),
            SERVICE_ACCOUNT: {"metadata": {"name": "web"}},
            DEPLOYMENT: READY_DEPLOYMENT,
            f"{PODS}?app=web": {"items": [_pod("web", True)]},
        }
    )
    view = live.inspect(
        reader,  # type: ignore[arg-type]
        WITH_ACCOUNT,
        "ns",
        begins=lambda: reader.reads.append("begins"),
        watched={"services", "deployments"},
    )
    assert reader.reads == [SERVICE_ACCOUNT, "begins", SERVICE, f"{PODS}?app=web", DEPLOYMENT]
    assert [(r.kind, r.ready) for r in view.resources] == [
        ("Service", True),
        ("ServiceAccount", True),
        ("Deployment", True),
    ]
    # Nothing the watch reports: the cue after the last read, once.
    unwatched = Reader(dict(reader.objects))
    live.inspect(
        unwatched,  # type: ignore[arg-type]
        WITH_ACCOUNT,
        "ns",
        begins=lambda: unwatched.reads.append("begins"),
    )
    assert unwatched.reads == [SERVICE, f"{PODS}?app=web", SERVICE_ACCOUNT, DEPLOYMENT, "begins"]
    # A live selector edited away from the rendered one: its own Pods are listed and judge
    # the Service, as without the cue.
    edited = Reader(
        {
            SERVICE: _service("other"),
            SERVICE_ACCOUNT: {"metadata": {"name": "web"}},
            DEPLOYMENT: READY_DEPLOYMENT,
            f"{PODS}?app=web": {"items": [_pod("web", True)]},
            f"{PODS}?app=other": {"items": [_pod("other", False)]},
        }
    )
    view = live.inspect(
        edited,  # type: ignore[arg-type]
        WITH_ACCOUNT,
        "ns",
        begins=lambda: edited.reads.append("begins"),
        watched={"services", "deployments"},
    )
    assert f"{PODS}?app=web" not in edited.reads and f"{PODS}?app=other" in edited.reads
    assert (view.resources[0].kind, view.resources[0].ready) == ("Service", False)
