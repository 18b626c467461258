"""``{apiRoot}/vnflcm/v2`` and ``/vnflcm/v1``: ETSI GS NFV-SOL 003 VNF lifecycle management,
a second face over the native services (HTTP → here → ``VnfLcmService`` → the deployment and
operation services → the one operation runner → the adapter).

Both major versions come from one implementation (:func:`vnflcm_controller`); they differ in
representation only (``render``). Scopes are the native face's: ``o2dms:read`` for GET,
``o2dms:write`` for changes, ``o2dms:admin`` for ``fail`` and ``cancel``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import Parameter, PathParameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
)

from netweave.api.auth import SCOPE_ADMIN, scope_header
from netweave.api.common import JSON_BODY, JsonBytes
from netweave.api.etsi import render, sol013
from netweave.api.etsi.models import (
    CancelMode,
    ChangeCurrentVnfPkgRequest,
    CreateVnfRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
    VnfInfoModificationRequest,
)
from netweave.errors import Conflict, InvalidInput, NotFound, Unprocessable
from netweave.models.subscriptions import HTTP_URL_PATTERN
from netweave.services import Services
from netweave.services.vnflcm import OpOccView, VnfLcmService

JSON = "application/json"
#: The API versions served (SOL003 V3.7.1 → vnflcm 2.3.0; SOL003 V2.6.1 → vnflcm 1.3.0).
API_VERSIONS = {2: "2.3.0", 1: "1.3.0"}
#: Items per page of a list (SOL013 paging alternative 2).
PAGE_SIZE = 100
#: Rows read per batch while filling a filtered page.
_SCAN_BATCH = 200
_encoder = msgspec.json.Encoder()

VnfInstanceIdParam = Annotated[
    str, PathParameter(name="vnfInstanceId", min_length=1, max_length=64)
]
OpOccIdParam = Annotated[str, PathParameter(name="vnfLcmOpOccId", min_length=1, max_length=64)]

# SOL013's query parameters of every list (filter, attribute selectors, paging), declared once.
FilterQuery = Annotated[str | None, Parameter(query="filter", required=False)]
AllFieldsQuery = Annotated[str | None, Parameter(query="all_fields", required=False)]
FieldsQuery = Annotated[str | None, Parameter(query="fields", required=False)]
ExcludeFieldsQuery = Annotated[str | None, Parameter(query="exclude_fields", required=False)]
ExcludeDefaultQuery = Annotated[str | None, Parameter(query="exclude_default", required=False)]
MarkerQuery = Annotated[str | None, Parameter(query="nextpage_opaque_marker", required=False)]
_SELECTOR_DOC = {
    "filter": "SOL013 attribute-based filter, e.g. (eq,instantiationState,INSTANTIATED)",
    "all_fields": "Include every attribute (a flag: no value)",
    "fields": "Comma-separated complex attributes to include beyond the defaults",
    "exclude_fields": "Comma-separated attributes to leave out",
    "exclude_default": "Leave out the default exclusion list (a flag: no value)",
    "nextpage_opaque_marker": "The marker of the next page, only as a Link rel=next header "
    "gave it (any other value is a 400)",
}


def json_response(
    body: Any, status: int = HTTP_200_OK, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=_encoder.encode(body), status_code=status, media_type=JSON, headers=headers
    )


def accepted(base: str, op_occ_id: str) -> Response[bytes]:
    return Response(
        content=b"",
        status_code=HTTP_202_ACCEPTED,
        headers={"Location": f"{base}/vnf_lcm_op_occs/{op_occ_id}"},
    )


def api_root(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


#: Where each deployment manager (adapter instance) has its own apiRoot: the same face,
#: restricted to that instance's packages, VNF instances and occurrences.
MANAGER_ROOT = "/deploymentManagers/{deploymentManagerId:str}"
MANAGER_PARAM = "deploymentManagerId"


def manager_of(request: Request[Any, Any, Any]) -> str | None:
    """The deployment manager whose apiRoot was called (``None``: the gateway's root)."""
    value = request.path_params.get(MANAGER_PARAM)
    return str(value) if value is not None else None


def manager_root(base: str, name: str) -> str:
    return f"{base}/deploymentManagers/{quote(name, safe='')}"


def face_root(request: Request[Any, Any, Any]) -> str:
    """The apiRoot the client called: the gateway's root or a deployment manager's."""
    name = manager_of(request)
    return api_root(request) if name is None else manager_root(api_root(request), name)


async def check_manager(request: Request[Any, Any, Any], services: Services) -> None:
    """On a deployment manager's apiRoot, what the path names must belong to that manager:
    anything else is not found there (as an unknown id is)."""
    name = manager_of(request)
    if name is None:
        return
    if name not in services.registry:
        raise NotFound(f"deployment manager {name!r} not found", details={MANAGER_PARAM: name})
    lcm = service(services)
    params = request.path_params
    if "vnfInstanceId" in params:
        instance_id = str(params["vnfInstanceId"])
        if await lcm.adapter_of(instance_id) != name:
            raise NotFound(
                f"VNF instance {instance_id!r} not found", details={"vnfInstanceId": instance_id}
            )
    if "vnfLcmOpOccId" in params:
        op_occ_id = str(params["vnfLcmOpOccId"])
        if await lcm.adapter_of_op_occ(op_occ_id) != name:
            raise NotFound(
                f"VNF LCM operation occurrence {op_occ_id!r} not found",
                details={"vnfLcmOpOccId": op_occ_id},
            )


def service(services: Services) -> VnfLcmService:
    assert services.vnflcm is not None
    return services.vnflcm


def _query(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    query: dict[str, str | None] = {}
    for key, value in request.query_params.multi_items():
        if key in query:
            raise InvalidInput(f"query parameter {key!r} is given more than once",
                               details={"field": key})  # fmt: skip
        query[key] = value
    unknown = set(query) - set(_SELECTOR_DOC)
    if unknown:
        raise InvalidInput(
            f"unknown query parameter(s) {sorted(unknown)}", details={"field": sorted(unknown)[0]}
        )
    return query


def _etag(version: int) -> str:
    return f'"{version}"'


#: A page one joined read answers exactly (the JSON body, whether more follow, the last item's
#: key), or None when the filter or selector needs the full representation.
ExactPage = Callable[
    [list[sol013.Term], sol013.Selector, Any],
    Awaitable[tuple[bytes, bool, Any] | None],
]


async def _page(
    request: Request[Any, Any, Any],
    fetch: Callable[[Any, int], Awaitable[list[Any]]],
    key: Callable[[Any], Any],
    rendered: Callable[[list[Any]], Awaitable[list[dict[str, Any] | None]]],
    attributes: frozenset[str],
    default_excluded: tuple[str, ...],
    required: frozenset[str],
    fetch_for: Callable[
        [list[sol013.Term], sol013.Selector], Callable[[Any, int], Awaitable[list[Any]]]
    ]
    | None = None,
    exact: ExactPage | None = None,
) -> Response[bytes]:
    """A SOL013 list: filter on the full representation, select attributes, keyset paging by
    marker. ``fetch_for``: the read for the filter's terms and the selector, pre-filtering in
    SQL what columns can (a superset: every row is still checked exactly) and reading only
    what the page renders, instead of ``fetch``. ``exact``: tried first; a page SQL filters
    exactly and that is rendered without the full representation."""
    query = _query(request)
    terms = sol013.parse_filter(query.get("filter"), attributes)
    selector = sol013.parse_selector(query, attributes, default_excluded, required)
    after = sol013.decode_marker(query.get("nextpage_opaque_marker"))
    answered = await exact(terms, selector, after) if exact is not None else None
    body: bytes
    if answered is not None:
        body, more, last_key = answered
    else:
        items, more, last_key = await _scan(
            fetch_for(terms, selector) if fetch_for is not None else fetch,
            key,
            rendered,
            terms,
            selector,
            after,
        )
        body = _encoder.encode(items)
    headers = {}
    if more and last_key is not None:
        marker = sol013.encode_marker(*last_key)
        # The path keeps a manager's root; as ``request.url.path`` is, without building the URL.
        path = request.scope.get("root_path", "") + request.scope["path"]
        url = f"{api_root(request)}{path}"
        headers["Link"] = sol013.next_link(url, query, marker)
    return JsonBytes(body, headers=headers)


async def _scan(
    fetch: Callable[[Any, int], Awaitable[list[Any]]],
    key: Callable[[Any], Any],
    rendered: Callable[[list[Any]], Awaitable[list[dict[str, Any] | None]]],
    terms: list[sol013.Term],
    selector: sol013.Selector,
    after: Any,
) -> tuple[list[dict[str, Any]], bool, Any]:
    """Rows read in batches, each rendered and checked against the filter in full."""
    items: list[dict[str, Any]] = []
    more = False
    last: Any = None
    # The first read asks for one page and one more row (enough when SQL filtered exactly);
    # later reads scan in batches.
    limit = PAGE_SIZE + 1
    while True:
        batch = await fetch(after, limit)
        if not batch:
            break
        for record, body in zip(batch, await rendered(batch), strict=True):
            if len(items) == PAGE_SIZE:
                more = True
                break
            last = record
            # None: not on the deployment manager whose apiRoot was called.
            if body is not None and sol013.matches(body, terms):
                items.append(sol013.select_fields(body, selector))
        if more or len(batch) < limit:
            break
        after = key(batch[-1])
        limit = _SCAN_BATCH
    return items, more, key(last) if last is not None else None


#: A kept list item: its JSON and its row's paging key (created_at, id).
_Kept = tuple[bytes, tuple[Any, ...]]


class _Fragments:
    """Rendered list items (their JSON), kept by everything they are rendered from: a group per
    (apiRoot, version, dropped attributes, vnfdId, package values), in it each item by the
    stamp of the row it was rendered from (``StampPage``: a changed instance has a new stamp,
    so its old item is no longer found). A page whose stamps are all kept is a join of kept
    bytes. Bounded: the apiRoot comes from the request's Host."""

    __slots__ = ("count", "groups")

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], dict[str, _Kept]] = {}
        self.count = 0

    def group(self, key: tuple[Any, ...]) -> dict[str, _Kept]:
        kept = self.groups.get(key)
        if kept is None:
            if len(self.groups) >= _FRAGMENT_GROUPS:
                self.groups.clear()
                self.count = 0
            kept = self.groups[key] = {}
        return kept

    def add(self, kept: dict[str, _Kept], stamp: str, entry: _Kept) -> None:
        if self.count >= _FRAGMENTS_KEPT:
            for group in self.groups.values():
                group.clear()  # the groups stay: a page holds on to its own
            self.count = 0
        kept[stamp] = entry
        self.count += 1


