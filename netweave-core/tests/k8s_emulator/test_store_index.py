"""The emulator's object store at 20 000 objects: lists by namespace read that namespace only,
and the sorted order of a list is kept until a key is added or removed."""

from __future__ import annotations

from netweave.testing.k8s.store import Store

SKEY = ("", "configmaps")


def _obj(ns: str, name: str, rv: int, data: str = "x") -> dict[str, object]:
    return {
        "metadata": {"namespace": ns, "name": name, "resourceVersion": str(rv)},
        "data": {"v": data},
    }


def test_lists_by_namespace_and_in_order_with_many_objects() -> None:
    store = Store()
    # Written in an order that is not the sorted one.
    for i in reversed(range(20_000)):
        ns = f"ns{i % 50:02d}"
        store.put(SKEY, _obj(ns, f"cm{i:05d}", store.next_rv()), "ADDED", None)
    assert store.count(SKEY) == 20_000
    ns07 = store.items(SKEY, "ns07")
    assert [o["metadata"]["name"] for o in ns07] == [  # type: ignore[index]
        f"cm{i:05d}" for i in range(7, 20_000, 50)
    ]
    everything = store.items(SKEY)
    names = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in everything]  # type: ignore[index]
    assert names == sorted(names) and len(names) == 20_000

    # A modification keeps the cached order and shows the new object.
    order = store._order[(SKEY, "ns07")]
    store.put(SKEY, _obj("ns07", "cm00007", store.next_rv(), "changed"), "MODIFIED", ns07[0])
    assert store._order[(SKEY, "ns07")] is order
    assert store.items(SKEY, "ns07")[0]["data"] == {"v": "changed"}

    # Adding and deleting keys changes the lists at once.
    store.put(SKEY, _obj("ns07", "aaa", store.next_rv()), "ADDED", None)
    assert store.items(SKEY, "ns07")[0]["metadata"]["name"] == "aaa"  # type: ignore[index]
    gone = store.get(SKEY, "ns07", "cm00057")
    assert gone is not None
    store.delete(SKEY, gone, store.next_rv())
    listed = [o["metadata"]["name"] for o in store.items(SKEY, "ns07")]  # type: ignore[index]
    assert "cm00057" not in listed and len(listed) == 400
    assert store.count(SKEY, "ns07") == 400 and store.count(SKEY) == 20_000
    assert store.items(SKEY, "absent") == [] and store.count(SKEY, "absent") == 0
    # The last object of a namespace removed: the namespace index goes too.
    store.put(SKEY, _obj("lonely", "only", store.next_rv()), "ADDED", None)
    only = store.get(SKEY, "lonely", "only")
    assert only is not None
    store.delete(SKEY, only, store.next_rv())
    assert "lonely" not in store._by_ns[SKEY]
