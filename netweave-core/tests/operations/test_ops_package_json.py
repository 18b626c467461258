"""The packages' JSON encoded straight from records equals the wire models' own JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from netweave.models import PackageList, PackageState
from netweave.operations.cache import ReadCache
from netweave.operations.convert import package_json, package_list_json, package_to_wire
from netweave.store import PackageRecord


def _record(**over: Any) -> PackageRecord:
    values: dict[str, Any] = {
        "package_id": "nginx-1.0.0",
        "name": "nginx",
        "version": "1.0.0",
        "artifact_name": "nginx",
        "package_type": "helm",
        "state": PackageState.AVAILABLE,
        "adapter": "helm-local",
        "backend_ref": "nginx:1.0.0",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    }
    values.update(over)
    return PackageRecord(**values)


RECORDS = [
    _record(),
    _record(
        description='a "quoted" ✓ text\n',
        provider="bitnami",
        package_uri="oci://registry/nginx:1.0.0",
        checksum="sha256:" + "a" * 64,
        state=PackageState.DEPRECATED,
        extensions={"chart": {"deps": ["a", 1, 2.5, None, True]}, "ü": "ß", "big": 2**60},
        created_at=datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-3))),
    ),
    _record(state=PackageState.UPLOADED, extensions={"empty": {}, "list": []}),
]


@pytest.mark.parametrize("record", RECORDS)
@pytest.mark.parametrize("in_use", [False, True])
def test_one_package_is_byte_for_byte_the_model_json(record: PackageRecord, in_use: bool) -> None:
    model = package_to_wire(record, in_use=in_use).model_dump_json(by_alias=True).encode()
    assert package_json(record, in_use=in_use) == model


def test_a_page_is_the_model_json_and_names_the_next_marker_only_when_there_is_one() -> None:
    views = [(r, i % 2 == 0) for i, r in enumerate(RECORDS)]
    items = [package_to_wire(r, in_use=u) for r, u in views]
    model = PackageList(items=items, total=9, limit=3, offset=4)
    encoded = package_list_json(views, total=9, limit=3, offset=4, marker=None)
    assert encoded == model.model_dump_json(by_alias=True, exclude_none=False).encode().replace(
        b',"nextpageOpaqueMarker":null', b""
    )
    with_marker = json.loads(package_list_json(views, total=9, limit=3, offset=4, marker="k1.x"))
    assert with_marker["nextpageOpaqueMarker"] == "k1.x"
    assert PackageList.model_validate(with_marker).nextpage_opaque_marker == "k1.x"


def test_the_read_cache_is_bounded_by_bytes_oldest_out_first() -> None:
    cache = ReadCache(60.0, max_bytes=1000)
    for i in range(5):
        cache.put(i, bytes(300), cache.generation)
    assert cache.size <= 1000
    assert [cache.get(i) is not None for i in range(5)] == [False, False, True, True, True]
    cache.put("huge", bytes(1001), cache.generation)  # larger than the bound: not kept
    assert cache.get("huge") is None and cache.size == 900
    cache.put(4, bytes(10), cache.generation)  # replacing an entry counts its new size
    assert cache.size == 610
    cache.invalidate()
    assert cache.size == 0 and cache.get(2) is None
