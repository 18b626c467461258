"""An emulator of the MultiCloud k8s plugin API (``onap/multicloud-k8s`` ``src/k8splugin``).

There is no usable OpenAPI document for this API, so request bodies are validated against
pydantic models transcribed from the plugin's Go structs (``internal/rb/definition.go``
``Definition``, ``internal/rb/profile.go`` ``Profile``, ``internal/app/instance.go``
``InstanceRequest``/``UpgradeRequest``; JSON tags as field aliases). They forbid unknown fields:
Go's decoder would silently drop them, which for netweave means a setting the plugin never
sees — so the test fails instead. Status codes and error texts follow the handlers in
``src/k8splugin/api/*handler.go`` (Go ``http.Error`` plain text, mostly 500; a missing object is
MongoDB's "no documents in result").

Progress is time-driven: an instance sits in POST-INSTALL / POST-UPGRADE / POST-DELETE (hooks
running) for ``hook_seconds`` before it is DONE or gone; failures and slow requests are
injected through attributes.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onap_emulators.server import Request, Response

NO_DOCUMENTS = "Error finding master table: mongo: no documents in result"


class _GoStruct(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class Definition(_GoStruct):
    """``rb.Definition``."""

    rb_name: str = Field(alias="rb-name")
    rb_version: str = Field(alias="rb-version")
    chart_name: str = Field(default="", alias="chart-name")
    description: str = ""
    labels: dict[str, str] | None = None


class GroupVersionKind(_GoStruct):
    Group: str = ""
    Version: str = ""
    Kind: str = ""


class Profile(_GoStruct):
    """``rb.Profile``."""

    rb_name: str = Field(alias="rb-name")
    rb_version: str = Field(alias="rb-version")
    profile_name: str = Field(alias="profile-name")
    release_name: str = Field(default="", alias="release-name")
    namespace: str = ""
    kubernetes_version: str = Field(default="", alias="kubernetes-version")
    labels: dict[str, str] | None = None
    extra_resource_types: list[GroupVersionKind] | None = Field(
        default=None, alias="extra-resource-types"
    )


class UpgradeRequest(_GoStruct):
    """``app.UpgradeRequest``."""

    rb_name: str = Field(alias="rb-name")
    rb_version: str = Field(alias="rb-version")
    profile_name: str = Field(alias="profile-name")
    cloud_region: str = Field(alias="cloud-region")
    labels: dict[str, str] | None = None
    override_values: dict[str, str] | None = Field(default=None, alias="override-values")


class InstanceRequest(UpgradeRequest):
    """``app.InstanceRequest``."""

    release_name: str = Field(default="", alias="release-name")


# -- answers: every JSON answer is pinned to the Go struct the handler encodes -----------------
# Provenance: onap/multicloud-k8s, src/k8splugin — internal/app/instance.go (InstanceResponse,
# InstanceMiniResponse, InstanceStatus, InstanceDbData), internal/helm/types.go
# (KubernetesResource), internal/app/instance.go ResourceStatus, internal/connection/
# connection.go (Connection); JSON tags as aliases, as for the requests above. The handlers
# encode these with encoding/json, so a field outside the struct can never be on the wire:
# an emulator answer carrying one fails the test (``_pin_answer``).


class KubernetesResource(_GoStruct):
    """``helm.KubernetesResource``."""

    GVK: GroupVersionKind
    Name: str


class InstanceResponse(_GoStruct):
    """``app.InstanceResponse`` (create, upgrade, GET one)."""

    id: str
    request: InstanceRequest
    namespace: str
    release_name: str = Field(alias="release-name")
    resources: list[KubernetesResource] | None


class InstanceMiniResponse(_GoStruct):
    """``app.InstanceMiniResponse`` (the list)."""

    id: str
    request: InstanceRequest
    release_name: str = Field(alias="release-name")
    namespace: str


class InstanceDbData(_GoStruct):
    """``app.InstanceDbData`` (``GET /v1/instance/{id}?full=true``)."""

    id: str
    request: InstanceRequest
    namespace: str
    status: str
    release_name: str = Field(alias="release-name")
    resources: list[KubernetesResource] | None
    hooks: list[dict[str, Any]] | None
    hook_progress: str = Field(alias="hook-progress")
    PreInstallTimeout: int
    PostInstallTimeout: int
    PreDeleteTimeout: int
    PostDeleteTimeout: int
    PreUpgradeTimeout: int
    PostUpgradeTimeout: int


class ResourceStatus(_GoStruct):
    """``app.ResourceStatus``: ``status`` is the object as read (unstructured)."""

    name: str
    GVK: GroupVersionKind
    status: dict[str, Any]


class InstanceStatus(_GoStruct):
    """``app.InstanceStatus``."""

    request: InstanceRequest
    ready: bool
    resourceCount: int
    resourcesStatus: list[ResourceStatus] | None


class Connection(_GoStruct):
    """``connection.Connection`` (``GET /v1/connectivity-info/{region}``)."""

    cloud_region: str = Field(alias="cloud-region")
    cloud_owner: str = Field(alias="cloud-owner")
    kubeconfig: str
    other_connectivity_list: dict[str, Any] = Field(alias="other-connectivity-list")


def _answer_model(method: str, parts: list[str], query: str) -> tuple[type[_GoStruct], bool] | None:
    """The struct a successful JSON answer to ``method /v1/<parts>`` encodes, and whether it
    is a list (Go encodes a nil slice as ``null``)."""
    if parts[:2] == ["rb", "definition"]:
        rest = parts[2:]  # [name [, version [, profile [, profile-name]]]]
        if len(rest) <= 2:
            return Definition, method == "GET" and len(rest) < 2
        if rest[2] == "profile":
            return Profile, method == "GET" and len(rest) == 3
        return None
    if parts[:1] == ["instance"]:
        if len(parts) == 1:
            return (InstanceResponse, False) if method == "POST" else (InstanceMiniResponse, True)
        if parts[2:] == ["status"]:
            return InstanceStatus, False
        if len(parts) == 2 and "full=true" in query:
            return InstanceDbData, False
        return InstanceResponse, False
    if parts[:1] == ["connectivity-info"]:
        return Connection, False
    return None


def _is_tgz(data: bytes) -> tarfile.TarFile | None:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    except (tarfile.TarError, EOFError, OSError):
        return None


@dataclass
class _Instance:
    data: dict[str, Any]
    phase: str  # install | upgrade | delete
    since: float
    fail: bool = False
    #: Its workload's pods stopped being ready (behind the plugin's back: a crash).
    unready: bool = False


@dataclass
class K8sPluginEmulator:
    cloud_region: str = "k8sregion"
    #: Seconds an instance spends in its hook phase (POST-INSTALL …) before DONE / gone.
    hook_seconds: float = 0.2
    #: Seconds ``POST /v1/instance`` takes (the plugin creates the resources synchronously).
    create_delay: float = 0.0
    #: The next install / upgrade / delete ends in *-FAILED.
    fail_next_install: bool = False
    fail_next_upgrade: bool = False
    fail_next_delete: bool = False
    #: Answer every request with this status (an ingress in front of a dead plugin).
    outage_status: int | None = None
    #: Seconds every answer is held back (a hung plugin).
    stall: float = 0.0
    #: Answer the next N requests with 503 (a restarting plugin pod behind its service).
    flaky_requests: int = 0
    #: Only requests with this method count for ``flaky_requests`` (``None``: all).
    flaky_method: str | None = None
    #: While set, every install / upgrade is refused with the plugin's error carrying it (see
    #: :meth:`failing`); ``crashing_requests``: every change request loses its connection.
    failing_message: str | None = None
    crashing_requests: bool = False
    #: Definitions (rb-name, rb-version) whose chart's resources the cluster refuses: creating
    #: an instance of one fails (a package whose apply fails).
    failing_definitions: set[tuple[str, str]] = field(default_factory=set)
    definitions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    contents: dict[tuple[str, str], bytes] = field(default_factory=dict)
    profiles: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    profile_contents: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    instances: dict[str, _Instance] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- plumbing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def failing(self, message: str) -> Iterator[None]:
        """Every instance create / upgrade in the block fails applying its resources to the
        cluster: the plugin's 500 whose text carries ``message`` (the kit's KitFaults)."""
        self.failing_message = message
        try:
            yield
        finally:
            self.failing_message = None

    @contextlib.contextmanager
    def crashing(self) -> Iterator[None]:
        """The plugin dies while serving every change request (POST, DELETE): the connection
        closes before an answer, nothing is recorded (the kit's KitFaults)."""
        self.crashing_requests = True
        try:
            yield
        finally:
            self.crashing_requests = False

    def degrade(self, instance_id: str) -> None:
        """The instance's workload stops being available (its pods crash) — the plugin's
        record still says DONE; its live status read shows it."""
        with self._lock:
            self.instances[instance_id].unready = True

    def remove(self, instance_id: str) -> None:
        """Someone deletes the instance through the plugin directly (not the gateway)."""
        with self._lock:
            del self.instances[instance_id]

    def __call__(self, request: Request) -> Response:
        self.calls.append((request.method, request.path))
        if self.stall:
            time.sleep(self.stall)  # the server thread answers late, as a hung plugin would
        if self.outage_status is not None:
            return Response.text(self.outage_status, "upstream unavailable")
        if self.crashing_requests and request.method != "GET":
            return Response.drop()
        if self.flaky_requests > 0 and self.flaky_method in (None, request.method):
            self.flaky_requests -= 1
            return Response.text(503, "no healthy upstream")
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] != ["v1"]:
            return Response.text(404, "404 page not found")
        with self._lock:
            response = self._route(request, parts[1:])
        self._pin_answer(request, parts[1:], response)
        return response

    def _pin_answer(self, request: Request, parts: list[str], response: Response) -> None:
        """Record a violation when a JSON answer is not what its Go struct encodes."""
        if response.content_type != "application/json" or not 200 <= response.status < 300:
            return
        if parts == ["healthcheck"]:
            return
        pinned = _answer_model(request.method, parts, urlencode(request.query))
        if pinned is None:
            self.violations.append(f"answer {request.method} {request.path}: no struct pinned")
            return
        model, many = pinned
        payload = json.loads(response.body)
        try:
            if many:
                for item in payload or []:  # Go encodes a nil slice as null
                    model.model_validate(item)
            else:
                model.model_validate(payload)
        except ValidationError as exc:
            self.violations.append(f"answer {request.method} {request.path}: {exc}")

    def _decode(self, request: Request, model: type[_GoStruct]) -> _GoStruct | Response:
        if not request.body:
            return Response.text(400, "Body empty")
        try:
            return model.model_validate_json(request.body)
        except ValidationError as exc:
            self.violations.append(f"{request.method} {request.path}: {exc}")
            return Response.text(422, f"json: cannot unmarshal request: {exc.errors()[0]['msg']}")

    def _route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if parts == ["healthcheck"] and method == "GET":
            return Response.json(200, {})
        if parts[:2] == ["rb", "definition"]:
            return self._definitions(request, parts[2:])
        if parts[:1] == ["instance"]:
            return self._instances(request, parts[1:])
        if parts[:1] == ["connectivity-info"] and len(parts) == 2 and method == "GET":
            if parts[1] != self.cloud_region:
                return Response.text(404, f"Get Connection: {NO_DOCUMENTS}")
            return Response.json(
                200,
                {
                    "cloud-region": self.cloud_region,
                    "cloud-owner": "CloudOwner",
                    "kubeconfig": "YXBpVmVyc2lvbjogdjEKa2luZDogQ29uZmlnCg==",
                    "other-connectivity-list": {"connectivity-records": []},
                },
            )
        self.violations.append(f"{method} {request.path}: no such route in api.go")
        return Response.text(404, "404 page not found")

    # -- definitions and profiles --------------------------------------------------------

    def _definitions(self, request: Request, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            if method == "POST":
                decoded = self._decode(request, Definition)
                if isinstance(decoded, Response):
                    return decoded
                body = decoded.model_dump(by_alias=True)
                if not body["rb-name"]:
                    return Response.text(400, "Missing name in request")
                if not body["rb-version"]:
                    return Response.text(400, "Missing version in request")
                key = (body["rb-name"], body["rb-version"])
                if key in self.definitions:
                    return Response.text(500, "Definition already exists")
                self.definitions[key] = body
                # The plugin creates a default profile with every definition.
                self.profiles[(*key, "default")] = {
                    "rb-name": key[0],
                    "rb-version": key[1],
                    "profile-name": "default",
                    "release-name": "default",
                    "namespace": "default",
                    "kubernetes-version": "",
                    "labels": None,
                    "extra-resource-types": None,
                }
                return Response.json(201, body)
            if method == "GET":
                return self._listing(
                    list(self.definitions.values()),
                    "Listing Resource Bundle Definitions: Did not find any objects with tag: "
                    "metadata",
                )
        if len(rest) == 1 and method == "GET":
            return self._listing(
                [d for (name, _), d in self.definitions.items() if name == rest[0]],
                "Listing Resource Bundle Definitions: Did not find any objects with tag: metadata",
            )
        if len(rest) < 2:
            return self._no_route(request)
        key = (rest[0], rest[1])
        if len(rest) == 2:
            if method == "GET":
                found = self.definitions.get(key)
                return Response.json(200, found) if found else Response.text(500, NO_DOCUMENTS)
            if method == "DELETE":
                if key not in self.definitions:
                    return Response.text(500, f"Delete Resource Bundle Definition: {NO_DOCUMENTS}")
                del self.definitions[key]
                self.contents.pop(key, None)
                self.profiles.pop((*key, "default"), None)
                return Response(204)
        if rest[2:] == ["content"] and method == "POST":
            if key not in self.definitions:
                return Response.text(500, f"Invalid Definition ID provided: {NO_DOCUMENTS}")
            if not request.body:
                return Response.text(400, "Empty body")
            tar = _is_tgz(request.body)
            if tar is None:
                return Response.text(500, "Error in file format: gzip: invalid header")
            with tar:
                names = tar.getnames()
            if not any(n.strip("/").count("/") == 1 and n.endswith("/Chart.yaml") for n in names):
                return Response.text(500, "Unable to detect chart name")
            self.contents[key] = request.body
            return Response(200)
        if rest[2:3] == ["profile"]:
            return self._profiles(request, key, rest[3:])
        return self._no_route(request)

    def _profiles(self, request: Request, rb: tuple[str, str], rest: list[str]) -> Response:
        method = request.method
        if not rest:
            if method == "POST":
                decoded = self._decode(request, Profile)
                if isinstance(decoded, Response):
                    return decoded
                body = decoded.model_dump(by_alias=True)
                if not body["profile-name"]:
                    return Response.text(400, "Missing name in POST request")
                if (body["rb-name"], body["rb-version"]) != rb:
                    self.violations.append("profile body names another definition than its URL")
                key = (body["rb-name"], body["rb-version"], body["profile-name"])
                if key in self.profiles:
                    return Response.text(500, "Profile already exists for this Definition")
                if rb not in self.definitions:
                    return Response.text(
                        500, f"Invalid Resource Bundle ID provided: {NO_DOCUMENTS}"
                    )
                if not body["release-name"]:
                    body["release-name"] = body["profile-name"]
                self.profiles[key] = body
                return Response.json(201, body)
            if method == "GET":
                found = [p for (n, v, _), p in self.profiles.items() if (n, v) == rb]
                if not found:  # ProfileClient.List: an error, not an empty list
                    return Response.text(500, "No Profiles Found for Definition and Version")
                return Response.json(200, found)
            return self._no_route(request)
        key = (*rb, rest[0])
        if len(rest) == 1:
            if method == "GET":
                found = self.profiles.get(key)
                return Response.json(200, found) if found else Response.text(404, NO_DOCUMENTS)
            if method == "DELETE":
                if key not in self.profiles:
                    return Response.text(500, f"Delete Resource Bundle Profile: {NO_DOCUMENTS}")
                del self.profiles[key]
                self.profile_contents.pop(key, None)
                return Response(204)
        if rest[1:] == ["content"] and method == "POST":
            if key not in self.profiles:
                return Response.text(500, f"Invalid Profile ID provided: {NO_DOCUMENTS}")
            problem = self._check_profile_content(request.body)
            if problem:
                self.violations.append(f"profile content: {problem}")
                return Response.text(500, f"Error in file format: {problem}")
            self.profile_contents[key] = request.body
            return Response(200)
        return self._no_route(request)

    @staticmethod
    def _check_profile_content(data: bytes) -> str | None:
        tar = _is_tgz(data)
        if tar is None:
            return "not a gzip-compressed tar"
        with tar:
            try:
                manifest = yaml.safe_load(tar.extractfile("manifest.yaml").read())  # type: ignore[union-attr]
            except (KeyError, AttributeError, yaml.YAMLError):
                return "no readable manifest.yaml"
            if not isinstance(manifest, dict) or manifest.get("version") != "v1":
                return "manifest.yaml must say version: v1"
            values_file = (manifest.get("type") or {}).get("values")
            if values_file:
                try:
                    yaml.safe_load(tar.extractfile(values_file).read())  # type: ignore[union-attr]
                except (KeyError, AttributeError, yaml.YAMLError):
                    return f"values file {values_file!r} missing or not YAML"
        return None

    # -- instances -----------------------------------------------------------------------

    def _status_of(self, inst: _Instance) -> str | None:
        """The instance's DB status now; ``None`` once a delete finished (record gone)."""
        elapsed = time.monotonic() - inst.since
        running = elapsed < self.hook_seconds
        if inst.phase == "install":
            return "POST-INSTALL" if running else ("POST-INSTALL-FAILED" if inst.fail else "DONE")
        if inst.phase == "upgrade":
            return "POST-UPGRADE" if running else ("POST-UPGRADE-FAILED" if inst.fail else "DONE")
        if running:
            return "POST-DELETE"
        return "POST-DELETE-FAILED" if inst.fail else None

    def _current(self, instance_id: str) -> _Instance | None:
        inst = self.instances.get(instance_id)
        if inst is None:
            return None
        status = self._status_of(inst)
        if status is None:
            del self.instances[instance_id]
            return None
        inst.data["status"] = status
        return inst

    def _resources(self, release: str) -> list[dict[str, Any]]:
        return [
            {"GVK": {"Group": "apps", "Version": "v1", "Kind": "Deployment"}, "Name": release},
            {"GVK": {"Group": "", "Version": "v1", "Kind": "Service"}, "Name": release},
        ]

    def _instances(self, request: Request, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            if method == "POST":
                return self._create(request)
            if method == "GET":
                result = []
                for instance_id in list(self.instances):
                    inst = self._current(instance_id)
                    if inst is None:
                        continue
                    req = inst.data["request"]
                    if any(
                        (value := request.param(name)) and req.get(name) != value
                        for name in ("rb-name", "rb-version", "profile-name")
                    ):
                        continue
                    result.append(
                        {
                            "id": instance_id,
                            "request": req,
                            "release-name": inst.data["release-name"],
                            "namespace": inst.data["namespace"],
                        }
                    )
                if not self.instances:
                    return Response.text(
                        500, "Listing Instances: Did not find any objects with tag: instance"
                    )
                return Response.json(200, result or None)
            return self._no_route(request)
        instance_id = rest[0]
        inst = self._current(instance_id)
        if len(rest) == 1 and method == "GET":
            if inst is None:
                return Response.text(404, f"Get Instance: {NO_DOCUMENTS}")
            if request.param("full") == "true":
                return Response.json(200, inst.data)
            return Response.json(
                200,
                {
                    k: inst.data[k]
                    for k in ("id", "request", "namespace", "release-name", "resources")
                },
            )
        if len(rest) == 1 and method == "DELETE":
            if inst is None:
                return Response.text(500, f"Error getting Instance: Get Instance: {NO_DOCUMENTS}")
            inst.phase, inst.since = "delete", time.monotonic()
            inst.fail, self.fail_next_delete = self.fail_next_delete, False
            return Response(202)
        if rest[1:] == ["upgrade"] and method == "POST":
            decoded = self._decode(request, UpgradeRequest)
            if isinstance(decoded, Response):
                return decoded
            if inst is None:
                return Response.text(500, f"Upgrade Instance: {NO_DOCUMENTS}")
            body = decoded.model_dump(by_alias=True)
            profile = self.profiles.get((body["rb-name"], body["rb-version"], body["profile-name"]))
            if profile is None:
                return Response.text(500, "Unable to find Profile to create instance")
            if body["cloud-region"] != self.cloud_region:
                return Response.text(500, "Getting CloudRegion Information: connectivity not found")
            if self.failing_message is not None:
                # instance.go Upgrade: the resources' update failed; nothing is recorded.
                return Response.text(
                    500,
                    "Upgrade Instance: Error Creating Resources: "
                    f"Error creating kubernetes resources: {self.failing_message}",
                )
            new_request = {**body, "release-name": inst.data["release-name"]}
            inst.data["request"] = new_request
            inst.data["namespace"] = profile["namespace"]
            inst.phase, inst.since = "upgrade", time.monotonic()
            inst.fail, self.fail_next_upgrade = self.fail_next_upgrade, False
            inst.data["status"] = "POST-UPGRADE"
            return Response.json(201, self._response(inst))
        if rest[1:] == ["status"] and method == "GET":
            if inst is None:
                return Response.text(500, f"Get Instance: {NO_DOCUMENTS}")
            done = inst.data["status"] == "DONE"
            resources = [
                {"name": r["Name"], "GVK": r["GVK"], "status": self._live(inst, r)}
                for r in inst.data["resources"]
            ]
            if inst.unready:
                done = False
            return Response.json(
                200,
                {
                    "request": inst.data["request"],
                    "ready": done,
                    "resourceCount": len(resources),
                    "resourcesStatus": resources,
                },
            )
        return self._no_route(request)

    @staticmethod
    def _live(inst: _Instance, resource: dict[str, Any]) -> dict[str, Any]:
        """The object as the plugin reads it from the cluster (``GetResourcesStatus``)."""
        gvk = resource["GVK"]
        api_version = f"{gvk['Group']}/{gvk['Version']}" if gvk["Group"] else gvk["Version"]
        meta = {"name": resource["Name"], "namespace": inst.data["namespace"], "generation": 1}
        if gvk["Kind"] == "Deployment":
            available = 0 if inst.unready else 1
            return {
                "apiVersion": api_version,
                "kind": "Deployment",
                "metadata": meta,
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "readyReplicas": available,
                    "availableReplicas": available,
                },
            }
        return {
            "apiVersion": api_version,
            "kind": gvk["Kind"],
            "metadata": meta,
            "spec": {"type": "ClusterIP", "selector": {"app": resource["Name"]}},
            "status": {"loadBalancer": {}},
        }

    def _listing(self, items: list[dict[str, Any]], empty_table: str) -> Response:
        """MongoStore.ReadAll fails on an empty table; Go encodes a nil result as null."""
        if not self.definitions:
            return Response.text(500, empty_table)
        return Response.json(200, items or None)

    def _response(self, inst: _Instance) -> dict[str, Any]:
        return {
            k: inst.data[k] for k in ("id", "request", "namespace", "release-name", "resources")
        }

    def _create(self, request: Request) -> Response:
        decoded = self._decode(request, InstanceRequest)
        if isinstance(decoded, Response):
            return decoded
        body = decoded.model_dump(by_alias=True)
        if not all(body[k] for k in ("rb-name", "rb-version", "profile-name", "cloud-region")):
            return Response.text(
                500,
                "RBName, RBversion, ProfileName, CloudRegion are required to create a new instance",
            )
        profile = self.profiles.get((body["rb-name"], body["rb-version"], body["profile-name"]))
        if profile is None:
            return Response.text(500, "Unable to find Profile to create instance")
        if (body["rb-name"], body["rb-version"]) not in self.contents:
            return Response.text(500, "Error resolving helm charts: Error downloading Definition")
        if body["cloud-region"] != self.cloud_region:
            return Response.text(500, "Getting CloudRegion Information: connectivity not found")
        failure = self.failing_message
        if failure is None and (body["rb-name"], body["rb-version"]) in self.failing_definitions:
            failure = 'Deployment.apps "hello-world" is invalid: spec.replicas: Invalid value'
        if failure is not None:
            # instance.go Create: applying the resources failed; the plugin keeps no instance.
            return Response.text(
                500,
                "Create Instance: Error Creating Resources: "
                f"Error creating kubernetes resources: {failure}",
            )
        if self.create_delay:
            self._lock.release()  # other requests go on while this one is "creating"
            try:
                time.sleep(self.create_delay)
            finally:
                self._lock.acquire()
        instance_id = uuid.uuid4().hex[:14]
        release = body["release-name"] or profile["release-name"]
        data = {
            "id": instance_id,
            "request": body,
            "namespace": profile["namespace"],
            "status": "POST-INSTALL",
            "release-name": release,
            "resources": self._resources(release),
            "hooks": [],
            "hook-progress": "",
            "PreInstallTimeout": 60,
            "PostInstallTimeout": 600,
            "PreDeleteTimeout": 60,
            "PostDeleteTimeout": 600,
            "PreUpgradeTimeout": 60,
            "PostUpgradeTimeout": 600,
        }
        inst = _Instance(data=data, phase="install", since=time.monotonic())
        inst.fail, self.fail_next_install = self.fail_next_install, False
        self.instances[instance_id] = inst
        return Response.json(201, self._response(inst))

    def _no_route(self, request: Request) -> Response:
        self.violations.append(f"{request.method} {request.path}: no such route in api.go")
        return Response.text(405, "method not allowed")
