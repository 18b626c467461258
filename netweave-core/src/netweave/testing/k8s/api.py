"""The verbs of the API (create, get, list, update, patch, delete, watch) over the store.

The HTTP layer, the controllers and the Python facade all go through
:class:`ApiCore`, so every write gets the same server-side behaviour
(resourceVersion, generation, finalizers, validation, events).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import yaml

from netweave.testing.k8s import crds as crd_mod
from netweave.testing.k8s import managedfields as mf
from netweave.testing.k8s.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
    status_success,
)
from netweave.testing.k8s.patches import (
    Keyer,
    apply_merge,
    builtin_keyer,
    json_patch,
    merge_patch,
    schema_keyer,
    strategic_merge,
)
from netweave.testing.k8s.resources import Registry, Resource
from netweave.testing.k8s.selectors import (
    Requirement,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from netweave.testing.k8s.store import Event, StorageKey, Store
from netweave.testing.k8s.util import (
    JSONDict,
    clone,
    get_path,
    new_uid,
    now_rfc3339,
    random_suffix,
    set_path,
)
from netweave.testing.k8s.validation import (
    BuiltinValidator,
    Outcome,
    StructuralValidator,
    builtin_errors,
    custom_errors,
)

PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_APPLY_CBOR = "application/apply-patch+cbor"

# Write listeners get (resource, event type, object) after a commit.
Listener = Callable[[Resource, str, JSONDict], None]

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str = ""
    force: bool = False
    # Internal writes (controllers, fixtures) skip request validation and field ownership.
    internal: bool = False
    warnings: list[str] = field(default_factory=list)
    # Set by server-side apply: the applied configuration (ownership is "Apply").
    applied: JSONDict | None = None
    user_agent: str = ""

    def manager(self) -> str:
        return self.field_manager or mf.default_manager(self.user_agent)


@dataclass
class ListOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None


def _name_of(obj: JSONDict) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _spec_part(obj: JSONDict) -> JSONDict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ApiCore:
    def __init__(self, k8s_minor: str = "1.35", *, validate_builtin: bool = True) -> None:
        self.registry = Registry()
        self.store = Store()
        self.builtin = BuiltinValidator(k8s_minor)
        self.validate_builtin = validate_builtin
        self.listeners: list[Listener] = []
        # Field managers per object (storage key, namespace, name), for managedFields.
        self.ownership: dict[tuple[StorageKey, str, str], mf.Ownership] = {}
        self.logs: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
        # Containers with logs per Pod: a Pod's delete drops its logs without a scan of all.
        self._log_containers: dict[tuple[str, str], set[str]] = {}
        for ns in _SYSTEM_NAMESPACES:
            self.create(
                self.resource("", "v1", "namespaces"),
                "",
                {"metadata": {"name": ns}},
                WriteOptions(internal=True),
            )

    # --- lookup helpers -------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> Resource:
        res = self.registry.get(group, version, plural)
        if res is None:
            raise ApiError(404, "the server could not find the requested resource")
        return res

    def resource_for(self, api_version: str, kind: str) -> Resource:
        res = self.registry.by_kind(api_version, kind)
        if res is None:
            raise ApiError(404, f'no matches for kind "{kind}" in version "{api_version}"')
        return res

    def _present(self, res: Resource, obj: JSONDict) -> JSONDict:
        """The object as seen through ``res``'s version (no schema conversion)."""
        if obj.get("apiVersion") == res.api_version:
            return obj
        out = dict(obj)
        out["apiVersion"] = res.api_version
        return out

    def _notify(self, res: Resource, etype: str, obj: JSONDict) -> None:
        # Listeners (the controller queue) only enqueue, so calling them with the store
        # lock held is safe and keeps events in commit order.
        for listener in list(self.listeners):
            listener(res, etype, obj)

    # --- reads -----------------------------------------------------------------

    def get(self, res: Resource, ns: str, name: str) -> JSONDict:
        obj = self.store.get(res.storage_key, ns if res.namespaced else "", name)
        if obj is None:
            raise not_found(res.plural, res.group, name)
        return self._present(res, obj)

    def try_get(self, res: Resource, ns: str, name: str) -> JSONDict | None:
        obj = self.store.get(res.storage_key, ns if res.namespaced else "", name)
        return None if obj is None else self._present(res, obj)

    def list(self, res: Resource, ns: str | None, opts: ListOptions) -> JSONDict:
        labels = parse_label_selector(opts.label_selector)
        fields = parse_field_selector(opts.field_selector)
        after: tuple[str, str] | None = None
        if opts.continue_token:
            try:
                token = json.loads(base64.b64decode(opts.continue_token))
                after = (str(token["ns"]), str(token["name"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion"
                ) from exc
        scope = ns if res.namespaced else None
        if opts.limit and not labels and not fields:
            # No selector: a page is a bisect into the store's kept order (costs the page).
            with self.store.lock:
                page, remaining = self.store.page(res.storage_key, scope, after, opts.limit + 1)
                rv = self.store.rv
            matched = page
            remaining += len(page)
        else:
            with self.store.lock:
                items = self.store.items(res.storage_key, scope)
                rv = self.store.rv
            matched = [o for o in items if labels_match(labels, o) and fields_match(fields, o)]
            if after is not None:
                matched = [
                    o
                    for o in matched
                    if ((o["metadata"].get("namespace") or ""), o["metadata"]["name"]) > after
                ]
            remaining = len(matched)
        meta: JSONDict = {"resourceVersion": str(rv)}
        if opts.limit and remaining > opts.limit:
            last = matched[opts.limit - 1]["metadata"]
            token_obj = {"ns": last.get("namespace") or "", "name": last["name"], "rv": rv}
            meta["continue"] = base64.b64encode(json.dumps(token_obj).encode()).decode()
            meta["remainingItemCount"] = remaining - opts.limit
            matched = matched[: opts.limit]
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": [self._present(res, o) for o in matched],
        }

    # --- validation ----------------------------------------------------------------

    def _validate(
        self, res: Resource, obj: JSONDict, opts: WriteOptions, *, apply: bool = False
    ) -> None:
        if opts.internal:
            return
        name = _name_of(obj)
        if res.is_custom:
            validator = self._structural(res)
            outcome = validator.check(obj)
            if apply:
                self._apply_typed_errors(res, obj, outcome)
            opts.warnings += custom_errors(
                res.kind, res.group, res.api_version, name, outcome, opts.field_validation
            )
            return
        if res.kind == "CustomResourceDefinition":
            crd_mod.validate_crd(obj)
        if not self.validate_builtin:
            return
        outcome = self.builtin.check(obj, res.api_version, res.kind)
        if apply:
            self._apply_typed_errors(res, obj, outcome)
        opts.warnings += builtin_errors(
            obj, res.kind, res.api_version, name, res.group, outcome, opts.field_validation
        )

    def _apply_typed_errors(self, res: Resource, obj: JSONDict, outcome: Outcome) -> None:
        # A real apiserver converts an apply patch to its typed form first and answers
        # schema mismatches with a plain 500 (kubernetes/kubernetes#122480, #139253).
        problems = [f".{u}: field not declared in schema" for u in outcome.unknown]
        problems += [f".{p}: {m.split(':', 1)[0]}" for p, m in outcome.type_errors]
        problems += [f".{f}: {m}" for r, f, m in outcome.causes if r == "FieldValueTypeInvalid"]
        if problems:
            m = obj.get("metadata") or {}
            ns = m.get("namespace") or ""
            ident = f"{ns}/{m.get('name', '')}" if ns else str(m.get("name", ""))
            gvk = f"{res.api_version}, Kind={res.kind}"
            raise ApiError(
                500,
                f"failed to create typed patch object ({ident}; {gvk}): {problems[0]}",
                reason="",
            )

    def _structural(self, res: Resource) -> StructuralValidator:
        if res._validator is None:
            res._validator = StructuralValidator(res.schema)
        validator: StructuralValidator = res._validator
        return validator

    def keyer(self, res: Resource, strategic: bool) -> Keyer:
        if res.is_custom:
            return schema_keyer(res.schema)
        k = self.builtin.keyer(res.api_version, res.kind, strategic)
        return k or builtin_keyer

    # --- writes -----------------------------------------------------------------------

    def _check_namespace(self, res: Resource, ns: str, obj: JSONDict) -> None:
        m = obj.setdefault("metadata", {})
        if not isinstance(m, dict):
            raise bad_request("metadata must be an object")
        if not res.namespaced:
            m.pop("namespace", None)
            return
        body_ns = m.get("namespace")
        if body_ns and ns and body_ns != ns:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent "
                "on the request"
            )
        m["namespace"] = ns or body_ns or "default"

    def _require_namespace(self, res: Resource, obj: JSONDict) -> None:
        if not res.namespaced:
            return
        ns = obj["metadata"]["namespace"]
        nsobj = self.store.get(("", "namespaces"), "", ns)
        if nsobj is None:
            raise ApiError(
                404, f'namespaces "{ns}" not found', details={"name": ns, "kind": "namespaces"}
            )
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f'{res.qualified} "{obj["metadata"].get("name", "")}" is forbidden: '
                f"unable to create new content in namespace {ns} because it is being "
                "terminated",
            )

    def create(self, res: Resource, ns: str, body: JSONDict, opts: WriteOptions) -> JSONDict:
        obj = clone(body)
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was not a JSON object")
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        self._check_namespace(res, ns, obj)
        m = obj["metadata"]
        if not m.get("name"):
            if m.get("generateName"):
                m["name"] = str(m["generateName"]) + random_suffix()
            else:
                raise invalid(
                    res.kind,
                    res.group,
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
        self._validate(res, obj, opts)
        self._prepare_create(res, obj)
        with self.store.lock:
            self._require_namespace(res, obj)
            if self.store.get(res.storage_key, m.get("namespace") or "", m["name"]) is not None:
                raise already_exists(res.plural, res.group, m["name"])
            if res.kind == "CustomResourceDefinition" and not opts.dry_run:
                crd_mod.check_names_free(self, obj)
            if opts.dry_run:
                return self._present(res, obj)
            if not opts.internal:
                own = mf.Ownership()
                if opts.applied is not None:
                    own.apply(
                        opts.manager(),
                        "",
                        res.api_version,
                        obj,
                        opts.applied,
                        self.keyer(res, False),
                        True,
                    )
                else:
                    own.record_update(
                        opts.manager(), "", res.api_version, None, obj, self.keyer(res, False)
                    )
                self.ownership[(res.storage_key, m.get("namespace") or "", m["name"])] = own
                m["managedFields"] = mf.render(own.entries)
            m["resourceVersion"] = str(self.store.next_rv())
            self.store.put(res.storage_key, obj, "ADDED", None)
        if res.kind == "CustomResourceDefinition":
            crd_mod.established(self, obj)
            obj = self.store.get(res.storage_key, "", m["name"]) or obj
        self._notify(res, "ADDED", obj)
        return self._present(res, obj)

    def _prepare_create(self, res: Resource, obj: JSONDict) -> None:
        m = obj["metadata"]
        for k in (
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ):
            m.pop(k, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        if res.generation or res.is_custom:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        if res.status and res.kind != "Namespace":
            obj.pop("status", None)
        # The defaults the apiserver's registry strategies set on create.
        if res.kind == "Secret" and not res.group:
            _fold_string_data(obj)
            obj.setdefault("type", "Opaque")
        elif res.kind == "Namespace" and not res.group:
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif res.kind == "Service" and not res.group:
            self._default_service(obj)
        elif res.kind == "Pod" and not res.group:
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            spec = obj.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
        elif (
            res.group == "apps"
            and res.kind in ("Deployment", "StatefulSet", "ReplicaSet")
            and isinstance(obj.get("spec"), dict)
        ):
            obj["spec"].setdefault("replicas", 1)
        if res.kind == "CustomResourceDefinition":
            crd_mod.default_crd(obj)

    def _default_service(self, obj: JSONDict) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            # Every emulated service IP is 127.0.0.1: tests never use addresses other
            # than loopback, and nothing connects to a ClusterIP here anyway.
            ip = "127.0.0.1"
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        obj["status"] = {"loadBalancer": {}}

    def update(
        self,
        res: Resource,
        ns: str,
        name: str,
        body: JSONDict,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> JSONDict:
        obj = clone(body)
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was not a JSON object")
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        self._check_namespace(res, ns, obj)
        body_name = obj["metadata"].get("name")
        if body_name and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        if subresource is None:
            self._validate(res, obj, opts)
        with self.store.lock:
            cur = self.store.get(res.storage_key, ns if res.namespaced else "", name)
            if cur is None:
                raise not_found(res.plural, res.group, name)
            want_rv = obj["metadata"].get("resourceVersion")
            if want_rv and want_rv != cur["metadata"].get("resourceVersion"):
                raise conflict(res.plural, res.group, name)
            return self._commit_update(res, cur, obj, opts, subresource)

    def _commit_update(
        self,
        res: Resource,
        cur: JSONDict,
        new: JSONDict,
        opts: WriteOptions,
        subresource: str | None,
    ) -> JSONDict:
        """Merge server-owned fields into ``new`` and store it (store lock held)."""
        if subresource == "finalize":
            # namespaces/finalize changes spec.finalizers only (the namespace controller's job).
            merged = clone(cur)
            merged["spec"] = dict(merged.get("spec") or {})
            merged["spec"]["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
            new = merged
        elif subresource == "status":
            merged = clone(cur)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            if res.status and res.kind != "Namespace":
                if "status" in cur:
                    new["status"] = clone(cur["status"])
                else:
                    new.pop("status", None)
            elif res.kind == "Namespace":
                new["status"] = clone(cur.get("status") or {})
                new["spec"] = clone(cur.get("spec") or {})
        m = new["metadata"]
        cm = cur["metadata"]
        for k in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
        ):
            if k in cm:
                m[k] = cm[k]
            else:
                m.pop(k, None)
        if res.kind == "Secret" and not res.group:
            _fold_string_data(new)
            new.setdefault("type", cur.get("type", "Opaque"))
        if res.kind == "Service" and not res.group and isinstance(new.get("spec"), dict):
            cs = cur.get("spec") or {}
            for k in ("clusterIP", "clusterIPs"):
                if k in cs and not new["spec"].get(k):
                    new["spec"][k] = cs[k]
        if "generation" in cm:
            gen = int(cm["generation"])
            if subresource is None and _spec_part(new) != _spec_part(cur):
                gen += 1
            m["generation"] = gen
        m["resourceVersion"] = cm.get("resourceVersion")
        if res.kind == "CustomResourceDefinition" and subresource is None:
            crd_mod.default_crd(new)
        self._track_fields(res, cur, new, opts, subresource)
        if new == cur or _same_but_times(new, cur):
            return self._present(res, cur)  # a no-op write does not bump resourceVersion
        if opts.dry_run:
            return self._present(res, new)
        if cm.get("deletionTimestamp") and not m.get("finalizers"):
            self._remove(res, new)
            return self._present(res, new)
        m["resourceVersion"] = str(self.store.next_rv())
        self.store.put(res.storage_key, new, "MODIFIED", cur)
        if res.kind == "CustomResourceDefinition" and subresource is None:
            crd_mod.established(self, new)
            new = self.store.get(res.storage_key, "", m["name"]) or new
        self._notify(res, "MODIFIED", new)
        return self._present(res, new)

    def _track_fields(
        self,
        res: Resource,
        cur: JSONDict,
        new: JSONDict,
        opts: WriteOptions,
        subresource: str | None,
    ) -> None:
        """Update field ownership and ``metadata.managedFields`` (store lock held)."""
        m, cm = new["metadata"], cur["metadata"]
        key = (res.storage_key, cm.get("namespace") or "", cm["name"])
        sent = m.get("managedFields")
        if opts.applied is not None and not opts.internal:
            return  # server-side apply rendered managedFields already
        if opts.internal or subresource not in (None, "status"):
            if "managedFields" in cm:
                m["managedFields"] = cm["managedFields"]
            else:
                m.pop("managedFields", None)
            return
        own = self.ownership.get(key) or mf.Ownership()
        if opts.dry_run:
            own = copy.deepcopy(own)
        if sent == []:
            own.entries = []  # an explicit empty list resets ownership, as on a real server
        own.record_update(
            opts.manager(), subresource or "", res.api_version, cur, new, self.keyer(res, False)
        )
        if not opts.dry_run:
            self.ownership[key] = own
        rendered = mf.render(own.entries)
        if rendered:
            m["managedFields"] = rendered
        else:
            m.pop("managedFields", None)

    def patch(
        self,
        res: Resource,
        ns: str,
        name: str,
        patch_type: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> tuple[JSONDict, bool]:
        """Patch an object; return (object, created). Only apply creates."""
        if patch_type in (PATCH_APPLY, PATCH_APPLY_CBOR):
            return self._apply(res, ns, name, raw, opts, subresource)
        try:
            patch = json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        if patch_type == PATCH_STRATEGIC and res.is_custom:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if patch_type not in (PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC):
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{PATCH_JSON}, {PATCH_MERGE}, {PATCH_APPLY}, {PATCH_STRATEGIC}",
            )
        if patch_type == PATCH_JSON and not isinstance(patch, list):
            json_patch(None, patch)  # raises the apiserver's 400
        if patch_type != PATCH_JSON and not isinstance(patch, dict):
            raise bad_request(
                "json: cannot unmarshal into Go value of type map[string]interface {}"
            )
        with self.store.lock:
            cur = self.store.get(res.storage_key, ns if res.namespaced else "", name)
            if cur is None:
                raise not_found(res.plural, res.group, name)
            view = self._present(res, cur)
            if subresource == "scale":
                view = self.scale_of(res, view)
            if patch_type == PATCH_JSON:
                new = json_patch(view, patch)
            elif patch_type == PATCH_MERGE:
                new = merge_patch(view, patch)
            else:
                new = strategic_merge(view, patch, self.keyer(res, True))
            if not isinstance(new, dict):
                raise ApiError(422, "patch did not produce an object")
            if subresource == "scale":
                return self._set_scale(res, cur, new, opts), False
            new.setdefault("metadata", {})["name"] = name
            if res.namespaced:
                new["metadata"]["namespace"] = cur["metadata"].get("namespace")
            want_rv = (
                (patch.get("metadata") or {}).get("resourceVersion")
                if isinstance(patch, dict)
                else None
            )
            if want_rv and want_rv != cur["metadata"].get("resourceVersion"):
                raise conflict(res.plural, res.group, name)
            if subresource is None:
                new["apiVersion"] = res.api_version
                new["kind"] = res.kind
                self._validate(res, new, opts)
            return self._commit_update(res, cur, new, opts, subresource), False

    def _apply(
        self,
        res: Resource,
        ns: str,
        name: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str | None,
    ) -> tuple[JSONDict, bool]:
        try:
            # A safe loader (CSafeLoader when available): same guarantees as yaml.safe_load.
            text = raw.decode("utf-8")
            applied = yaml.load(text, Loader=_YAML_LOADER) if raw else None  # noqa: S506
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(applied, dict):
            raise bad_request("error decoding YAML: the apply patch must be a YAML or JSON object")
        if not opts.field_manager:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [
                    (
                        "FieldValueRequired",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    )
                ],
            )
        if applied.get("apiVersion") != res.api_version:
            raise bad_request(
                "Incorrect version specified in apply patch. Specified patch version: "
                f"{applied.get('apiVersion', '')}, expected: {res.api_version}"
            )
        if applied.get("kind") != res.kind:
            raise bad_request(
                "Incorrect kind specified in apply patch. Specified patch kind: "
                f"{applied.get('kind', '')}, expected: {res.kind}"
            )
        meta_in = applied.setdefault("metadata", {})
        if meta_in.get("name") and meta_in["name"] != name:
            raise bad_request(
                f"the name of the object ({meta_in['name']}) does not match the name on "
                f"the URL ({name})"
            )
        meta_in["name"] = name
        self._check_namespace(res, ns, applied)
        if subresource is None:
            # Type-check the applied configuration itself, as the typed conversion does.
            probe = clone(applied)
            self._validate(
                res,
                probe,
                WriteOptions(field_validation="Ignore", internal=opts.internal),
                apply=True,
            )
        if (applied.get("metadata") or {}).get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        skey = res.storage_key
        keyer = self.keyer(res, False)
        opts.applied = applied
        with self.store.lock:
            cur = self.store.get(skey, ns if res.namespaced else "", name)
            if cur is None:
                if subresource is not None:
                    raise not_found(res.plural, res.group, name)
                return self.create(res, ns, applied, opts), True
            live = clone(self._present(res, cur))
            okey = (skey, cur["metadata"].get("namespace") or "", name)
            own = self.ownership.get(okey) or mf.Ownership()
            if opts.dry_run or opts.internal:
                own = copy.deepcopy(own)
            drop = own.apply(
                opts.manager(), subresource or "", res.api_version, live, applied, keyer, opts.force
            )
            if not (opts.dry_run or opts.internal):
                self.ownership[okey] = own
            # Fields this manager stopped applying and nobody else owns go away.
            for path in sorted(drop, key=len, reverse=True):
                mf.remove_path(live, path)
            live["metadata"]["managedFields"] = mf.render(own.entries)
            if subresource == "status":
                new = clone(live)
                new["status"] = apply_merge(
                    live.get("status") or {}, applied.get("status") or {}, keyer, ("status",)
                )
            else:
                new = apply_merge(live, applied, keyer)
                new["metadata"]["resourceVersion"] = cur["metadata"].get("resourceVersion")
                self._validate(res, new, opts)
            return self._commit_update(res, cur, new, opts, subresource), False

    def delete(
        self,
        res: Resource,
        ns: str,
        name: str,
        options: JSONDict | None = None,
        dry_run: bool = False,
    ) -> JSONDict:
        options = options or {}
        with self.store.lock:
            cur = self.store.get(res.storage_key, ns if res.namespaced else "", name)
            if cur is None:
                raise not_found(res.plural, res.group, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != cur["metadata"].get("uid"):
                raise conflict(
                    res.plural,
                    res.group,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {cur['metadata'].get('uid')}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"].get(
                "resourceVersion"
            ):
                raise conflict(
                    res.plural,
                    res.group,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{cur['metadata'].get('resourceVersion')}",
                )
            if dry_run:
                return self._present(res, cur)
            orphan = (
                options.get("propagationPolicy") == "Orphan"
                or options.get("orphanDependents") is True
            )
            if res.kind == "Namespace" and not res.group:
                return self._delete_namespace(res, cur)
            if cur["metadata"].get("finalizers"):
                if cur["metadata"].get("deletionTimestamp"):
                    return self._present(res, cur)
                new = clone(cur)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"]["resourceVersion"] = str(self.store.next_rv())
                self.store.put(res.storage_key, new, "MODIFIED", cur)
                self._notify(res, "MODIFIED", new)
                return self._present(res, new)
            final = self._remove(res, cur, orphan=orphan)
        details: JSONDict = {"name": name, "kind": res.plural, "uid": cur["metadata"].get("uid")}
        if res.group:
            details["group"] = res.group
        if res.kind in ("Pod", "CustomResourceDefinition") or res.is_custom:
            # These registries return the deleted object rather than a Status.
            return self._present(res, final)
        return status_success({"details": details})

    def _remove(self, res: Resource, obj: JSONDict, orphan: bool = False) -> JSONDict:
        """Remove an object for good: event, owner GC, namespace and CRD cascades."""
        m = obj["metadata"]
        ns = m.get("namespace") or ""
        with self.store.lock:
            rv = self.store.next_rv()
            self.store.delete(res.storage_key, obj, rv)
            self.ownership.pop((res.storage_key, ns, m["name"]), None)
            if res.kind == "Pod" and not res.group:
                for container in self._log_containers.pop((ns, m["name"]), set()):
                    self.logs.pop((ns, m["name"], container), None)
        final = dict(obj)
        final["metadata"] = dict(m, resourceVersion=str(rv))
        self._notify(res, "DELETED", final)
        if not orphan and m.get("uid"):
            self._collect_dependents(str(m["uid"]), ns)
        if res.kind == "CustomResourceDefinition":
            crd_mod.removed(self, obj)
        if ns:
            self._maybe_finish_namespace(ns)
        return final

    def _collect_dependents(self, uid: str, ns: str) -> None:
        # Background cascading deletion of objects owned by ``uid``, read from the store's
        # owner index (costs the dependents, not every stored object).
        for skey, obj in self.store.owned(uid):
            m = obj["metadata"]
            res = self.registry.for_storage(skey)
            if res is None or (res.namespaced and (m.get("namespace") or "") != ns):
                continue
            with contextlib.suppress(ApiError):  # already gone
                self.delete(res, m.get("namespace") or "", m["name"])

    def _delete_namespace(self, res: Resource, cur: JSONDict) -> JSONDict:
        ns = cur["metadata"]["name"]
        new = clone(cur)
        if not cur["metadata"].get("deletionTimestamp"):
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            new["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(res.storage_key, new, "MODIFIED", cur)
            self._notify(res, "MODIFIED", new)
        for skey in self.store.all_keys():
            r = self.registry.for_storage(skey)
            if r is None or not r.namespaced:
                continue
            for obj in self.store.items(skey, ns):
                with contextlib.suppress(ApiError):
                    self.delete(r, ns, obj["metadata"]["name"])
        self._maybe_finish_namespace(ns)
        return self._present(res, new)

    def _maybe_finish_namespace(self, ns: str) -> None:
        nsres = self.registry.get("", "v1", "namespaces")
        if nsres is None:
            return
        with self.store.lock:
            nsobj = self.store.get(("", "namespaces"), "", ns)
            if nsobj is None or not nsobj["metadata"].get("deletionTimestamp"):
                return
            for skey in self.store.all_keys():
                r = self.registry.for_storage(skey)
                if r is not None and r.namespaced and self.store.count(skey, ns):
                    return
            self._remove(nsres, nsobj)

    def delete_collection(
        self,
        res: Resource,
        ns: str | None,
        opts: ListOptions,
        options: JSONDict | None,
        dry_run: bool,
    ) -> JSONDict:
        listed = self.list(res, ns, opts)
        for obj in listed["items"]:
            with contextlib.suppress(ApiError):
                self.delete(
                    res,
                    obj["metadata"].get("namespace") or "",
                    obj["metadata"]["name"],
                    options,
                    dry_run,
                )
        return listed

    # --- scale subresource ---------------------------------------------------------

    def scale_of(self, res: Resource, obj: JSONDict) -> JSONDict:
        if res.scale is None:
            raise ApiError(404, "the server could not find the requested resource")
        paths = res.scale
        spec_r = get_path(obj, paths.spec_replicas.split("."))
        status_r = get_path(obj, paths.status_replicas.split("."))
        status: JSONDict = {"replicas": int(status_r or 0)}
        if paths.label_selector:
            sel = get_path(obj, paths.label_selector.split("."))
            if not res.is_custom and isinstance(obj.get("spec"), dict):
                from netweave.testing.k8s.selectors import selector_string

                sel = selector_string(obj["spec"].get("selector"))
            if sel:
                status["selector"] = sel
        m = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": int(spec_r or 0)},
            "status": status,
        }

    def get_scale(self, res: Resource, ns: str, name: str) -> JSONDict:
        return self.scale_of(res, self.get(res, ns, name))

    def update_scale(
        self, res: Resource, ns: str, name: str, body: JSONDict, opts: WriteOptions
    ) -> JSONDict:
        with self.store.lock:
            cur = self.store.get(res.storage_key, ns if res.namespaced else "", name)
            if cur is None:
                raise not_found(res.plural, res.group, name)
            want_rv = (body.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != cur["metadata"].get("resourceVersion"):
                raise conflict(res.plural, res.group, name)
            return self._set_scale(res, cur, body, opts)

    def _set_scale(
        self, res: Resource, cur: JSONDict, scale: JSONDict, opts: WriteOptions
    ) -> JSONDict:
        if res.scale is None:
            raise ApiError(404, "the server could not find the requested resource")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                cur["metadata"]["name"],
                [
                    (
                        "FieldValueInvalid",
                        "spec.replicas",
                        f"Invalid value: {json.dumps(replicas)}: must be greater than or "
                        "equal to 0",
                    )
                ],
            )
        new = clone(cur)
        set_path(new, res.scale.spec_replicas.split("."), replicas)
        stored = self._commit_update(res, cur, new, opts, None)
        return self.scale_of(res, stored)

    # --- watch ----------------------------------------------------------------------------

    def watch(
        self,
        res: Resource,
        ns: str | None,
        opts: ListOptions,
        *,
        send_initial: bool | None,
        allow_bookmarks: bool,
        timeout: float,
        stop: threading.Event,
        bookmark_interval: float = 15.0,
    ) -> Generator[JSONDict | None, None, None]:
        """Yield watch events; ``None`` on idle ticks (at most every 0.5 s).

        Idle ticks let the HTTP layer notice clients that went away.
        """
        labels = parse_label_selector(opts.label_selector)
        fields = parse_field_selector(opts.field_selector)
        skey = res.storage_key
        scoped_ns = ns if res.namespaced else None
        deadline = time.monotonic() + timeout
        rv_param = opts.resource_version or ""
        initial: list[JSONDict] = []
        with self.store.lock:
            want_initial = send_initial if send_initial is not None else rv_param in ("", "0")
            if want_initial:
                initial = self.store.items(skey, scoped_ns)
                last = self.store.rv
            else:
                try:
                    last = int(rv_param)
                except ValueError as exc:
                    raise bad_request(f'invalid resource version: "{rv_param}"') from exc
                if last < self.store.oldest_rv:
                    gone = ApiError(
                        410,
                        f"too old resource version: {last} ({self.store.oldest_rv})",
                        reason="Expired",
                    )
                    yield {"type": "ERROR", "object": gone.status()}
                    return
        for obj in initial:
            if labels_match(labels, obj) and fields_match(fields, obj):
                yield {"type": "ADDED", "object": self._present(res, obj)}
        if send_initial and allow_bookmarks:
            # client-go's watch-list (and Helm's watcher) waits for this marker.
            yield self._bookmark(res, last, initial_end=True)
        next_bookmark = time.monotonic() + bookmark_interval
        # Bounded: each pass waits at most until the deadline, which the caller caps.
        while not stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            with self.store.lock:
                seen = self.store.rv
            batch = list(self.store.events_after(last, skey))
            for ev in batch:
                last = ev.rv
                out = self._filter_event(ev, scoped_ns, labels, fields)
                if out is not None:
                    yield {"type": out[0], "object": self._present(res, out[1])}
            if batch:
                continue
            with self.store.cond:
                if self.store.closed:
                    return
                if self.store.rv == seen:
                    wait = min(deadline - now, 0.5, max(next_bookmark - now, 0.01))
                    self.store.cond.wait(timeout=wait)
            yield None
            if allow_bookmarks and time.monotonic() >= next_bookmark:
                next_bookmark = time.monotonic() + bookmark_interval
                # Events of other kinds moved the clock; a bookmark lets clients resume there.
                last = max(last, seen)
                yield self._bookmark(res, last)

    @staticmethod
    def _filter_event(
        ev: Event,
        ns: str | None,
        labels: builtins.list[Requirement],
        fields: builtins.list[tuple[builtins.list[str], str, str]],
    ) -> tuple[str, JSONDict] | None:
        if ns is not None and (ev.obj.get("metadata") or {}).get("namespace") != ns:
            return None
        now_ok = labels_match(labels, ev.obj) and fields_match(fields, ev.obj)
        before_ok = (
            ev.prev is not None and labels_match(labels, ev.prev) and fields_match(fields, ev.prev)
        )
        if ev.type == "MODIFIED":
            if now_ok and before_ok:
                return "MODIFIED", ev.obj
            if now_ok:
                return "ADDED", ev.obj
            if before_ok:
                return "DELETED", ev.obj
            return None
        return (ev.type, ev.obj) if now_ok else None

    @staticmethod
    def _bookmark(res: Resource, rv: int, initial_end: bool = False) -> JSONDict:
        meta: JSONDict = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {
            "type": "BOOKMARK",
            "object": {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta},
        }

    # --- pod logs -------------------------------------------------------------------------

    def append_log(
        self, ns: str, pod: str, container: str, line: str, when: float | None = None
    ) -> None:
        with self.store.cond:
            self._log_containers.setdefault((ns, pod), set()).add(container)
            self.logs.setdefault((ns, pod, container), []).append(
                (time.time() if when is None else when, line)
            )
            self.store.cond.notify_all()  # wakes followed log streams

    def log_container(self, ns: str, pod: str, container: str | None) -> str:
        """The container a log request is about (400 when ambiguous or unknown)."""
        res = self.resource("", "v1", "pods")
        obj = self.get(res, ns, pod)
        spec = obj.get("spec") or {}
        names = [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]
        all_names = names + [
            str(c.get("name")) for c in spec.get("initContainers") or [] if isinstance(c, dict)
        ]
        if container is None:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {pod}, "
                    f"choose one of: [{' '.join(names)}]"
                )
            return names[0]
        if container not in all_names:
            raise bad_request(f"container {container} is not valid for pod {pod}")
        return container

    def log_entries(self, ns: str, pod: str, container: str) -> builtins.list[tuple[float, str]]:
        with self.store.lock:
            return list(self.logs.get((ns, pod, container), []))

    def read_log(
        self,
        ns: str,
        pod: str,
        container: str | None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> str:
        container = self.log_container(ns, pod, container)
        entries = self.log_entries(ns, pod, container)
        if since_seconds is not None:
            cutoff = time.time() - since_seconds
            entries = [e for e in entries if e[0] >= cutoff]
        if tail_lines is not None:
            entries = entries[-tail_lines:] if tail_lines > 0 else []
        text = "".join(format_log_line(ts, line, timestamps) for ts, line in entries)
        if limit_bytes is not None:
            text = text.encode()[:limit_bytes].decode("utf-8", "ignore")
        return text

    def pod_finished(self, ns: str, pod: str) -> bool:
        """True when the Pod is gone or its containers have exited (a followed log ends)."""
        obj = self.store.get(("", "pods"), ns, pod)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return True
        return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def format_log_line(ts: float, line: str, timestamps: bool) -> str:
    if not timestamps:
        return line + "\n"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e9):09d}Z"
    return f"{stamp} {line}\n"


def _fold_string_data(obj: JSONDict) -> None:
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict) and sd:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = {}
            obj["data"] = data
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _same_but_times(a: JSONDict, b: JSONDict) -> bool:
    """Equal except for managedFields timestamps (the apiserver treats that as a no-op)."""

    def strip(o: JSONDict) -> JSONDict:
        out = dict(o)
        m = dict(out.get("metadata") or {})
        m["managedFields"] = [
            {k: v for k, v in e.items() if k != "time"} for e in m.get("managedFields") or []
        ]
        out["metadata"] = m
        return out

    return strip(a) == strip(b)


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
