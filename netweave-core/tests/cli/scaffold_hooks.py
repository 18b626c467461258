"""What an adapter author writes into a scaffolded ``netweave-acme``: a backend and the hooks.

``ACMESTORE`` is the backend's client library (here the backend itself: records as JSON files
in a directory, with the fault switches the kit's ``backend`` fixture needs). ``HOOKS`` replaces
the scaffold's ``NotImplementedError`` hooks, ``FIXTURES`` fills in its conformance test. The
texts are written into the generated files by ``test_adapter_new.py``.
"""

ACMESTORE = '''
"""A file-backed deployment store (one JSON file per record) with switches for outages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Unreachable(Exception):
    pass


class Refused(Exception):
    pass


class Missing(KeyError):
    pass


class Exists(Exception):
    pass


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _file(self, kind: str, key: str) -> Path:
        return self.root / kind / (key.replace("/", "__") + ".json")

    def _gate(self, change: bool = False) -> None:
        if (self.root / "down").exists():
            raise Unreachable("connection refused")
        if change and (self.root / "refuse").exists():
            raise Refused((self.root / "refuse").read_text())
        if change and (self.root / "crash").exists():
            # Dies while serving a change: the connection closes before anything is done.
            raise Unreachable("connection reset by peer")

    def ping(self) -> None:
        self._gate()

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        self._gate()
        path = self._file(kind, key)
        return json.loads(path.read_text()) if path.exists() else None

    def read(self, kind: str, key: str) -> dict[str, Any]:
        record = self.get(kind, key)
        if record is None:
            raise Missing(f"{kind}/{key}")
        return record

    def items(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        self._gate()
        folder = self.root / kind
        files = sorted(folder.glob("*.json")) if folder.exists() else []
        return [(p.stem.replace("__", "/"), json.loads(p.read_text())) for p in files]

    def write(self, kind: str, key: str, record: dict[str, Any], *, create: bool = False) -> None:
        self._gate(change=True)
        path = self._file(kind, key)
        if create and path.exists():
            raise Exists(f"{kind}/{key} exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))

    def delete(self, kind: str, key: str) -> None:
        self._gate(change=True)
        path = self._file(kind, key)
        if not path.exists():
            raise Missing(f"{kind}/{key}")
        path.unlink()

    @contextlib.contextmanager
    def _switch(self, name: str, text: str = "") -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_text(text)
        try:
            yield
        finally:
            (self.root / name).unlink()

    def outage(self) -> contextlib.AbstractContextManager[None]:
        return self._switch("down")

    def failing(self, message: str) -> contextlib.AbstractContextManager[None]:
        return self._switch("refuse", f"acme store refuses: {message}")

    def crashing(self) -> contextlib.AbstractContextManager[None]:
        return self._switch("crash")
'''

#: Added to the generated adapter module's imports.
IMPORTS = """
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import acmestore
from netweave.adapters.idempotency import has_stamp, idempotency_stamp
from netweave.adapters.values import merge_values
from netweave.errors import AlreadyExists, BackendError, BackendUnavailable, NotFound
from netweave.models import DeploymentStatus
"""

#: The config field, after the generated config class's docstring.
CONFIG = """
    store_dir: Path
"""

