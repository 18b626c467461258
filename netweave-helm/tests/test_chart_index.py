"""The local repository's index: kept per change, shared by replicas, rebuilt when damaged, and
never presented half-loaded.

Store-level tests drive ``LocalChartStore`` directly (two instances on one directory stand for
two gateway processes: they share nothing but the files); the HTTP tests run real gateways
(uvicorn on loopback), the two-replica one on the real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chartkit import build_chart
from netweave.errors import AlreadyExists, BackendUnavailable
from netweave.testing.postgres import temporary_database
from netweave_helm.config import ArchiveLimits
from netweave_helm.storage import local as local_module
from netweave_helm.storage.local import LocalChartStore
from netweave_helm.validation import file_digest
from servers import serve_asgi

TOKEN = "index-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


def _store(directory: Path, **kwargs: Any) -> LocalChartStore:
    return LocalChartStore(directory, ArchiveLimits(), served_at="/charts", **kwargs)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[LocalChartStore, LocalChartStore]]:
    """Two stores on one directory: two replicas sharing the repository."""
    a, b = _store(tmp_path / "repo"), _store(tmp_path / "repo")
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def _put(store: LocalChartStore, archive: Path, name: str, version: str) -> None:
    metadata = {"apiVersion": "v2", "name": name, "version": version, "description": "t"}
    await store.put(archive, name, version, metadata, file_digest(archive))


def _refs(entries: Any) -> set[str]:
    return {f"{e.name}:{e.version}" for e in entries}


class _Counter:
    """Counts calls of a store method (to show what a call did, not only what it answered)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = 0
        original = getattr(LocalChartStore, name)

        def counted(store: LocalChartStore, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(store, *args, **kwargs)

        monkeypatch.setattr(LocalChartStore, name, counted)


async def test_replicas_see_each_others_uploads_and_deletes_through_the_journal(
    tmp_path: Path, stores: tuple[LocalChartStore, LocalChartStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = stores
    src = tmp_path / "src"
    archives = {f"c{i}": build_chart(src, f"c{i}", "1.0.0") for i in range(12)}
    # Interleaved uploads from both replicas (each write runs in a thread under the file lock).
    await asyncio.gather(
        *(
            _put(a if i % 2 else b, path, name, "1.0.0")
            for i, (name, path) in enumerate(archives.items())
        )
    )
    scans = _Counter(monkeypatch, "_archive_names")
    inspections = _Counter(monkeypatch, "_describe_foreign")
    expected = {f"{n}:1.0.0" for n in archives}
    assert _refs(await a.list_charts()) == expected
    assert _refs(await b.list_charts()) == expected
    # Learnt from the journal: no archive inspected, and no directory listing was needed for
    # changes made through netweave (their lines carry the directory's mtime before and after).
    assert inspections.calls == 0
    assert scans.calls == 0

    # One version uploaded by both at once: stored once, the other gets AlreadyExists.
    race = build_chart(src / "race", "race", "2.0.0")
    results = await asyncio.gather(
        _put(a, race, "race", "2.0.0"), _put(b, race, "race", "2.0.0"), return_exceptions=True
    )
    assert sum(isinstance(r, AlreadyExists) for r in results) == 1
    assert sum(r is None for r in results) == 1

    await b.delete("c3", "1.0.0")
    assert not await a.exists("c3", "1.0.0")
    assert (
        await a.get("race", "2.0.0")
    ).digest == f"sha256:{file_digest(race).removeprefix('sha256:')}"
    served = yaml.safe_load((await a.index())[0])
    assert sum(len(v) for v in served["entries"].values()) == 12
    assert "c3" not in served["entries"]


async def test_listing_since_a_token_returns_only_what_was_added(
    tmp_path: Path, stores: tuple[LocalChartStore, LocalChartStore]
) -> None:
    a, b = stores
    src = tmp_path / "src"
    await _put(a, build_chart(src, "one", "1.0.0"), "one", "1.0.0")
    first = await a.listing_since(None)
    assert first.complete and _refs(first.entries) == {"one:1.0.0"}
    same = await a.listing_since(first.token)
    assert not same.complete and same.entries == []
    await _put(b, build_chart(src, "two", "1.0.0"), "two", "1.0.0")  # the other replica
    delta = await a.listing_since(same.token)
    assert not delta.complete and _refs(delta.entries) == {"two:1.0.0"}
    # A token from another process (or a restart) is not trusted: everything again.
    assert (await b.listing_since(delta.token)).complete


async def test_a_listing_leaves_out_what_the_caller_knows_before_building_entries(
    tmp_path: Path, stores: tuple[LocalChartStore, LocalChartStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = stores
    src = tmp_path / "src"
    for name in ("k1", "k2", "new"):
        await _put(a, build_chart(src, name, "1.0.0"), name, "1.0.0")
    known = {"k1:1.0.0", "k2:1.0.0"}

    def skip(name: str, version: str) -> bool:
        return f"{name}:{version}" in known

    built = _Counter(monkeypatch, "_entry")
    first = await a.listing_since(None, skip)
    assert first.complete and _refs(first.entries) == {"new:1.0.0"}
    assert built.calls == 1  # the known charts were compared by name, never turned into entries
    await _put(b, build_chart(src, "k3", "1.0.0"), "k3", "1.0.0")
    known.add("k3:1.0.0")
    delta = await a.listing_since(first.token, skip)
    assert not delta.complete and delta.entries == []


async def test_archives_added_and_removed_on_disk_are_noticed_by_directory_delta(
    tmp_path: Path, stores: tuple[LocalChartStore, LocalChartStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = stores
    repo = tmp_path / "repo"
    for i in range(5):
        await _put(a, build_chart(tmp_path / "src", f"up{i}", "1.0.0"), f"up{i}", "1.0.0")
    inspections = _Counter(monkeypatch, "_describe_foreign")
    # Dropped in by other means (an operator's cp): inspected once, by one replica.
    shutil.copy(build_chart(tmp_path / "drop", "dropped", "0.3.0"), repo / "dropped-0.3.0.tgz")
    (repo / "junk-1.0.0.tgz").write_bytes(b"not a chart")
    assert "dropped:0.3.0" in _refs(await a.list_charts())
    assert "dropped:0.3.0" in _refs(await b.list_charts())
    # The new archive and the junk, each inspected once (by whichever replica came first).
    assert inspections.calls == 2
    # The junk is not inspected again on later scans, and its presence is not fatal.
    a._scanned_at = b._scanned_at = 0.0  # force the periodic rescan now
    assert len(await a.list_charts()) == 6
    assert inspections.calls == 2

    (repo / "up2-1.0.0.tgz").unlink()
    (repo / "dropped-0.3.0.tgz").unlink()
    assert _refs(await b.list_charts()) == {"up0:1.0.0", "up1:1.0.0", "up3:1.0.0", "up4:1.0.0"}
    assert _refs(await a.list_charts()) == _refs(await b.list_charts())


async def test_a_restart_lists_the_directory_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    first = _store(repo)
    await first.start()
    for i in range(3):
        await _put(first, build_chart(tmp_path / "src", f"k{i}", "1.0.0"), f"k{i}", "1.0.0")
    first._scanned_at = 0.0  # the periodic listing, which records that it found all in step
    assert len(await first.list_charts()) == 3
    await first.close()
    listings = _Counter(monkeypatch, "_archive_names")

    async def restarted() -> set[str]:
        store = _store(repo)
        await store.start()
        try:
            return _refs(await store.list_charts())
        finally:
            await store.close()

    # Unchanged since that listing: the saved index is the catalogue, no listing at start.
    assert await restarted() == {"k0:1.0.0", "k1:1.0.0", "k2:1.0.0"}
    assert listings.calls == 0
    # An archive dropped in while no gateway ran moves the directory's mtime: listed, found.
    shutil.copy(build_chart(tmp_path / "drop", "late", "0.1.0"), repo / "late-0.1.0.tgz")
    assert "late:0.1.0" in await restarted()
    assert listings.calls == 1
    # ... and that listing was recorded: the next start lists nothing again.
    assert len(await restarted()) == 4
    assert listings.calls == 1
    # One removed by other means: listed again, gone from the catalogue.
    (repo / "k1-1.0.0.tgz").unlink()
    assert "k1:1.0.0" not in await restarted()
    assert listings.calls == 2
    # A damaged record is no record: the directory is listed.
    (repo / ".index" / "scanned").write_bytes(b"garbage")
    assert len(await restarted()) == 3
    assert listings.calls == 3


async def test_a_corrupt_index_yaml_is_rebuilt_from_the_archives(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("alpha", "beta"):
        build_chart(repo, name, "1.2.3")
    (repo / "index.yaml").write_text("entries: [this is: not: an index\n\t- {")
    store = _store(repo)
    await store.start()
    try:
        assert _refs(await store.list_charts()) == {"alpha:1.2.3", "beta:1.2.3"}
        body, _ = await store.index()
        assert set(yaml.safe_load(body)["entries"]) == {"alpha", "beta"}
    finally:
        await store.close()
    # The corrupt file is replaced by the rebuilt index (at close at the latest).
    on_disk = yaml.safe_load((repo / "index.yaml").read_text())
    assert set(on_disk["entries"]) == {"alpha", "beta"}


async def test_writes_do_not_rewrite_index_yaml_the_copy_is_coalesced(tmp_path: Path) -> None:
    """index.yaml is served from memory; the directory's copy is not rewritten per change (at
    100 000 charts a rewrite is ~30 MB): one coalesced write after ``flush_interval``, and one
    at close if it lags."""
    repo = tmp_path / "repo"
    store = _store(repo, flush_interval=0.3)
    await store.start()
    try:
        for i in range(3):
            await _put(store, build_chart(tmp_path / "src", f"c{i}", "1.0.0"), f"c{i}", "1.0.0")
        served, etag = await store.index()
        assert set(yaml.safe_load(served)["entries"]) == {"c0", "c1", "c2"}
        assert not (repo / "index.yaml").exists()  # neither the writes nor the read wrote it
        for _ in range(50):  # bounded: the coalesced write comes after 0.3 s
            if (repo / "index.yaml").exists():
                break
            await asyncio.sleep(0.05)
        on_disk = yaml.safe_load((repo / "index.yaml").read_text())
        assert set(on_disk["entries"]) == {"c0", "c1", "c2"}
        assert (await store.index())[1] == etag  # unchanged index: same body, same ETag
        await store.delete("c1", "1.0.0")
    finally:
        await store.close()
    assert set(yaml.safe_load((repo / "index.yaml").read_text())["entries"]) == {"c0", "c2"}
    # The restart reads the saved index, not this copy: a damaged copy changes nothing.
    (repo / "index.yaml").write_text("{not yaml")
    again = _store(repo)
    await again.start()
    try:
        assert _refs(await again.list_charts()) == {"c0:1.0.0", "c2:1.0.0"}
        assert set(yaml.safe_load((await again.index())[0])["entries"]) == {"c0", "c2"}
    finally:
        await again.close()


async def test_a_damaged_saved_index_is_rebuilt_and_index_yaml_spares_inspections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    store = _store(repo)
    await store.start()
    for i in range(3):
        await _put(store, build_chart(tmp_path / "src", f"k{i}", "1.0.0"), f"k{i}", "1.0.0")
    await store.index()  # writes index.yaml
    await store.close()
    (repo / ".index" / "snapshot.jsonl").write_bytes(b"\x00garbage")

    # The saved index is unusable: index.yaml (valid) seeds it, so no archive is re-inspected.
    inspections = _Counter(monkeypatch, "_describe_foreign")
    again = _store(repo)
    await again.start()
    try:
        assert _refs(await again.list_charts()) == {"k0:1.0.0", "k1:1.0.0", "k2:1.0.0"}
        assert inspections.calls == 0
    finally:
        await again.close()

    # Without it and with both gone, the archives themselves are inspected.
    shutil.rmtree(repo / ".index")
    (repo / "index.yaml").unlink()
    third = _store(repo)
    await third.start()
    try:
        assert len(await third.list_charts()) == 3
        assert inspections.calls == 3
    finally:
        await third.close()


async def test_a_torn_journal_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    store = _store(repo)
    await store.start()
    await _put(store, build_chart(tmp_path / "src", "ok", "1.0.0"), "ok", "1.0.0")
    with (repo / ".index" / "journal.jsonl").open("ab") as handle:
        handle.write(b'{"op":"add","file":"half')  # a writer died mid-line
    await _put(store, build_chart(tmp_path / "src", "after", "1.0.0"), "after", "1.0.0")
    await store.close()
    again = _store(repo)
    await again.start()
    try:
        assert _refs(await again.list_charts()) == {"ok:1.0.0", "after:1.0.0"}
    finally:
        await again.close()


@contextlib.contextmanager
def _slow_inspection(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Archive inspection blocks until the event is set (bounded): a long first load."""
    release = threading.Event()
    original = local_module.inspect_archive

    def slow(path: Path, limits: ArchiveLimits) -> Any:
        release.wait(10)
        return original(path, limits)

    monkeypatch.setattr(local_module, "inspect_archive", slow)
    try:
        yield release
    finally:
        release.set()


async def test_calls_during_the_first_load_get_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    for i in range(3):
        build_chart(repo, f"slow{i}", "1.0.0")
    with _slow_inspection(monkeypatch) as release:
        store = _store(repo, load_wait=0.2, start_wait=0)
        await store.start()
        try:
            with pytest.raises(BackendUnavailable) as caught:
                await store.list_charts()
            assert caught.value.retry_after is not None and caught.value.retry_after >= 1
            assert "still being indexed" in caught.value.message
            healthy, message = await store.health()
            assert healthy and message is not None and "indexing" in message
            release.set()
            assert len(await store.list_charts()) == 3  # complete, never partial
        finally:
            await store.close()


# -- through the gateway ----------------------------------------------------------------------


def _settings(data_dir: Path, repo: Path, store_url: str | None = None) -> Any:
    from netweave.config import Settings

    document: dict[str, Any] = {
        "dataDir": str(data_dir),
        "api": {"token": TOKEN},
        "plugins": {
            "dms": [
                {
                    "name": "helm-local",
                    "type": "helm",
                    "default": True,
                    "config": {"storage": {"kind": "local", "repositoryDir": str(repo)}},
                }
            ]
        },
    }
    if store_url is not None:
        document["store"] = {"url": store_url}
    return Settings.model_validate(document)


def _upload(client: httpx.Client, archive: Path, name: str, version: str) -> httpx.Response:
    with archive.open("rb") as handle:
        return client.post(
            PACKAGES,
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
        )


def test_first_list_through_the_api_is_503_until_the_catalogue_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netweave.api.app import create_app
    from netweave.api.plugin import services_of
    from netweave_helm.adapter import HelmAdapter

    repo = tmp_path / "repo"
    for i in range(3):
        build_chart(repo, f"early{i}", "1.0.0")
    with _slow_inspection(monkeypatch) as release:
        app = create_app(_settings(tmp_path / "data", repo))
        with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=30) as c:
            adapter = services_of(app).registry.adapters["helm-local"]
            assert isinstance(adapter, HelmAdapter)
            store = adapter.local_store
            assert store is not None
            store.load_wait = 0.2
            response = c.get(PACKAGES)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["Retry-After"]) >= 1
            release.set()
            listed = c.get(PACKAGES).json()
            assert listed["total"] == 3
            assert {p["name"] for p in listed["items"]} == {"early0", "early1", "early2"}


def test_served_index_carries_an_etag_and_answers_304(tmp_path: Path) -> None:
    from netweave.api.app import create_app

    app = create_app(_settings(tmp_path / "data", tmp_path / "repo"))
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
        assert (
            _upload(
                c, build_chart(tmp_path / "src", "tagged", "1.0.0"), "tagged", "1.0.0"
            ).status_code
            == 201
        )
        first = c.get("/charts/index.yaml")
        etag = first.headers["ETag"]
        assert list(yaml.safe_load(first.text)["entries"]) == ["tagged"]
        unchanged = c.get("/charts/index.yaml", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert (
            _upload(c, build_chart(tmp_path / "src", "more", "1.0.0"), "more", "1.0.0").status_code
            == 201
        )
        changed = c.get("/charts/index.yaml", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        assert set(yaml.safe_load(changed.text)["entries"]) == {"tagged", "more"}


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A throw-away database on the real PostgreSQL (its URL), dropped afterwards."""
    with temporary_database("helm_index") as url:
        assert url is not None
        yield url


def test_two_gateways_on_postgresql_share_one_repository_under_concurrent_uploads(
    tmp_path: Path, pg_database: str
) -> None:
    from netweave.api.app import create_app

    repo = tmp_path / "repo"
    src = tmp_path / "src"
    archives = [(f"rep{i}", build_chart(src, f"rep{i}", "1.0.0")) for i in range(16)]
    race = build_chart(src / "race", "race", "1.0.0")
    app_a = create_app(_settings(tmp_path / "a", repo, pg_database))
    app_b = create_app(_settings(tmp_path / "b", repo, pg_database))
    with (
        serve_asgi(app_a, loop="asyncio") as base_a,
        serve_asgi(app_b, loop="asyncio") as base_b,
        httpx.Client(base_url=base_a, headers=AUTH, timeout=60) as a,
        httpx.Client(base_url=base_b, headers=AUTH, timeout=60) as b,
        ThreadPoolExecutor(8) as pool,
    ):
        jobs = [
            pool.submit(_upload, a if i % 2 else b, path, name, "1.0.0")
            for i, (name, path) in enumerate(archives)
        ]
        jobs += [pool.submit(_upload, client, race, "race", "1.0.0") for client in (a, b)]
        statuses = sorted(job.result().status_code for job in jobs)
        assert statuses == [201] * 17 + [409], statuses

        expected = {name for name, _ in archives} | {"race"}
        for client in (a, b):
            listed = client.get(PACKAGES, params={"limit": 100}).json()
            assert listed["total"] == 17
            assert {p["name"] for p in listed["items"]} == expected
            served = yaml.safe_load(client.get("/charts/index.yaml").text)["entries"]
            assert set(served) == expected and all(len(v) == 1 for v in served.values())

        # Deletes through one replica leave the other's served index at once.
        for name in ("rep0", "rep5", "race"):
            assert b.delete(f"{PACKAGES}/{name}-1.0.0").status_code == 204
        served_a = yaml.safe_load(a.get("/charts/index.yaml").text)["entries"]
        assert set(served_a) == expected - {"rep0", "rep5", "race"}
        assert a.get(f"{PACKAGES}/rep5-1.0.0").status_code == 404
        # Uploading again what the other replica deleted works (no stale index entry).
        assert _upload(a, archives[5][1], "rep5", "1.0.0").status_code == 201
        assert "rep5" in yaml.safe_load(b.get("/charts/index.yaml").text)["entries"]
        assert not list((repo / ".tmp").iterdir())


async def test_get_of_an_archive_dropped_on_disk_inspects_it_alone(
    tmp_path: Path, stores: tuple[LocalChartStore, LocalChartStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = stores
    repo = tmp_path / "repo"
    for i in range(4):
        await _put(a, build_chart(tmp_path / "src", f"base{i}", "1.0.0"), f"base{i}", "1.0.0")
    assert len(await b.list_charts()) == 4
    scans = _Counter(monkeypatch, "_archive_names")
    shutil.copy(build_chart(tmp_path / "drop", "late", "2.0.0"), repo / "late-2.0.0.tgz")
    # Registration by reference asks for exactly this chart: no directory listing for it.
    assert (await a.get("late", "2.0.0")).version == "2.0.0"
    assert await b.exists("late", "2.0.0")  # learnt from a's journal line, not re-inspected
    assert scans.calls == 0
    # Removed on disk: a get notices at once (one stat), and a list records it for everyone.
    (repo / "base1-1.0.0.tgz").unlink()
    assert not await b.exists("base1", "1.0.0")
    assert _refs(await a.list_charts()) == {
        "base0:1.0.0",
        "base2:1.0.0",
        "base3:1.0.0",
        "late:2.0.0",
    }


async def test_served_index_follows_each_change_from_kept_pieces(tmp_path: Path) -> None:
    """The served index re-renders only the chart names changed since the last read; after
    adds, a second version, a delete, a deprecation and a name's last version removed, it
    equals the index grouped anew from every entry, and reflects each change."""
    repo = tmp_path / "repo"
    store = _store(repo)
    await store.start()
    src = tmp_path / "src"
    try:

        async def served() -> dict[str, Any]:
            body, _ = await store.index()
            entries: dict[str, Any] = yaml.safe_load(body)["entries"]
            regrouped = b"".join(store._render_parts(list(store._charts.values())))
            assert yaml.safe_load(regrouped)["entries"] == entries
            return entries

        for name in ("m", "a", "z"):
            await _put(store, build_chart(src, name, "1.0.0"), name, "1.0.0")
        assert list(await served()) == ["a", "m", "z"]
        await _put(store, build_chart(src / "2", "m", "2.0.0"), "m", "2.0.0")
        await _put(store, build_chart(src, "b", "1.0.0"), "b", "1.0.0")
        entries = await served()
        assert list(entries) == ["a", "b", "m", "z"]
        assert [e["version"] for e in entries["m"]] == ["2.0.0", "1.0.0"]  # newest first
        await store.delete("m", "2.0.0")
        await store.set_deprecated("z", "1.0.0", True)
        entries = await served()
        assert [e["version"] for e in entries["m"]] == ["1.0.0"]
        assert entries["z"][0]["deprecated"] is True
        await store.delete("a", "1.0.0")
        assert list(await served()) == ["b", "m", "z"]
    finally:
        await store.close()


def test_a_corrupt_index_and_archives_changed_on_disk_through_the_api(tmp_path: Path) -> None:
    """Issue 18's disk cases through the HTTP API of a real gateway: a repository whose
    index.yaml is corrupt lists every archive (the list and the served index); archives
    another tool adds and removes on disk are in / out of the served index after the next
    directory scan, and the added one becomes a package at the API's next listing."""
    from netweave.api.app import create_app
    from netweave.api.plugin import services_of
    from netweave_helm.adapter import HelmAdapter

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("alpha", "beta"):
        build_chart(repo, name, "1.2.3")
    (repo / "index.yaml").write_text("entries: [this is: not: an index\n\t- {")
    app = create_app(_settings(tmp_path / "data", repo))
    with serve_asgi(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:

        def names() -> set[str]:
            listed = c.get(PACKAGES, params={"limit": 100})
            assert listed.status_code == 200, listed.text
            body = listed.json()
            assert body["total"] == len(body["items"])
            return {p["name"] for p in body["items"]}

        def served() -> set[str]:
            index = c.get("/charts/index.yaml")
            assert index.status_code == 200, index.text
            return set(yaml.safe_load(index.text)["entries"])

        assert names() == {"alpha", "beta"}
        assert served() == {"alpha", "beta"}
        assert c.get(f"{PACKAGES}/alpha-1.2.3").status_code == 200

        build_chart(repo, "gamma", "0.1.0")  # another tool's cp
        (repo / "alpha-1.2.3.tgz").unlink()  # and its rm
        adapter = services_of(app).registry.adapters["helm-local"]
        assert isinstance(adapter, HelmAdapter) and adapter.local_store is not None
        adapter.local_store._scanned_at = 0.0  # the periodic scan, now rather than later
        # The served index follows the directory at once.
        assert served() == {"beta", "gamma"}
        # The API adopts the added archive at its next listing (listing TTL; bounded wait).
        for _ in range(120):
            if "gamma" in names():
                break
            time.sleep(0.25)
        # The removed one stays a package until deleted through the API (by design: see
        # netweave.services.packages), which then works though its archive is gone.
        assert names() == {"alpha", "beta", "gamma"}
        assert c.delete(f"{PACKAGES}/alpha-1.2.3").status_code == 204
        assert names() == {"beta", "gamma"}
        assert c.get(f"{PACKAGES}/alpha-1.2.3").status_code == 404
        assert served() == {"beta", "gamma"}
        gamma = c.get(f"{PACKAGES}/gamma-0.1.0")
        assert gamma.status_code == 200 and gamma.json()["artifactVersion"] == "0.1.0"