_FRAGMENT_GROUPS = 256
_FRAGMENTS_KEPT = 20_000
_FRAGMENTS = _Fragments()

#: Whether a list whose filter SQL answers exactly and whose selector keeps only plain
#: attributes is read as one joined page (the common path); tests turn it off to compare.
SUMMARY_PAGES = True


async def _summary_page(
    lcm: VnfLcmService,
    base: str,
    major: int,
    manager: str | None,
    terms: list[sol013.Term],
    selector: sol013.Selector,
    after: Any,
) -> tuple[bytes, bool, Any] | None:
    """A page of VNF instances from joined reads, every filter term evaluated by SQL and no
    complex attribute rendered; None when the filter or selector needs more.

    First the page's stamps: when each names a kept item, the page is those items. Otherwise
    the page is read in full (one statement: what it answers is one state of the store) and
    the items it lacks rendered."""
    if not SUMMARY_PAGES:
        return None
    where = sol013.exact_terms(terms, render.VNF_INSTANCE_EXACT)
    dropped = render.summary_dropped(selector)
    if where is None or dropped is None:
        return None
    stamped = await lcm.summary_stamps(after, PAGE_SIZE, where, manager)
    groups = {
        vnfd_id: _FRAGMENTS.group((base, major, dropped, vnfd_id, package))
        for vnfd_id, package in stamped.packages.items()
    }
    kept: list[_Kept] = []
    for stamp, vnfd_id in stamped.stamps:
        entry = groups[vnfd_id].get(stamp)
        if entry is None:
            break
        kept.append(entry)
    else:
        last = kept[-1][1] if stamped.more and kept else None
        return b"[" + b",".join([entry[0] for entry in kept]) + b"]", stamped.more, last
    page = await lcm.summary_page(after, PAGE_SIZE, where, manager)
    parts: list[bytes] = []
    for row in page.rows:
        stamp = page.stamp(row)
        group = _FRAGMENTS.group((base, major, dropped, row[3], page.packages[row[3]]))
        entry = group.get(stamp)
        if entry is None:
            item = _encoder.encode(
                render.render_summary((*row[:6], *page.packages[row[3]]), base, major, dropped)
            )
            entry = (item, page.key(row))
            _FRAGMENTS.add(group, stamp, entry)
        parts.append(entry[0])
    return b"[" + b",".join(parts) + b"]", page.more, page.last


