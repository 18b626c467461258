"""The one idempotency stamp adapters put on backend objects: label-safe for any key."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest
from netweave.adapters.idempotency import has_stamp, idempotency_stamp, idempotency_uuid

#: A Kubernetes label value (and so an annotation, a Helm label, a k8s-plugin label).
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    "key",
    [
        "op-1:0",  # a colon is not allowed in a label value
        "a" * 500,  # longer than a label value may be
        "émoji ✓ / with spaces",
        "",
    ],
)
def test_any_key_gives_a_stable_label_safe_stamp(key: str) -> None:
    stamp = idempotency_stamp(key)
    assert len(stamp) == 40 and len(stamp) <= 63
    assert _LABEL_VALUE.match(stamp)
    assert stamp == idempotency_stamp(key)
    assert has_stamp(stamp, key)


def test_other_keys_and_values_do_not_match() -> None:
    stamp = idempotency_stamp("op-1:0")
    assert stamp != idempotency_stamp("op-1:1")
    assert not has_stamp(stamp, "op-1:1")
    assert not has_stamp("op-1:0", "op-1:0")  # the raw key is not the stamp
    assert not has_stamp(None, "op-1:0")


def test_the_helm_release_label_encoding_is_kept() -> None:
    # Releases labelled before the stamp moved to core are still recognised (same encoding).
    assert idempotency_stamp("create-1") == hashlib.sha256(b"create-1").hexdigest()[:40]


def test_uuid_is_stable_per_key_and_part() -> None:
    first = idempotency_uuid("op-1:0", part="1")
    assert first == idempotency_uuid("op-1:0", part="1")
    assert first != idempotency_uuid("op-1:0", part="2")
    assert first.version == 5
    # The derivation ONAP SO request ids had (a resumed step derives the same id).
    legacy = uuid.uuid5(uuid.UUID("7b0f6f6e-4c8e-5d3a-9d0e-6e657477656f"), "op-1:0#1")
    assert first == legacy
