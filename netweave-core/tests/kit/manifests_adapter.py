"""A plain-Kubernetes-manifests adapter: the kit's reference Kubernetes-backed adapter.

It is the worked example of ``docs/adapter-authors.md`` and the subject of the kit's mutation
suite (``test_kit_mutations.py``), which breaks it on purpose in every way the catalogue lists.

* **Packages** are gzip tars of YAML manifests. A non-Helm adapter keeps them in its backend:
  here one ConfigMap per package version in the namespace ``packageNamespace`` (so the gateway
  needs no volume and two gateway replicas share them).
* **A deployment** renders the package's manifests for one name and namespace: each object is
  named ``<deployment>-<object>`` (two deployments of one package never share an object), put
  in the requested namespace and marked as owned with the labels of :data:`OWNER_LABELS`. The
  values live in the cluster too, as the ConfigMap ``<deployment>-values`` that the workloads
  would mount; ``replicaCount`` sets each workload's replicas and ``image`` its first
  container's image. That ConfigMap also records the revision, the package and the idempotency
  key of the operation step that wrote it.
* **Status** comes from the workloads: FAILED when one reports ``ProgressDeadlineExceeded``,
  DEPLOYED only when every workload is ready, DEPLOYING otherwise.
* **A failed create undoes its partial work** (the gateway keeps no reference to it), and a
  badly typed manifest is invalid input (422), not a backend error.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from netweave.adapters import (
    AdapterConfig,
    AdapterHealth,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import DeploymentStatus
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

MANAGED_BY = "netweave-manifests"
#: The labels on every object a deployment owns (``{name}``: the deployment's name).
OWNER_LABELS = {
    "app.kubernetes.io/managed-by": MANAGED_BY,
    "app.kubernetes.io/instance": "{name}",
}
VERSION_LABEL = "netweave.io/package-version"
PACKAGE_LABEL = "netweave.io/package"
REVISION = "netweave.io/revision"
IDEMPOTENCY = "netweave.io/idempotency-key"
PACKAGE_REF = "netweave.io/package-ref"

#: Kind → (API path prefix, plural). Only these kinds are accepted in a package.
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
}
WORKLOADS = ("Deployment", "StatefulSet")


class ManifestsConfig(AdapterConfig):
    """``config:`` keys are camelCase on the wire (``kubeUrl``), snake_case in Python."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    kube_url: str = Field(description="Kubernetes API server URL")
    token: str | None = None
    package_namespace: str = "netweave-packages"


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _cm_name(name: str, version: str) -> str:
    return f"pkg-{name}-{version}".lower().replace("_", "-")


