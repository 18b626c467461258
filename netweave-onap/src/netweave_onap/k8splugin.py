"""``backend: k8splugin`` — Helm charts as resource bundles, deployments as plugin instances.

Mapping onto the MultiCloud k8s plugin API (``/v1``, ``src/k8splugin/api/api.go``):

* package = resource-bundle **definition** ``{rb-name, rb-version}`` whose content is the chart
  archive; the plugin itself creates a ``default`` profile with every definition;
* deployment = **instance**; its values and namespace live in a **profile** netweave creates per
  revision (``<release>-<hash>-r<N>``, content = ``manifest.yaml`` + the values file), because a
  profile fixes the namespace and carries the values file Helm renders with;
* update/upgrade = ``POST /v1/instance/{id}/upgrade`` to a new profile (and definition version);
* rollback = the same upgrade back to an earlier revision's definition and profile.

The plugin keeps no revision history of an instance (its ``config/.../rollback`` is day-2
*config* versioning, not Helm). netweave keeps it in the instance's own ``labels`` (stored by
the plugin with the request, never applied to Kubernetes objects): the current revision, the
values, and the list of revisions netweave applied. So the history is derived from the changes
this gateway made; changes made directly against the plugin are not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import yaml
from netweave.adapters import (
    AdapterHealth,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.adapters.charts import inspect_archive
from netweave.adapters.idempotency import has_stamp, idempotency_stamp
from netweave.adapters.times import parse_time
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    Conflict,
    InUse,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import DeploymentStatus, ResourceStatus, RevisionEntry

from netweave_onap.adapter import HELM_PACKAGE, K8SPLUGIN_CAPABILITIES, OnapBackend
from netweave_onap.errors import k8splugin_error
from netweave_onap.status import k8splugin_resource, map_k8splugin
from netweave_onap.values import deep_merge

_log = logging.getLogger("netweave_onap.k8splugin")

# Label keys without dots: the plugin stores labels as MongoDB document keys.
L_DEPLOYMENT = "netweave-deployment-id"
L_KEY = "netweave-idempotency-key"
L_REVISION = "netweave-revision"
L_OPERATION = "netweave-operation"
L_VALUES = "netweave-values"
L_HISTORY = "netweave-history"
#: History entries kept in the label (oldest dropped first).
MAX_HISTORY = 100
_SETTLED = frozenset(
    {
        DeploymentStatus.DEPLOYED,
        DeploymentStatus.FAILED,
        DeploymentStatus.DELETED,
        DeploymentStatus.UNKNOWN,
    }
)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _inspect_chart(archive: Path) -> dict[str, Any]:
    """Chart directory name and Chart.yaml of a ``.tgz``, by core's one safe inspector (limits
    on entries, sizes and ratio; no links, devices or path traversal), nothing extracted."""
    facts = inspect_archive(archive)
    return {"chartName": facts.top, "chart": facts.chart_yaml}


def _profile_content(values: dict[str, Any]) -> bytes:
    """A profile archive: ``manifest.yaml`` pointing at the override values file."""
    files = {
        "manifest.yaml": yaml.safe_dump(
            {"version": "v1", "type": {"values": "override_values.yaml"}}, sort_keys=False
        ).encode(),
        "override_values.yaml": yaml.safe_dump(values, sort_keys=True).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _split_ref(backend_ref: str) -> tuple[str, str]:
    name, sep, version = backend_ref.partition("/")
    if not sep or not name or not version or "/" in version:
        raise NotFound(f"no resource-bundle definition {backend_ref!r} (expected rb-name/version)")
    return name, version


class K8sPluginBackend(OnapBackend):
    BACKEND: ClassVar[str] = "k8splugin"
    CAPABILITIES: ClassVar[frozenset[Capability]] = K8SPLUGIN_CAPABILITIES
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({HELM_PACKAGE})
    #: The plugin renders charts with Helm's engine: Helm's release-name limit applies.
    MAX_DEPLOYMENT_NAME_LENGTH: ClassVar[int] = 53

    async def _start(self) -> None:
        url = self.config.k8s_plugin_url
        assert url is not None  # checked by OnapConfig
        self._client = self._make_client(url, "k8s plugin", k8splugin_error)

    async def _health(self) -> AdapterHealth:
        await self.client.request("GET", "/v1/healthcheck", expected=(200,))
        region = self.config.cloud_region
        details = {"backend": "k8splugin", "cloudRegion": region}
        try:
            # The answer carries the cluster's kubeconfig: only its presence is used.
            await self.client.request(
                "GET", f"/v1/connectivity-info/{_segment(region)}", expected=(200,)
            )
        except NotFound:
            return AdapterHealth(
                healthy=False,
                message=f"cloud region {region!r} is not registered in the k8s plugin "
                "(register its kubeconfig with POST /v1/connectivity-info)",
                details=details,
            )
        return AdapterHealth(healthy=True, details=details)

    # -- packages: resource-bundle definitions -------------------------------------------

    def _package_info(self, definition: dict[str, Any]) -> PackageInfo:
        name = str(definition.get("rb-name", ""))
        version = str(definition.get("rb-version", ""))
        labels = definition.get("labels") or {}
        return PackageInfo(
            backend_ref=f"{name}/{version}",
            name=name,
            version=version,
            package_type=HELM_PACKAGE,
            description=definition.get("description") or None,
            checksum=labels.get("netweave-checksum"),
            extensions={
                "rbName": name,
                "rbVersion": version,
                "chartName": definition.get("chart-name") or None,
                "labels": dict(labels),
            },
        )

    async def _list(self, path: str, params: dict[str, str] | None = None) -> list[Any]:
        """A plugin list. It answers 500 "Did not find any objects" for an empty table and
        JSON ``null`` when nothing matches — both mean an empty list here."""
        try:
            response = await self.client.request("GET", path, params=params, expected=(200,))
        except NotFound:
            return []
        body = response.json()
        return list(body) if isinstance(body, list) else []

    async def _list_packages(self) -> list[PackageInfo]:
        return [self._package_info(d) for d in await self._list("/v1/rb/definition")]

    async def _get_definition(self, name: str, version: str) -> dict[str, Any]:
        response = await self.client.request(
            "GET", f"/v1/rb/definition/{_segment(name)}/{_segment(version)}", expected=(200,)
        )
        body = response.json()
        if not isinstance(body, dict) or not body.get("rb-name"):
            raise NotFound(f"no resource-bundle definition {name}/{version}")
        return body

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        return self._package_info(await self._get_definition(*_split_ref(backend_ref)))

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        if upload.archive is None:
            raise InvalidInput(
                "backend 'k8splugin' onboards Helm chart archives (upload the .tgz as 'chart'); "
                "registration by packageUri is not supported",
                details={"field": "packageUri"},
            )
        chart = await asyncio.to_thread(_inspect_chart, upload.archive)
        labels = {
            "netweave-chart-version": str(chart["chart"].get("version", "")),
            "netweave-app-version": str(chart["chart"].get("appVersion", "")),
        }
        if upload.checksum:
            labels["netweave-checksum"] = upload.checksum
        definition = {
            "rb-name": upload.name,
            "rb-version": upload.version,
            "chart-name": chart["chartName"],
            "description": upload.description or str(chart["chart"].get("description", "")),
            "labels": labels,
        }
        try:
            await self.client.request("POST", "/v1/rb/definition", json=definition, expected=(201,))
        except AlreadyExists as exc:
            raise AlreadyExists(
                f"resource-bundle definition {upload.name}/{upload.version} already exists",
                details={"name": upload.name, "version": upload.version},
            ) from exc
        path = f"/v1/rb/definition/{_segment(upload.name)}/{_segment(upload.version)}/content"
        try:
            content = await asyncio.to_thread(upload.archive.read_bytes)
            # Re-uploading content replaces it, so a retry is safe.
            await self.client.request(
                "POST",
                path,
                content=content,
                headers={"Content-Type": "application/octet-stream"},
                expected=(200, 201, 204),
                retry=True,
            )
        except NetweaveError:
            # No half-onboarded definition left behind: it would block a corrected re-upload.
            with contextlib.suppress(NetweaveError):
                await self._delete_definition(upload.name, upload.version)
            raise
        return self._package_info(definition)

    async def _delete_definition(self, name: str, version: str) -> None:
        await self.client.request(
            "DELETE",
            f"/v1/rb/definition/{_segment(name)}/{_segment(version)}",
            expected=(200, 204),
        )

    async def _delete_package(self, backend_ref: str) -> None:
        name, version = _split_ref(backend_ref)
        await self._get_definition(name, version)
        users = await self._instances(name, version)
        if users:
            raise InUse(
                f"resource-bundle definition {backend_ref} is used by plugin instances",
                details={"deployments": sorted(str(u.get("id")) for u in users)},
            )
        # Leftover netweave profiles (of deleted instances) would outlive the definition.
        profiles = await self._list(
            f"/v1/rb/definition/{_segment(name)}/{_segment(version)}/profile"
        )
        for profile in profiles:
            if (profile.get("labels") or {}).get(L_DEPLOYMENT):
                await self._delete_profile(name, version, str(profile.get("profile-name")))
        await self._delete_definition(name, version)

    # -- deployments: instances ----------------------------------------------------------

    async def _instances(self, name: str, version: str) -> list[dict[str, Any]]:
        return await self._list("/v1/instance", {"rb-name": name, "rb-version": version})

    async def _full(self, instance_id: str) -> dict[str, Any]:
        response = await self.client.request(
            "GET",
            f"/v1/instance/{_segment(instance_id)}",
            params={"full": "true"},
            expected=(200,),
        )
        body = response.json()
        if not isinstance(body, dict) or not body.get("id"):
            raise NotFound(f"no k8s plugin instance {instance_id!r}")
        return body

    async def _ensure_profile(
        self,
        *,
        rb: tuple[str, str],
        release: str,
        namespace: str,
        deployment_id: str,
        revision: int,
        values: dict[str, Any],
        ctx: OperationContext,
    ) -> str:
        digest = hashlib.sha256(deployment_id.encode()).hexdigest()[:8]
        profile_name = f"{release}-{digest}-r{revision}"
        base = f"/v1/rb/definition/{_segment(rb[0])}/{_segment(rb[1])}/profile"
        profile = {
            "rb-name": rb[0],
            "rb-version": rb[1],
            "profile-name": profile_name,
            "release-name": release,
            "namespace": namespace,
            "labels": {
                L_DEPLOYMENT: deployment_id,
                L_REVISION: str(revision),
                L_KEY: idempotency_stamp(ctx.idempotency_key),
                L_VALUES: json.dumps(values, sort_keys=True, separators=(",", ":")),
            },
        }
        try:
            await self.client.request("POST", base, json=profile, expected=(201,))
        except AlreadyExists:
            # Left by an earlier attempt at this same revision (whose instance call failed or
            # whose answer was lost): no instance uses it yet, so it is replaced. A profile of
            # another deployment with the same name is a conflict.
            existing = await self.client.request(
                "GET", f"{base}/{_segment(profile_name)}", expected=(200,)
            )
            if (existing.json().get("labels") or {}).get(L_DEPLOYMENT) != deployment_id:
                raise Conflict(
                    f"profile {profile_name} of {rb[0]}/{rb[1]} belongs to another deployment",
                    details={"profile": profile_name},
                ) from None
            await self._delete_profile(rb[0], rb[1], profile_name)
            await self.client.request("POST", base, json=profile, expected=(201,))
        await self.client.request(
            "POST",
            f"{base}/{_segment(profile_name)}/content",
            content=_profile_content(values),
            headers={"Content-Type": "application/octet-stream"},
            expected=(200, 201, 204),
            retry=True,
        )
        return profile_name

    async def _delete_profile(self, rb: str, version: str, profile: str) -> None:
        with contextlib.suppress(NotFound):
            await self.client.request(
                "DELETE",
                f"/v1/rb/definition/{_segment(rb)}/{_segment(version)}/profile/{_segment(profile)}",
                expected=(200, 204),
            )

    def _info(self, full: dict[str, Any], status_report: dict[str, Any] | None) -> DeploymentInfo:
        request = full.get("request") or {}
        labels = request.get("labels") or {}
        backend_status = str(full.get("status") or "")
        status = map_k8splugin(backend_status, rolling_back=labels.get(L_OPERATION) == "rollback")
        try:
            values = json.loads(labels[L_VALUES]) if L_VALUES in labels else None
        except ValueError:
            values = None
        try:
            revision = int(labels.get(L_REVISION, "1"))
        except ValueError:
            revision = 1
        namespace = full.get("namespace")
        resources: list[ResourceStatus] = []
        ready: bool | None = None
        if status_report is not None:
            ready = bool(status_report.get("ready"))
            for item in status_report.get("resourcesStatus") or []:
                if isinstance(item, dict):
                    resources.append(k8splugin_resource(item, namespace))
        else:
            for item in full.get("resources") or []:
                gvk = item.get("GVK") or {}
                resources.append(
                    ResourceStatus(
                        kind=str(gvk.get("Kind", "")),
                        name=str(item.get("Name", "")),
                        namespace=namespace,
                    )
                )
        message = f"k8s plugin instance status {backend_status or 'missing'}"
        if status is DeploymentStatus.DEPLOYED and ready is False:
            message += "; resources not ready yet"
        return DeploymentInfo(
            backend_ref=str(full.get("id")),
            status=status,
            revision=revision,
            message=message,
            backend_status=backend_status or None,
            package_version=request.get("rb-version"),
            values=values,
            resources=tuple(resources),
            extensions={
                "instanceId": full.get("id"),
                "rbName": request.get("rb-name"),
                "rbVersion": request.get("rb-version"),
                "profileName": request.get("profile-name"),
                "releaseName": full.get("release-name"),
                "namespace": namespace,
                "cloudRegion": request.get("cloud-region"),
                "hookProgress": full.get("hook-progress") or None,
                "ready": ready,
            },
        )

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        full = await self._full(backend_ref)
        report: dict[str, Any] | None = None
        if full.get("status") == "DONE":
            # Live readiness needs the cluster; an unreachable cluster must not hide the state
            # the plugin recorded.
            try:
                response = await self.client.request(
                    "GET", f"/v1/instance/{_segment(backend_ref)}/status", expected=(200,)
                )
                report = response.json()
            except (BackendError, NotFound) as exc:
                _log.warning("k8s plugin: status of %s unavailable: %s", backend_ref, exc.message)
        return self._info(full, report)

    async def _settle(self, instance_id: str) -> DeploymentInfo:
        """The instance's state once the plugin is done with it (when ``wait``), else now."""
        if not self.config.wait:
            return self._info(await self._full(instance_id), None)
        final = await self._poll(
            lambda: self._full(instance_id),
            lambda full: map_k8splugin(str(full.get("status") or "")) in _SETTLED,
        )
        return await self._get_deployment(str(final.get("id") or instance_id))

    async def _finish(self, instance_id: str, what: str) -> DeploymentInfo:
        """Settle, and turn a failed instance into an error: the operation failed."""
        info = await self._settle(instance_id)
        if info.status is DeploymentStatus.FAILED:
            raise BackendError(
                f"k8s plugin: {what} of instance {instance_id} failed ({info.backend_status})",
                details={"backendRef": instance_id, "backendStatus": info.backend_status},
            )
        return info

    async def _find_by_key(self, rb: tuple[str, str], key: str) -> dict[str, Any] | None:
        for item in await self._instances(*rb):
            labels = (item.get("request") or {}).get("labels") or {}
            if has_stamp(labels.get(L_KEY), key):
                return item
        return None

    @staticmethod
    def _history_entry(
        revision: int, rb: tuple[str, str], profile: str, operation: str, **extra: Any
    ) -> dict[str, Any]:
        return {
            "revision": revision,
            "rbName": rb[0],
            "rbVersion": rb[1],
            "profile": profile,
            "operation": operation,
            "at": _now(),
            **extra,
        }

    @staticmethod
    def _history(labels: dict[str, str]) -> list[dict[str, Any]]:
        try:
            entries = json.loads(labels.get(L_HISTORY, "[]"))
        except ValueError:
            return []
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def _labels(
        self,
        *,
        deployment_id: str,
        ctx: OperationContext,
        revision: int,
        operation: str,
        values: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> dict[str, str]:
        return {
            L_DEPLOYMENT: deployment_id,
            L_KEY: idempotency_stamp(ctx.idempotency_key),
            L_REVISION: str(revision),
            L_OPERATION: operation,
            L_VALUES: json.dumps(values, sort_keys=True, separators=(",", ":")),
            L_HISTORY: json.dumps(history[-MAX_HISTORY:], separators=(",", ":")),
        }

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        rb = _split_ref(spec.package.backend_ref)
        existing = await self._find_by_key(rb, ctx.idempotency_key)
        if existing is not None:
            # A retry of a create that reached the plugin: never a second instance.
            return await self._install_result(str(existing["id"]))
        profile = await self._ensure_profile(
            rb=rb,
            release=spec.name,
            namespace=spec.namespace,
            deployment_id=spec.deployment_id,
            revision=1,
            values=spec.values,
            ctx=ctx,
        )
        history = [self._history_entry(1, rb, profile, "create")]
        body = {
            "rb-name": rb[0],
            "rb-version": rb[1],
            "profile-name": profile,
            "release-name": spec.name,
            "cloud-region": self.config.cloud_region,
            "labels": self._labels(
                deployment_id=spec.deployment_id,
                ctx=ctx,
                revision=1,
                operation="create",
                values=spec.values,
                history=history,
            ),
            "override-values": dict(self.config.override_values),
        }
        # POST is not retried: a lost answer is recovered by the idempotency-key lookup.
        try:
            response = await self.client.request("POST", "/v1/instance", json=body, expected=(201,))
        except NetweaveError as exc:
            if not isinstance(exc, BackendTimeout):  # it may still have been created
                with contextlib.suppress(NetweaveError):
                    await self._delete_profile(rb[0], rb[1], profile)
            raise
        instance_id = str(response.json()["id"])
        _log.info(
            "k8s plugin: instance %s created for %s (%s/%s, profile %s)",
            instance_id,
            spec.deployment_id,
            rb[0],
            rb[1],
            profile,
        )
        return await self._install_result(instance_id)

    async def _install_result(self, instance_id: str) -> DeploymentInfo:
        info = await self._settle(instance_id)
        if info.status is not DeploymentStatus.FAILED:
            return info
        # Like ``helm install --atomic``: a failed install is removed, so nothing is left that
        # the gateway holds no reference to, and a retry of the operation starts clean.
        removed = "it was removed"
        try:
            await self._remove(instance_id)
        except NetweaveError as exc:
            removed = f"removing it failed too: {exc.message}"
        raise BackendError(
            f"k8s plugin: install of instance {instance_id} failed ({info.backend_status}); "
            f"{removed}",
            details={"backendRef": instance_id, "backendStatus": info.backend_status},
        )

    async def _upgrade(
        self,
        instance_id: str,
        full: dict[str, Any],
        *,
        rb: tuple[str, str],
        profile: str,
        labels: dict[str, str],
    ) -> DeploymentInfo:
        request = full.get("request") or {}
        body = {
            "rb-name": rb[0],
            "rb-version": rb[1],
            "profile-name": profile,
            "cloud-region": request.get("cloud-region") or self.config.cloud_region,
            "labels": labels,
            "override-values": dict(self.config.override_values),
        }
        await self.client.request(
            "POST", f"/v1/instance/{_segment(instance_id)}/upgrade", json=body, expected=(201,)
        )
        _log.info(
            "k8s plugin: instance %s %s to revision %s (%s/%s, profile %s)",
            instance_id,
            labels.get(L_OPERATION, "upgrade"),
            labels.get(L_REVISION),
            rb[0],
            rb[1],
            profile,
        )
        return await self._finish(instance_id, str(labels.get(L_OPERATION, "upgrade")))

    async def _repeat(self, instance_id: str, full: dict[str, Any]) -> DeploymentInfo:
        """A retried update/rollback step whose upgrade already reached the plugin: wait for
        it, or — when it failed — send the same upgrade again (the plugin re-runs it)."""
        request = full.get("request") or {}
        labels = dict(request.get("labels") or {})
        if map_k8splugin(str(full.get("status") or "")) is not DeploymentStatus.FAILED:
            return await self._finish(instance_id, str(labels.get(L_OPERATION, "upgrade")))
        return await self._upgrade(
            instance_id,
            full,
            rb=(str(request.get("rb-name")), str(request.get("rb-version"))),
            profile=str(request.get("profile-name")),
            labels=labels,
        )

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        full = await self._full(backend_ref)
        request = full.get("request") or {}
        labels = request.get("labels") or {}
        if has_stamp(labels.get(L_KEY), ctx.idempotency_key):
            return await self._repeat(backend_ref, full)  # this step already reached the plugin
        current = self._info(full, None)
        base_values = current.values or {}
        if change.values is None:
            values = base_values
        elif change.values_mode == "replace":
            values = dict(change.values)
        else:
            values = deep_merge(base_values, change.values)
        rb = (
            _split_ref(change.package.backend_ref)
            if change.package is not None
            else (str(request.get("rb-name")), str(request.get("rb-version")))
        )
        revision = current.revision + 1
        deployment_id = labels.get(L_DEPLOYMENT) or backend_ref
        profile = await self._ensure_profile(
            rb=rb,
            release=str(full.get("release-name") or request.get("release-name") or backend_ref),
            namespace=str(full.get("namespace") or "default"),
            deployment_id=deployment_id,
            revision=revision,
            values=values,
            ctx=ctx,
        )
        operation = "upgrade" if change.package is not None else "update"
        history = [
            *self._history(labels),
            self._history_entry(revision, rb, profile, operation),
        ]
        new_labels = self._labels(
            deployment_id=deployment_id,
            ctx=ctx,
            revision=revision,
            operation=operation,
            values=values,
            history=history,
        )
        return await self._upgrade(backend_ref, full, rb=rb, profile=profile, labels=new_labels)

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        full = await self._full(backend_ref)
        labels = (full.get("request") or {}).get("labels") or {}
        if has_stamp(labels.get(L_KEY), ctx.idempotency_key):
            return await self._repeat(backend_ref, full)
        history = self._history(labels)
        current = self._info(full, None).revision
        if revision == 0:
            earlier = [e for e in history if int(e.get("revision", 0)) < current]
            if not earlier:
                raise Conflict(
                    f"deployment {backend_ref} has no earlier revision to roll back to",
                    details={"revision": current},
                )
            target = earlier[-1]
        else:
            found = [e for e in history if int(e.get("revision", 0)) == revision]
            if not found:
                raise NotFound(
                    f"revision {revision} is not in the history of {backend_ref}",
                    details={"revisions": [e.get("revision") for e in history]},
                )
            target = found[-1]
        rb = (str(target["rbName"]), str(target["rbVersion"]))
        profile = str(target["profile"])
        # The target revision's values are kept on its profile.
        try:
            prof = await self.client.request(
                "GET",
                f"/v1/rb/definition/{_segment(rb[0])}/{_segment(rb[1])}"
                f"/profile/{_segment(profile)}",
                expected=(200,),
            )
        except NotFound as exc:
            raise Conflict(
                f"revision {target['revision']} cannot be restored: its definition "
                f"{rb[0]}/{rb[1]} or profile {profile} was deleted",
                details={"revision": target["revision"]},
            ) from exc
        try:
            values = json.loads((prof.json().get("labels") or {}).get(L_VALUES, "{}"))
        except ValueError:
            values = {}
        new_revision = current + 1
        history.append(
            self._history_entry(
                new_revision, rb, profile, "rollback", rolledBackTo=target["revision"]
            )
        )
        new_labels = self._labels(
            deployment_id=labels.get(L_DEPLOYMENT) or backend_ref,
            ctx=ctx,
            revision=new_revision,
            operation="rollback",
            values=values,
            history=history,
        )
        return await self._upgrade(backend_ref, full, rb=rb, profile=profile, labels=new_labels)

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        full = await self._full(backend_ref)
        labels = (full.get("request") or {}).get("labels") or {}
        history = self._history(labels)
        current = self._info(full, None)
        entries: list[RevisionEntry] = []
        for entry in history:
            number = int(entry.get("revision", 0))
            if number == current.revision:
                status = current.backend_status or "UNKNOWN"
                values = current.values
            else:
                status, values = "SUPERSEDED", None
            description = str(entry.get("operation", ""))
            if entry.get("rolledBackTo") is not None:
                description += f" to revision {entry['rolledBackTo']}"
            description += (
                f" ({entry.get('rbName')}/{entry.get('rbVersion')}, profile {entry.get('profile')})"
            )
            at = entry.get("at")
            entries.append(
                RevisionEntry(
                    revision=number,
                    status=status,
                    package_version=entry.get("rbVersion"),
                    description=description,
                    deployed_at=parse_time(at),
                    values=values,
                )
            )
        return entries

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        await self._remove(backend_ref)

    async def _remove(self, instance_id: str) -> None:
        """Delete the instance, wait until the plugin dropped it (when ``wait``), then delete
        the per-revision profiles netweave made for it."""
        full = await self._full(instance_id)
        labels = (full.get("request") or {}).get("labels") or {}
        await self.client.request(
            "DELETE", f"/v1/instance/{_segment(instance_id)}", expected=(200, 202, 204)
        )
        _log.info("k8s plugin: instance %s delete accepted", instance_id)
        if not self.config.wait:
            return

        async def fetch() -> dict[str, Any] | None:
            try:
                return await self._full(instance_id)
            except NotFound:
                return None

        final = await self._poll(
            fetch,
            lambda full: full is None or "FAILED" in str(full.get("status") or ""),
        )
        if final is not None:
            status = str(final.get("status") or "")
            raise BackendError(
                f"k8s plugin could not delete instance {instance_id}: {status or 'still there'}",
                details={"backendRef": instance_id, "backendStatus": status or None},
            )
        for entry in self._history(labels):
            with contextlib.suppress(NetweaveError):
                await self._delete_profile(
                    str(entry.get("rbName")), str(entry.get("rbVersion")), str(entry.get("profile"))
                )


__all__ = ["K8sPluginBackend"]