HOOKS = """
    @property
    def _store(self) -> acmestore.Store:
        return acmestore.Store(self.config.store_dir)

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except acmestore.Unreachable as exc:
            raise BackendUnavailable(f"acme store unreachable: {exc}") from exc
        except acmestore.Missing as exc:
            raise NotFound(f"acme store has no {exc.args[0]}") from exc
        except acmestore.Exists as exc:
            raise AlreadyExists(str(exc)) from exc
        except acmestore.Refused as exc:
            raise BackendError(str(exc)) from exc

    async def _health(self) -> AdapterHealth:
        with self._mapped():
            self._store.ping()
        return AdapterHealth(healthy=True)

    def _package(self, ref: str, record: dict[str, Any]) -> PackageInfo:
        return PackageInfo(ref, record["name"], record["version"], "acme",
                           checksum=record["checksum"])

    async def _list_packages(self) -> list[PackageInfo]:
        with self._mapped():
            return [self._package(ref, r) for ref, r in self._store.items("packages")]

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        with self._mapped():
            return self._package(backend_ref, self._store.read("packages", backend_ref))

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        ref = f"{upload.name}-{upload.version}"
        kinds = upload.archive.read_text().split() if upload.archive else []
        record = {"name": upload.name, "version": upload.version, "checksum": upload.checksum,
                  "kinds": kinds or ["Deployment"]}
        with self._mapped():
            self._store.write("packages", ref, record, create=True)
        return self._package(ref, record)

    async def _delete_package(self, backend_ref: str) -> None:
        with self._mapped():
            self._store.delete("packages", backend_ref)

    def _info(self, ref: str, record: dict[str, Any]) -> DeploymentInfo:
        return DeploymentInfo(ref, DeploymentStatus.DEPLOYED, record["revision"],
                              backend_status="applied", package_version=record["version"],
                              values=record["values"])

    def _apply(self, ref: str, record: dict[str, Any], package: PackageInfo) -> DeploymentInfo:
        record["package"], record["version"] = package.backend_ref, package.version
        record["kinds"] = self._store.read("packages", package.backend_ref)["kinds"]
        record["revision"] = record.get("revision", 0) + 1
        self._store.write("releases", ref, record)
        return self._info(ref, record)

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        ref = f"{spec.namespace}/{spec.name}"
        with self._mapped():
            existing = self._store.get("releases", ref)
            if existing is not None and has_stamp(existing["stamp"], ctx.idempotency_key):
                return self._info(ref, existing)  # this step, retried: its first result
            if existing is not None:
                raise AlreadyExists(f"release {ref} exists")
            record = {"name": spec.name, "namespace": spec.namespace, "values": spec.values,
                      "stamp": idempotency_stamp(ctx.idempotency_key)}
            return self._apply(ref, record, spec.package)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        with self._mapped():
            return self._info(backend_ref, self._store.read("releases", backend_ref))

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        with self._mapped():
            record = self._store.read("releases", backend_ref)
            if change.values is not None:
                record["values"] = (change.values if change.values_mode == "replace"
                                    else merge_values(record["values"], change.values))
            package = change.package or await self._get_package(record["package"])
            return self._apply(backend_ref, record, package)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        with self._mapped():
            self._store.delete("releases", backend_ref)
"""

#: Added to the generated conformance test's imports.
TEST_IMPORTS = '''
from typing import Any

import acmestore
from netweave.adapters import DeploymentSpec
from netweave.testing.kit import KitBackend, KitObserver, Observation, ObservedObject


class AcmeObserver:
    """Reads the store's files directly, not through the adapter (nor through an outage)."""

    def __init__(self, store: acmestore.Store) -> None:
        self.store = store

    async def observe(self, spec: DeploymentSpec) -> Observation:
        files = sorted((self.store.root / "releases").glob("*.json"))
        found: list[dict[str, Any]] = [json.loads(p.read_text()) for p in files]
        found = [r for r in found if r["name"] == spec.name]
        if not found:
            return Observation()
        r = found[0]
        objects = tuple(
            ObservedObject(kind=k, name=f"{r['name']}-{k.lower()}", namespace=r["namespace"],
                           version=str(r["revision"]))
            for k in r["kinds"]
        )
        return Observation(present=True, objects=objects, values=r["values"],
                           package_version=r["version"], revision=r["revision"],
                           namespace=r["namespace"])
'''

#: Replaces the generated ``owner_labels`` line: the store, its fault switches, the observer.
FIXTURES = """
    settle_timeout = 5.0

    @pytest.fixture
    def store(self, tmp_path: Path) -> acmestore.Store:
        return acmestore.Store(tmp_path / "acme-store")

    @pytest.fixture
    def backend(self, store: acmestore.Store) -> KitBackend:
        return store

    @pytest.fixture
    def observer(self, store: acmestore.Store) -> KitObserver:
        return AcmeObserver(store)

    @pytest.fixture
    def upgrade_package(self, tmp_path: Path) -> PackageUpload:
        archive = tmp_path / "sample-1.1.0.tgz"
        archive.write_bytes(b"Deployment")  # 1.1.0 drops the ConfigMap
        return PackageUpload(name="sample", version="1.1.0", package_type="acme", archive=archive)
"""