class ManifestsAdapter(DMSAdapter):
    TYPE = "manifests"
    DISTRIBUTION = "netweave-manifests-example-not-published"
    DESCRIPTION = "plain Kubernetes manifests (the conformance kit's reference adapter)"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PACKAGE_MANAGEMENT,
            Capability.PACKAGE_LISTING,
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.DEPLOYMENT_UPDATE,
            Capability.SCALING,
        }
    )
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({"manifests"})
    Config = ManifestsConfig

    def __init__(self, name: str, config: AdapterConfig, *, data_dir: Path | None = None) -> None:
        super().__init__(name, config, data_dir=data_dir)
        assert isinstance(config, ManifestsConfig)
        self.cfg = config
        self.api: client.ApiClient | None = None

    # -- the backend client ----------------------------------------------------------------

    async def _start(self) -> None:
        conf = client.Configuration()
        conf.host = self.cfg.kube_url
        if self.cfg.token:
            conf.api_key = {"authorization": self.cfg.token}
            conf.api_key_prefix = {"authorization": "Bearer"}
        conf.retries = 0
        self.api = client.ApiClient(conf)

    async def _stop(self) -> None:
        if self.api is not None:
            await asyncio.to_thread(self.api.close)
            self.api = None

    def _call(self, method: str, path: str, body: Any = None, query: Any = None) -> Any:
        assert self.api is not None, "adapter not started"
        request = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=self.config.timeouts.read)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else {}

    async def _k8s(self, method: str, path: str, body: Any = None, query: Any = None) -> Any:
        """One API call, its errors mapped onto the gateway's taxonomy."""
        try:
            return await asyncio.to_thread(self._call, method, path, body, query)
        except ApiException as exc:
            raise self._mapped(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"Kubernetes API unreachable: {exc}") from exc

    def _mapped(self, exc: ApiException) -> NetweaveError:
        try:
            message = str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except ValueError:
            message = str(exc.reason)
        if exc.status == 404:
            return NotFound(message)
        if exc.status == 409:
            return AlreadyExists(message)
        if exc.status in (400, 422):
            return InvalidInput(message)
        if exc.status in (429, 500, 502, 503, 504):
            return BackendUnavailable(f"Kubernetes API: {message}")
        return BackendError(f"Kubernetes API answered {exc.status}: {message}")

    @staticmethod
    def _path(kind: str, namespace: str, name: str | None = None) -> str:
        prefix, plural = KINDS[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    async def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._k8s("GET", self._path(kind, namespace, name))
        except NotFound:
            return None
        return found

    async def _ensure_namespace(self, namespace: str) -> None:
        try:
            await self._k8s("GET", f"/api/v1/namespaces/{namespace}")
        except NotFound:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            with contextlib.suppress(AlreadyExists):
                await self._k8s("POST", "/api/v1/namespaces", body)

    async def _health(self) -> AdapterHealth:
        await self._k8s("GET", "/version")
        return AdapterHealth(healthy=True)

    # -- packages: one ConfigMap per version ---------------------------------------------

    @staticmethod
    def _parse(text: str) -> list[dict[str, Any]]:
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise InvalidInput(f"a manifest is not YAML: {exc}") from exc
        for doc in docs:
            if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
                raise InvalidInput("every manifest must be an object with metadata")
            if doc.get("kind") not in KINDS:
                raise InvalidInput(
                    f"kind {doc.get('kind')!r} is not one this adapter applies ({sorted(KINDS)})"
                )
            if not doc["metadata"].get("name"):
                raise InvalidInput(f"a {doc['kind']} manifest has no metadata.name")
        if not docs:
            raise InvalidInput("the package holds no manifests")
        return docs

    def _package(self, cm: dict[str, Any]) -> PackageInfo:
        labels = cm["metadata"].get("labels") or {}
        return PackageInfo(
            backend_ref=f"{labels[PACKAGE_LABEL]}:{labels[VERSION_LABEL]}",
            name=labels[PACKAGE_LABEL],
            version=labels[VERSION_LABEL],
            package_type="manifests",
            checksum=(cm["metadata"].get("annotations") or {}).get("netweave.io/checksum"),
        )

    def _ref(self, backend_ref: str) -> tuple[str, str]:
        name, sep, version = backend_ref.partition(":")
        if not sep or not name or not version:
            raise NotFound(f"no package {backend_ref!r}")
        return name, version

    async def _list_packages(self) -> list[PackageInfo]:
        found = await self._k8s(
            "GET",
            self._path("ConfigMap", self.cfg.package_namespace),
            query=[("labelSelector", PACKAGE_LABEL)],
        )
        return [self._package(cm) for cm in found.get("items") or ()]

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        name, version = self._ref(backend_ref)
        cm = await self._get("ConfigMap", self.cfg.package_namespace, _cm_name(name, version))
        if cm is None:
            raise NotFound(f"no package {backend_ref!r}")
        return self._package(cm)

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        if upload.archive is None:
            raise InvalidInput("the manifests adapter onboards archives, not references")
        texts = []
        try:
            with tarfile.open(upload.archive, "r:gz") as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith((".yaml", ".yml")):
                        extracted = tar.extractfile(member)
                        if extracted is not None:
                            texts.append(extracted.read().decode())
        except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the package is not a gzip tar of YAML manifests: {exc}") from exc
        text = "\n---\n".join(texts)
        self._parse(text)
        await self._ensure_namespace(self.cfg.package_namespace)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": _cm_name(upload.name, upload.version),
                "labels": {PACKAGE_LABEL: upload.name, VERSION_LABEL: upload.version},
                "annotations": {"netweave.io/checksum": upload.checksum or ""},
            },
            "data": {"manifests.yaml": text},
        }
        try:
            cm = await self._k8s("POST", self._path("ConfigMap", self.cfg.package_namespace), body)
        except AlreadyExists:
            raise AlreadyExists(f"package {upload.name}:{upload.version} exists") from None
        return self._package(cm)

    async def _delete_package(self, backend_ref: str) -> None:
        name, version = self._ref(backend_ref)
        path = self._path("ConfigMap", self.cfg.package_namespace, _cm_name(name, version))
        await self._k8s("DELETE", path)

    async def _manifests(self, package: PackageInfo) -> list[dict[str, Any]]:
        name, version = self._ref(package.backend_ref)
        cm = await self._get("ConfigMap", self.cfg.package_namespace, _cm_name(name, version))
        if cm is None:
            raise NotFound(f"no package {package.backend_ref!r}")
        return self._parse(cm["data"]["manifests.yaml"])

    # -- rendering -------------------------------------------------------------------------

    def owner_labels(self, name: str) -> dict[str, str]:
        return {k: v.format(name=name) for k, v in OWNER_LABELS.items()}

    def object_name(self, deployment: str, manifest: dict[str, Any]) -> str:
        return f"{deployment}-{manifest['metadata']['name']}"

    def target_namespace(self, spec_namespace: str) -> str:
        return spec_namespace

    def render(
        self,
        name: str,
        namespace: str,
        manifests: list[dict[str, Any]],
        values: dict[str, Any],
        version: str,
        meta: dict[str, str],
    ) -> list[dict[str, Any]]:
        """The objects of one deployment: the values ConfigMap first, then the manifests."""
        labels = {**self.owner_labels(name), VERSION_LABEL: version}
        objects = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"{name}-values",
                    "namespace": namespace,
                    "labels": dict(labels),
                    "annotations": dict(meta),
                },
                "data": {"values.json": json.dumps(values, sort_keys=True)},
            }
        ]
        for manifest in manifests:
            obj = copy.deepcopy(manifest)
            metadata = obj["metadata"]
            metadata["name"] = self.object_name(name, manifest)
            metadata["namespace"] = namespace
            metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
            if obj["kind"] in WORKLOADS:
                self.apply_values(obj, name, values)
            objects.append(obj)
        return objects

    def apply_values(self, obj: dict[str, Any], name: str, values: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        if "replicaCount" in values:
            spec["replicas"] = values["replicaCount"]
        # Each deployment's Pods are its own: the instance label joins selector and template.
        instance = {"app.kubernetes.io/instance": name}
        spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(instance)
        template = spec.setdefault("template", {}).setdefault("metadata", {})
        template.setdefault("labels", {}).update(instance)
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        if "image" in values and containers:
            containers[0]["image"] = values["image"]

    # -- deployments -------------------------------------------------------------------------

    def _split(self, backend_ref: str) -> tuple[str, str]:
        namespace, sep, name = backend_ref.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise NotFound(f"no deployment {backend_ref!r}")
        return namespace, name

    async def _owned(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in self.owner_labels(name).items())
        found: list[dict[str, Any]] = []
        for kind in KINDS:
            listed = await self._k8s(
                "GET", self._path(kind, namespace), query=[("labelSelector", selector)]
            )
            for item in listed.get("items") or ():
                item.setdefault("kind", kind)
                found.append(item)
        return found

    async def _put(self, obj: dict[str, Any]) -> None:
        """Create the object, or replace it when it exists."""
        kind, meta = obj["kind"], obj["metadata"]
        current = await self._get(kind, meta["namespace"], meta["name"])
        if current is None:
            await self._k8s("POST", self._path(kind, meta["namespace"]), obj)
            return
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self._k8s("PUT", self._path(kind, meta["namespace"], meta["name"]), obj)

    async def _remove(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        with contextlib.suppress(NotFound):
            await self._k8s("DELETE", self._path(obj["kind"], meta["namespace"], meta["name"]))

    def status_of(self, workloads: list[dict[str, Any]]) -> tuple[DeploymentStatus, str | None]:
        for workload in workloads:
            for cond in (workload.get("status") or {}).get("conditions") or ():
                if cond.get("type") == "Progressing" and cond.get("status") == "False":
                    return DeploymentStatus.FAILED, str(cond.get("message") or cond.get("reason"))
        for workload in workloads:
            spec, status = workload.get("spec") or {}, workload.get("status") or {}
            generation = int(workload["metadata"].get("generation") or 1)
            if int(status.get("observedGeneration") or 0) < generation:
                return DeploymentStatus.DEPLOYING, "waiting for the controller"
            if int(status.get("readyReplicas") or 0) < int(spec.get("replicas", 1)):
                return DeploymentStatus.DEPLOYING, f"{workload['metadata']['name']} not ready"
        return DeploymentStatus.DEPLOYED, None

    async def _read(self, namespace: str, name: str) -> DeploymentInfo:
        values_cm = await self._get("ConfigMap", namespace, f"{name}-values")
        if values_cm is None:
            raise NotFound(f"no deployment {name!r} in namespace {namespace!r}")
        notes = values_cm["metadata"].get("annotations") or {}
        owned = await self._owned(namespace, name)
        workloads = [o for o in owned if o["kind"] in WORKLOADS]
        status, message = self.status_of(workloads)
        return DeploymentInfo(
            backend_ref=f"{namespace}/{name}",
            status=status,
            message=message,
            revision=int(notes.get(REVISION, "1")),
            package_version=(values_cm["metadata"].get("labels") or {}).get(VERSION_LABEL),
            values=json.loads(values_cm["data"]["values.json"]),
            extensions={"packageRef": notes.get(PACKAGE_REF)},
        )

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        return await self._read(*self._split(backend_ref))

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        namespace = self.target_namespace(spec.namespace)
        existing = await self._get("ConfigMap", namespace, f"{spec.name}-values")
        if existing is not None:
            notes = existing["metadata"].get("annotations") or {}
            if notes.get(IDEMPOTENCY) == ctx.idempotency_key:
                # The same step again (a retry after a crash or a lost answer): its result.
                return await self._read(namespace, spec.name)
            raise AlreadyExists(f"deployment {spec.name!r} exists in namespace {namespace!r}")
        manifests = await self._manifests(spec.package)
        meta = {
            REVISION: "1",
            IDEMPOTENCY: ctx.idempotency_key,
            PACKAGE_REF: spec.package.backend_ref,
        }
        objects = self.render(
            spec.name, namespace, manifests, spec.values, spec.package.version, meta
        )
        await self._ensure_namespace(namespace)
        await self.apply_all(objects)
        return await self._read(namespace, spec.name)

    async def apply_all(self, objects: list[dict[str, Any]]) -> None:
        """Create every object; on a failure delete those created, then raise."""
        created: list[dict[str, Any]] = []
        try:
            for obj in objects:
                await self._k8s("POST", self._path(obj["kind"], obj["metadata"]["namespace"]), obj)
                created.append(obj)
        except NetweaveError:
            for obj in reversed(created):
                await self._remove(obj)
            raise

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        namespace, name = self._split(backend_ref)
        current = await self._read(namespace, name)
        values_cm = await self._get("ConfigMap", namespace, f"{name}-values")
        assert values_cm is not None
        notes = values_cm["metadata"].get("annotations") or {}
        if notes.get(IDEMPOTENCY) == ctx.idempotency_key:
            return current  # this step already ran
        values = dict(current.values or {})
        if change.values is not None:
            values = self.new_values(values, change)
        package = change.package
        package_ref = package.backend_ref if package else str(notes.get(PACKAGE_REF))
        version = package.version if package else str(current.package_version)
        name_part, _, version_part = package_ref.partition(":")
        manifests = await self._manifests(
            PackageInfo(package_ref, name_part, version_part, "manifests")
        )
        meta = {
            REVISION: str(current.revision + 1),
            IDEMPOTENCY: ctx.idempotency_key,
            PACKAGE_REF: package_ref,
        }
        objects = self.render(name, namespace, manifests, values, version, meta)
        await self.replace_all(namespace, name, objects)
        return await self._read(namespace, name)

    def new_values(self, values: dict[str, Any], change: DeploymentChange) -> dict[str, Any]:
        assert change.values is not None
        if change.values_mode == "replace":
            return copy.deepcopy(change.values)
        return _merge(values, change.values)

    async def replace_all(self, namespace: str, name: str, objects: list[dict[str, Any]]) -> None:
        """Apply the new set (values ConfigMap last: it records the step) and prune the rest."""
        wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
        for obj in objects[1:] + objects[:1]:
            await self._put(obj)
        for old in await self._owned(namespace, name):
            if (old["kind"], old["metadata"]["name"]) not in wanted:
                await self._remove(old)

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        return await self._update_deployment(
            backend_ref, DeploymentChange(values={"replicaCount": replicas}), ctx
        )

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        namespace, name = self._split(backend_ref)
        owned = await self._owned(namespace, name)
        if not owned:
            raise NotFound(f"no deployment {backend_ref!r}")
        # The values ConfigMap last: while it exists the deployment can be found and deleted.
        owned.sort(key=lambda o: o["metadata"]["name"] == f"{name}-values")
        for obj in owned:
            await self._remove(obj)


def manifests_archive(path: Any, documents: list[dict[str, Any]], *, raw: str | None = None) -> Any:
    """Write a package: a gzip tar with one ``manifests.yaml`` (``raw`` text if given)."""
    text = raw if raw is not None else yaml.safe_dump_all(documents, sort_keys=False)
    data = text.encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("manifests.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def app_manifests(*, with_config: bool = True) -> list[dict[str, Any]]:
    """The sample package's manifests: a ConfigMap (dropped by the upgrade) and a Deployment."""
    docs: list[dict[str, Any]] = []
    if with_config:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings"},
                "data": {"greeting": "hello"},
            }
        )
    docs.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "demo"}},
                "template": {
                    "metadata": {"labels": {"app": "demo"}},
                    "spec": {"containers": [{"name": "app", "image": "example.org/app:1"}]},
                },
            },
        }
    )
    return docs


#: A package whose apply fails half-way: the ConfigMap goes in, the Deployment is refused (its
#: replicas are text), so a create must undo the ConfigMap.
FAILING_MANIFESTS = """apiVersion: v1
kind: ConfigMap
metadata:
  name: first
data:
  a: b
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  replicas: three
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers:
        - name: app
          image: example.org/app:1
"""


def values_record(emulator: Any, spec: DeploymentSpec, objects: list[dict[str, Any]]) -> Any:
    """For the kit's observer: the values, version and revision the values ConfigMap holds."""
    from netweave.testing.kit import Observation

    for obj in objects:
        meta = obj["metadata"]
        if obj.get("kind") == "ConfigMap" and meta["name"] == f"{spec.name}-values":
            notes = meta.get("annotations") or {}
            return Observation(
                present=True,
                values=json.loads((obj.get("data") or {}).get("values.json") or "null"),
                package_version=(meta.get("labels") or {}).get(VERSION_LABEL),
                revision=int(notes.get(REVISION, "0")),
            )
    return Observation()