def header_check(major: int) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """The ``before_request`` of every ``/vnflcm/v{major}`` controller: SOL013's Version and
    Accept rules, and a deployment manager's apiRoot restricted to what is its own."""
    supported = API_VERSIONS[major]

    async def check_headers(request: Request[Any, Any, Any]) -> None:
        if request.method == "OPTIONS":
            return  # an OPTIONS answer needs no version
        # From the scope: a list page builds no ``Headers`` for these two values.
        sol013.check_version(scope_header(request.scope, b"version"), major, supported)
        accept = scope_header(request.scope, b"accept")
        if not sol013.accepts_json(accept):
            raise sol013.NotAcceptable(
                f"this API answers application/json, not {accept}", details={"header": "Accept"}
            )
        await check_manager(request, request.app.state.services)

    return check_headers


def vnflcm_controller(major: int) -> type[Controller]:
    """The controller of ``/vnflcm/v{major}``."""
    prefix = f"/vnflcm/v{major}"
    check_headers = header_check(major)

    def base_of(request: Request[Any, Any, Any]) -> str:
        return face_root(request) + prefix

    async def op_occ_bodies(
        lcm: VnfLcmService, records: list[Any], base: str, manager: str | None
    ) -> list[dict[str, Any] | None]:
        views = await lcm.op_occ_views(records)
        if manager is None:
            return [render.render_op_occ(v, base, major) for v in views]
        owners: dict[str, str | None] = {}
        bodies: list[dict[str, Any] | None] = []
        for view in views:
            instance_id = view.record.vnf_instance_id
            if instance_id not in owners:
                owners[instance_id] = await lcm.adapter_of(instance_id)
            ours = owners[instance_id] == manager
            bodies.append(render.render_op_occ(view, base, major) if ours else None)
        return bodies

    class VnfLcmController(Controller):
        path = prefix
        tags = [f"vnflcm v{major}"]
        before_request = check_headers  # type: ignore[assignment]
        # -- VNF instances ---------------------------------------------------------------

        @post(
            "/vnf_instances",
            operation_id=f"VnfLcmV{major}CreateVnfInstance",
            summary="Create a VNF instance (NOT_INSTANTIATED)",
            status_code=HTTP_201_CREATED,
            opt=JSON_BODY,
        )
        async def create_instance(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            data: CreateVnfRequest,
        ) -> Response[bytes]:
            lcm = service(services)
            view = await lcm.create(
                data.vnfd_id,
                data.vnf_instance_name,
                data.vnf_instance_description,
                data.metadata,
                adapter=manager_of(request),
            )
            body = render.render_instance(view, base_of(request), major)
            return json_response(
                body,
                HTTP_201_CREATED,
                {"Location": body["_links"]["self"]["href"], "ETag": _etag(view.record.version)},
            )

        @get(
            "/vnf_instances",
            operation_id=f"VnfLcmV{major}ListVnfInstances",
            summary="Query VNF instances (SOL013 filter, selectors, paging)",
        )
        async def list_instances(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            filter_: FilterQuery = None,
            all_fields: AllFieldsQuery = None,
            fields: FieldsQuery = None,
            exclude_fields: ExcludeFieldsQuery = None,
            exclude_default: ExcludeDefaultQuery = None,
            marker: MarkerQuery = None,
        ) -> Response[bytes]:
            lcm = service(services)
            base = base_of(request)

            manager = manager_of(request)

            def ours(view: Any) -> bool:
                owner = view.deployment or view.package
                return manager is None or (owner is not None and owner.adapter == manager)

            async def rendered(records: list[Any]) -> list[dict[str, Any] | None]:
                return [
                    render.render_instance(v, base, major) if ours(v) else None
                    for v in await lcm.views(records)
                ]

            return await _page(
                request,
                lcm.list_page,
                lambda r: (r.created_at, r.vnf_instance_id),
                rendered,
                render.VNF_INSTANCE_ATTRIBUTES,
                render.VNF_INSTANCE_DEFAULT_EXCLUDED,
                render.VNF_INSTANCE_REQUIRED,
                lambda terms, selector: functools.partial(
                    lcm.list_page,
                    where=sol013.pushdown(
                        terms,
                        render.VNF_INSTANCE_COLUMNS,
                        render.VNF_INSTANCE_STATES,
                        render.VNF_INSTANCE_JSON,
                    ),
                    json_columns=render.instance_json_columns(terms, selector),
                ),
                exact=functools.partial(_summary_page, lcm, base, major, manager),
            )

        @get(
            "/vnf_instances/{vnfInstanceId:str}",
            operation_id=f"VnfLcmV{major}GetVnfInstance",
            summary="Read a VNF instance, with the workloads the backend reports",
        )
        async def get_instance(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
        ) -> Response[bytes]:
            lcm = service(services)
            view = await lcm.get(vnf_instance_id)
            resources = await lcm.resources(view) if view.instantiated else None
            body = render.render_instance(view, base_of(request), major, resources)
            return json_response(body, headers={"ETag": _etag(view.record.version)})

        @delete(
            "/vnf_instances/{vnfInstanceId:str}",
            operation_id=f"VnfLcmV{major}DeleteVnfInstance",
            summary="Delete a NOT_INSTANTIATED VNF instance",
            status_code=HTTP_204_NO_CONTENT,
        )
        async def delete_instance(
            self, services: NamedDependency[Services], vnf_instance_id: VnfInstanceIdParam
        ) -> None:
            await service(services).delete(vnf_instance_id)

        @patch(
            "/vnf_instances/{vnfInstanceId:str}",
            operation_id=f"VnfLcmV{major}ModifyVnfInstance",
            summary="Modify a VNF instance's information (MODIFY_INFO; If-Match)",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def modify_instance(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: VnfInfoModificationRequest,
            if_match: Annotated[str | None, Parameter(header="If-Match", required=False)] = None,
        ) -> Response[bytes]:
            lcm = service(services)
            expected = None
            if if_match is not None and if_match.strip() != "*":
                # 404 before 412: an unknown instance has no ETag to compare with. If-Match is
                # a list of entity tags (RFC 9110 §13.1.1): any one of them matching will do.
                current = (await lcm.record(vnf_instance_id)).version
                tags = {t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")}
                if str(current) not in tags:
                    raise sol013.PreconditionFailed(
                        f"If-Match {if_match} does not match the VNF instance's ETag "
                        f"({_etag(current)})",
                        details={"header": "If-Match"},
                    )
                expected = current
            given = data.model_dump(by_alias=True, exclude_unset=True)
            changes: dict[str, Any] = {}
            names = {
                "vnfInstanceName": "name",
                "vnfInstanceDescription": "description",
                "vnfConfigurableProperties": "properties",
                "metadata": "instance_metadata",
                "extensions": "extensions",
                "vnfdId": "vnfd_id",
                "vnfPkgId": "vnfd_id",
            }
            for wire, column in names.items():
                if wire in given:
                    changes[column] = given[wire]
            if not changes:
                raise InvalidInput(
                    "the modification names nothing this gateway stores", details={"field": "body"}
                )
            try:
                with as_400():
                    view = await lcm.modify(vnf_instance_id, changes, given, expected)
            except Conflict as exc:
                if expected is not None and "version" in exc.details:
                    raise sol013.PreconditionFailed(
                        f"If-Match {if_match} does not match the VNF instance's ETag "
                        f"({_etag(int(exc.details['version']))})",
                        details={"header": "If-Match"},
                    ) from None
                raise
            return accepted(base_of(request), view.record.op_occ_id)

        # -- tasks -----------------------------------------------------------------------

        @post(
            "/vnf_instances/{vnfInstanceId:str}/instantiate",
            operation_id=f"VnfLcmV{major}Instantiate",
            summary="Instantiate (a native create)",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def instantiate(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: InstantiateVnfRequest,
        ) -> Response[bytes]:
            params = _params(data)
            vim = params.get("vimConnectionInfo")
            if vim:
                params["vimConnectionInfo"] = _without_secrets(vim)
            with as_400():
                view = await service(services).instantiate(
                    vnf_instance_id, data.model_dump(by_alias=True, exclude_none=True), params
                )
            return accepted(base_of(request), view.record.op_occ_id)

        @post(
            "/vnf_instances/{vnfInstanceId:str}/terminate",
            operation_id=f"VnfLcmV{major}Terminate",
            summary="Terminate (a native delete)",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def terminate(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: TerminateVnfRequest,
        ) -> Response[bytes]:
            with as_400():
                view = await service(services).terminate(vnf_instance_id, _params(data))
            return accepted(base_of(request), view.record.op_occ_id)

        @post(
            "/vnf_instances/{vnfInstanceId:str}/scale",
            operation_id=f"VnfLcmV{major}Scale",
            summary="Scale an aspect out or in by steps",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def scale(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: ScaleVnfRequest,
        ) -> Response[bytes]:
            with as_400():
                view = await service(services).scale(
                    vnf_instance_id, data.type, data.aspect_id, data.number_of_steps, _params(data)
                )
            return accepted(base_of(request), view.record.op_occ_id)

        @post(
            "/vnf_instances/{vnfInstanceId:str}/scale_to_level",
            operation_id=f"VnfLcmV{major}ScaleToLevel",
            summary="Scale aspects to levels",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def scale_to_level(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: ScaleVnfToLevelRequest,
        ) -> Response[bytes]:
            with as_400():
                if data.scale_info is not None:
                    levels = {info.aspect_id: info.scale_level for info in data.scale_info}
                    view = await service(services).scale_to_level(
                        vnf_instance_id, levels, _params(data)
                    )
                else:  # the request model admits exactly one of the two
                    view = await service(services).scale_to_instantiation_level(
                        vnf_instance_id, str(data.instantiation_level_id), _params(data)
                    )
            return accepted(base_of(request), view.record.op_occ_id)

        @post(
            "/vnf_instances/{vnfInstanceId:str}/heal",
            operation_id=f"VnfLcmV{major}Heal",
            summary="Heal: apply the release again, re-creating missing workloads",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def heal(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: HealVnfRequest,
        ) -> Response[bytes]:
            with as_400():
                view = await service(services).heal(vnf_instance_id, _params(data))
            return accepted(base_of(request), view.record.op_occ_id)

        @post(
            "/vnf_instances/{vnfInstanceId:str}/change_vnfpkg",
            operation_id=f"VnfLcmV{major}ChangeVnfPkg",
            summary="Change the current VNF package (an upgrade)",
            status_code=HTTP_202_ACCEPTED,
            opt=JSON_BODY,
        )
        async def change_vnfpkg(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
            data: ChangeCurrentVnfPkgRequest,
        ) -> Response[bytes]:
            for name, links in (
                ("extVirtualLinks", data.ext_virtual_links),
                ("extManagedVirtualLinks", data.ext_managed_virtual_links),
            ):
                if links:
                    await service(services).record(vnf_instance_id)  # 404 first
                    raise InvalidInput(
                        f"{name} is not supported: a container workload's connectivity comes "
                        "from its package",
                        details={"field": name},
                    )
            with as_400():
                view = await service(services).change_vnfpkg(
                    vnf_instance_id, data.vnfd_id, dict(data.additional_params or {}), _params(data)
                )
            return accepted(base_of(request), view.record.op_occ_id)

        @post(
            [
                "/vnf_instances/{vnfInstanceId:str}/change_flavour",
                "/vnf_instances/{vnfInstanceId:str}/change_ext_conn",
                "/vnf_instances/{vnfInstanceId:str}/operate",
            ],
            operation_id=_unsupported_id(major),
            summary="change_flavour, change_ext_conn, operate: not supported (404, as SOL003 asks)",
            status_code=HTTP_202_ACCEPTED,
        )
        async def unsupported(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            vnf_instance_id: VnfInstanceIdParam,
        ) -> Response[bytes]:
            await service(services).record(vnf_instance_id)  # 404 first for an unknown one
            task = request.url.path.rsplit("/", 1)[-1]
            # SOL003 (e.g. clause 5.4.7.3.1): a task not supported for the VNF instance is a 404,
            # "the task resource consequently does not exist".
            raise NotFound(
                f"{task} is not supported by this VNFM: a container workload has one flavour, "
                "its connectivity comes from its package, and it is started and stopped by "
                "scaling (see docs/etsi.md)",
                details={"task": task},
            )

        # -- operation occurrences ----------------------------------------------------------

        @get(
            "/vnf_lcm_op_occs",
            operation_id=f"VnfLcmV{major}ListOpOccs",
            summary="Query VNF LCM operation occurrences (SOL013 filter, selectors, paging)",
        )
        async def list_op_occs(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            filter_: FilterQuery = None,
            all_fields: AllFieldsQuery = None,
            fields: FieldsQuery = None,
            exclude_fields: ExcludeFieldsQuery = None,
            exclude_default: ExcludeDefaultQuery = None,
            marker: MarkerQuery = None,
        ) -> Response[bytes]:
            lcm = service(services)
            base = base_of(request)
            return await _page(
                request,
                lcm.op_occ_page,
                lambda r: (r.start_time, r.op_occ_id),
                lambda records: op_occ_bodies(lcm, records, base, manager_of(request)),
                render.OP_OCC_ATTRIBUTES,
                *render.op_occ_selection(major),
                lambda terms, _selector: functools.partial(
                    lcm.op_occ_page, where=sol013.pushdown(terms, render.OP_OCC_COLUMNS)
                ),
            )

        @get(
            "/vnf_lcm_op_occs/{vnfLcmOpOccId:str}",
            operation_id=f"VnfLcmV{major}GetOpOcc",
            summary="Read a VNF LCM operation occurrence",
        )
        async def get_op_occ(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            op_occ_id: OpOccIdParam,
        ) -> Response[bytes]:
            view = await service(services).op_occ(op_occ_id)
            return json_response(render.render_op_occ(view, base_of(request), major))

        @post(
            "/vnf_lcm_op_occs/{vnfLcmOpOccId:str}/retry",
            operation_id=f"VnfLcmV{major}RetryOpOcc",
            summary="Retry a FAILED_TEMP occurrence",
            status_code=HTTP_202_ACCEPTED,
        )
        async def retry(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            op_occ_id: OpOccIdParam,
        ) -> Response[bytes]:
            await service(services).retry(op_occ_id)
            # The occurrence runs again: Location names it, as on every 202 of this face.
            return accepted(base_of(request), op_occ_id)

        @post(
            "/vnf_lcm_op_occs/{vnfLcmOpOccId:str}/rollback",
            operation_id=f"VnfLcmV{major}RollbackOpOcc",
            summary="Roll back a FAILED_TEMP occurrence",
            status_code=HTTP_202_ACCEPTED,
        )
        async def rollback(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            op_occ_id: OpOccIdParam,
        ) -> Response[bytes]:
            await service(services).rollback(op_occ_id)
            # The occurrence runs again: Location names it, as on every 202 of this face.
            return accepted(base_of(request), op_occ_id)

        @post(
            "/vnf_lcm_op_occs/{vnfLcmOpOccId:str}/fail",
            operation_id=f"VnfLcmV{major}FailOpOcc",
            summary="Mark a FAILED_TEMP occurrence FAILED",
            status_code=HTTP_200_OK,
            opt={"scope": SCOPE_ADMIN},
        )
        async def fail(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            op_occ_id: OpOccIdParam,
        ) -> Response[bytes]:
            view: OpOccView = await service(services).fail(op_occ_id)
            return json_response(render.render_op_occ(view, base_of(request), major))

        @post(
            "/vnf_lcm_op_occs/{vnfLcmOpOccId:str}/cancel",
            operation_id=f"VnfLcmV{major}CancelOpOcc",
            summary="Cancel a STARTING or PROCESSING occurrence (then FAILED_TEMP)",
            status_code=HTTP_202_ACCEPTED,
            opt={"scope": SCOPE_ADMIN, **JSON_BODY},
        )
        async def cancel(
            self,
            request: Request[Any, Any, Any],
            services: NamedDependency[Services],
            op_occ_id: OpOccIdParam,
            data: CancelMode,
        ) -> Response[bytes]:
            await service(services).cancel(op_occ_id)
            return accepted(base_of(request), op_occ_id)

    VnfLcmController.__name__ = f"VnfLcmV{major}Controller"
    return VnfLcmController


@contextmanager
def as_400() -> Iterator[None]:
    """SOL003 declares 422 only for create (and subscriptions): on a task or PATCH, a request
    that names what cannot be done (an unknown aspect, a level out of range, a package that
    is not onboarded) is a 400, with the same ProblemDetails."""
    try:
        yield
    except Unprocessable as exc:
        raise InvalidInput(exc.message, details=exc.details) from None


def _params(data: Any) -> dict[str, Any]:
    params: dict[str, Any] = data.model_dump(by_alias=True, exclude_none=True)
    return params


def _without_secrets(vim: Any) -> Any:
    """vimConnectionInfo as recorded in operationParams: never its accessInfo (credentials)."""
    if isinstance(vim, dict):
        return {k: _without_secrets(v) for k, v in vim.items() if k != "accessInfo"}
    if isinstance(vim, list):
        return [_without_secrets(v) for v in vim]
    return vim


def _unsupported_id(major: int) -> Callable[[Any, Any, list[Any]], str]:
    """One operation id per path of a multi-path handler (OpenAPI ids are unique)."""

    def create(handler: Any, method: Any, components: list[Any]) -> str:
        task = "".join(part.title() for part in str(components[-1]).split("_"))
        return f"VnfLcmV{major}{task}Unsupported"

    return create


def _versions_id(handler: Any, method: Any, components: list[Any]) -> str:
    return "VnfLcmApiVersions" if components[-2] == "vnflcm" else "VnfLcmV2ApiVersions"


def api_versions_handlers() -> list[Any]:
    """``/vnflcm/api_versions`` and ``/vnflcm/v{N}/api_versions`` (no Version header needed:
    this is how a client learns which to send)."""

    @get(
        ["/vnflcm/api_versions", "/vnflcm/v2/api_versions"],
        operation_id=_versions_id,
        summary="API versions of vnflcm (v2)",
        tags=["vnflcm v2"],
    )
    async def versions_v2(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _versions(request, 2)

    @get(
        "/vnflcm/v1/api_versions",
        operation_id="VnfLcmV1ApiVersions",
        summary="API versions of vnflcm (v1)",
        tags=["vnflcm v1"],
    )
    async def versions_v1(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _versions(request, 1)

    return [versions_v2, versions_v1]


def _versions(request: Request[Any, Any, Any], major: int) -> Response[bytes]:
    name = manager_of(request)
    if name is not None and name not in request.app.state.services.registry:
        raise NotFound(f"deployment manager {name!r} not found", details={MANAGER_PARAM: name})
    body = {
        "uriPrefix": f"{face_root(request)}/vnflcm/v{major}",
        "apiVersions": [{"version": API_VERSIONS[major]}],
    }
    return json_response(body, headers={"Version": API_VERSIONS[major]})


def _errors() -> dict[str, tuple[int, ...]]:
    """The error statuses each operation of this face answers besides the general ones
    (``netweave.api.openapi`` adds 400/401/403/404/413/415/429/500 as for the native face);
    406 is the Version header's (or Accept's) refusal."""
    backend = (502, 503, 504)
    per_task = {
        "CreateVnfInstance": (406, 422),
        "ListVnfInstances": (400, 406),
        "GetVnfInstance": (400, 406, *backend),
        "DeleteVnfInstance": (406, 409),
        "ModifyVnfInstance": (406, 409, 412),
        "Instantiate": (406, 409, 422, *backend),
        "Terminate": (406, 409, 501),
        "Scale": (406, 409, *backend),
        "ScaleToLevel": (406, 409, *backend),
        "Heal": (406, 409, *backend),
        "ChangeVnfPkg": (406, 409, *backend),
        "ChangeFlavourUnsupported": (406,),
        "ChangeExtConnUnsupported": (406,),
        "OperateUnsupported": (406,),
        "ListOpOccs": (400, 406),
        "GetOpOcc": (400, 406),
        "RetryOpOcc": (406, 409),
        "RollbackOpOcc": (406, 409),
        "FailOpOcc": (406, 409),
        "CancelOpOcc": (406, 409),
        # netweave.api.etsi.subscriptions: a callback refused or failing its test is a 422.
        "CreateSubscription": (406, 422),
        "ListSubscriptions": (400, 406),
        "GetSubscription": (406,),
        "DeleteSubscription": (406,),
    }
    errors = {
        f"VnfLcmV{major}{name}": codes for major in API_VERSIONS for name, codes in per_task.items()
    }
    errors.update({"VnfLcmApiVersions": (), "VnfLcmV2ApiVersions": (), "VnfLcmV1ApiVersions": ()})
    # O2ims discovery (netweave.api.etsi.o2ims): a bad filter is a 400.
    errors["O2imsApiVersions"] = ()
    errors["O2imsListDeploymentManagers"] = (400,)
    errors["O2imsGetDeploymentManager"] = ()
    return errors


#: For ``netweave.api.openapi.ERRORS_BY_OPERATION``.
ETSI_ERRORS = _errors()


def version_header(path: str) -> dict[str, Any]:
    """The SOL013 ``Version`` request header of a ``/vnflcm/v{N}/…`` path, as the OpenAPI
    document states it: a version of that major version (another one is a 406)."""
    major = int(path.split("/")[2].removeprefix("v"))
    return {
        "name": "Version",
        "in": "header",
        "required": True,
        "description": f"SOL013 API version, e.g. {API_VERSIONS[major]}",
        "schema": {"type": "string", "pattern": rf"^{major}\.\d+\.\d+(-impl:\S+)?$"},
    }


__all__ = [
    "API_VERSIONS",
    "ETSI_ERRORS",
    "MANAGER_ROOT",
    "api_versions_handlers",
    "version_header",
    "vnflcm_controller",
]


def document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    """State this face's success answers in the OpenAPI document (the handlers return bytes
    shaped by SOL013 selectors): JSON objects, arrays for the lists, no body on 202/204
    (a task's 202 carries the op-occ's Location)."""
    responses = operation.setdefault("responses", {})
    lists = path.endswith(("/vnf_instances", "/vnf_lcm_op_occs", "/subscriptions")) and (
        method == "get"
    )
    item: dict[str, Any] = {"type": "object"}
    for status in ("200", "201"):
        if status in responses:
            schema = {"type": "array", "items": item} if lists else item
            responses[status]["content"] = {JSON: {"schema": schema}}
    for status in ("202", "204"):
        if status in responses:
            responses[status].pop("content", None)
    _document_rules(path, method, operation)
    if "202" in responses and "/vnf_lcm_op_occs/" not in path:
        responses["202"]["headers"] = {
            "Location": {
                "description": "The VNF LCM operation occurrence this request started",
                "schema": {"type": "string"},
                "required": True,
            }
        }


def _given(name: str) -> dict[str, Any]:
    """A body giving ``name`` a value the face refuses: a string, or a non-empty array."""
    value = {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1}]}
    return {"required": [name], "properties": {name: value}}


#: The attributes a PATCH (VnfInfoModificationRequest) changes in the gateway's record.
_STORED = (
    "vnfInstanceName", "vnfInstanceDescription", "vnfdId", "vnfPkgId",
    "vnfConfigurableProperties", "metadata", "extensions",
)  # fmt: skip
#: What the request bodies must hold beyond their types (each refusal is a 400 otherwise):
#: stated in the document as an ``allOf`` beside the body's schema.
_BODY_RULES: dict[str, dict[str, Any]] = {
    # Exactly one: an instantiation level the VNFD declares, or the aspects' levels.
    "/scale_to_level": {
        "oneOf": [
            {
                "required": ["instantiationLevelId"],
                "properties": {"instantiationLevelId": {"type": "string"}},
            },
            {
                "required": ["scaleInfo"],
                "properties": {
                    "scaleInfo": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/ScaleInfo"},
                    }
                },
            },
        ]
    },
    # Refused: connectivity comes from the package (docs/etsi.md).
    "/instantiate": {
        "not": {"anyOf": [_given("extVirtualLinks"), _given("extManagedVirtualLinks")]}
    },
    "/change_vnfpkg": {
        "not": {"anyOf": [_given("extVirtualLinks"), _given("extManagedVirtualLinks")]}
    },
    # The callback is an absolute http(s) URL with a host (its host's address is checked next:
    # a refused one is a 422).
    "/subscriptions": {
        "properties": {"callbackUri": {"type": "string", "pattern": HTTP_URL_PATTERN}}
    },
    # A modification names at least one attribute the gateway stores.
    "/vnf_instances/{vnfInstanceId}": {"anyOf": [{"required": [name]} for name in _STORED]},
}


def _document_rules(path: str, method: str, operation: dict[str, Any]) -> None:
    """The SOL013 list parameters' grammar (per resource) and the body rules, so that what the
    document calls valid is what the face accepts."""
    major = int(path.split("/")[2].removeprefix("v")) if path.startswith("/vnflcm/v") else 0
    if method == "get" and path.endswith(("/vnf_instances", "/vnf_lcm_op_occs", "/subscriptions")):
        from netweave.api.etsi.subscriptions import SUBSCRIPTION_ATTRIBUTES

        if path.endswith("/vnf_instances"):
            attributes = render.VNF_INSTANCE_ATTRIBUTES
            required = render.VNF_INSTANCE_REQUIRED
        elif path.endswith("/subscriptions"):
            # Every attribute of a subscription is mandatory: nothing can be excluded.
            attributes = required = SUBSCRIPTION_ATTRIBUTES
        else:
            attributes = render.OP_OCC_ATTRIBUTES
            required = render.op_occ_selection(major)[1]
        excludable = attributes - required
        grammar = {
            "filter": {"type": "string", "maxLength": 4096,
                       "pattern": sol013.filter_pattern(attributes)},
            "fields": {"type": "string", "pattern": sol013.fields_pattern(attributes)},
            "exclude_fields": (
                {"type": "string", "pattern": sol013.fields_pattern(excludable)}
                if excludable else {"type": "string", "not": {}}
            ),
        }  # fmt: skip
        combinations = (
            ". Attribute selectors combine only as SOL013 allows: all_fields alone, fields with "
            "or without exclude_default, exclude_fields alone, exclude_default alone (else 400)."
        )
        for parameter in operation.get("parameters") or ():
            name = parameter.get("name")
            if parameter.get("in") != "query" or name not in _SELECTOR_DOC:
                continue
            if name in grammar:
                parameter["schema"] = grammar[name]
            parameter["description"] = _SELECTOR_DOC[name] + (
                combinations if name in {"all_fields", "fields", "exclude_fields"} else "."
            )
    if method in {"post", "patch"}:
        rule = next((r for end, r in _BODY_RULES.items() if path.endswith(end)), None)
        content = ((operation.get("requestBody") or {}).get("content") or {}).get(JSON)
        if rule is not None and content is not None and "schema" in content:
            content["schema"] = {"allOf": [content["schema"], rule]}
