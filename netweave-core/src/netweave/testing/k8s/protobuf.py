"""Decoding of Kubernetes protobuf request bodies.

client-go's typed clientsets (Helm's release storage drivers among them) send
Secrets, ConfigMaps, Namespaces and DeleteOptions as
``application/vnd.kubernetes.protobuf``: the magic ``k8s\\0`` followed by a
``runtime.Unknown`` message wrapping the object. Only the messages those
clients send are described here; field numbers come from the upstream
``generated.proto`` files.
"""

from __future__ import annotations

import base64
import datetime as _dt
import struct
from collections.abc import Iterator
from typing import Any

from netweave.testing.k8s.errors import ApiError
from netweave.testing.k8s.util import JSONDict

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# A field spec: (json name, how) where how is one of
#   "string", "bytes", "int", "bool", "time", ("msg", schema), ("map", value how),
#   ("repeated", how).
_Spec = dict[int, tuple[str, Any]]

_TIME = "time"
_OWNER_REF: _Spec = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
_OBJECT_META: _Spec = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    4: ("selfLink", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", _TIME),
    9: ("deletionTimestamp", _TIME),
    10: ("deletionGracePeriodSeconds", "int"),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
    13: ("ownerReferences", ("repeated", ("msg", _OWNER_REF))),
    14: ("finalizers", ("repeated", "string")),
    # 17 (managedFields) is skipped: clients must not send it.
}
_SECRET: _Spec = {
    1: ("metadata", ("msg", _OBJECT_META)),
    2: ("data", ("map", "bytes")),
    3: ("type", "string"),
    4: ("stringData", ("map", "string")),
    5: ("immutable", "bool"),
}
_CONFIGMAP: _Spec = {
    1: ("metadata", ("msg", _OBJECT_META)),
    2: ("data", ("map", "string")),
    3: ("binaryData", ("map", "bytes")),
    4: ("immutable", "bool"),
}
_NAMESPACE: _Spec = {
    1: ("metadata", ("msg", _OBJECT_META)),
    2: ("spec", ("msg", {1: ("finalizers", ("repeated", "string"))})),
    3: ("status", ("msg", {1: ("phase", "string")})),
}
_PRECONDITIONS: _Spec = {1: ("uid", "string"), 2: ("resourceVersion", "string")}
_DELETE_OPTIONS: _Spec = {
    1: ("gracePeriodSeconds", "int"),
    2: ("preconditions", ("msg", _PRECONDITIONS)),
    3: ("orphanDependents", "bool"),
    4: ("propagationPolicy", "string"),
    5: ("dryRun", ("repeated", "string")),
}
_TYPE_META: _Spec = {1: ("apiVersion", "string"), 2: ("kind", "string")}

KINDS: dict[tuple[str, str], _Spec] = {
    ("v1", "Secret"): _SECRET,
    ("v1", "ConfigMap"): _CONFIGMAP,
    ("v1", "Namespace"): _NAMESPACE,
    ("v1", "DeleteOptions"): _DELETE_OPTIONS,
    ("meta.k8s.io/v1", "DeleteOptions"): _DELETE_OPTIONS,
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    # A varint has at most 10 bytes; the bound also stops on corrupt input.
    for _ in range(10):
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, raw value) for every field of a message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
            yield num, wire, val
        elif wire == 1:
            yield num, wire, struct.unpack_from("<q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            yield num, wire, buf[pos : pos + length]
            pos += length
        elif wire == 5:
            yield num, wire, struct.unpack_from("<i", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_time(buf: bytes) -> str:
    seconds = 0
    for num, _, val in _fields(buf):
        if num == 1:
            seconds = _signed64(val)
    stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(how: Any, val: Any) -> Any:
    if how == "string":
        return bytes(val).decode("utf-8")
    if how == "bytes":
        return base64.b64encode(bytes(val)).decode("ascii")
    if how == "int":
        return _signed64(int(val))
    if how == "bool":
        return bool(val)
    if how == _TIME:
        return _decode_time(bytes(val))
    if isinstance(how, tuple) and how[0] == "msg":
        return decode_message(bytes(val), how[1])
    raise ValueError(f"unknown field kind {how!r}")


def decode_message(buf: bytes, spec: _Spec) -> JSONDict:
    out: JSONDict = {}
    for num, _, val in _fields(buf):
        entry = spec.get(num)
        if entry is None:
            continue  # unknown fields are skipped, as proto3 decoders do
        name, how = entry
        if isinstance(how, tuple) and how[0] == "map":
            key = ""
            value: Any = ""  # proto3 omits empty values; both kinds default to ""
            for enum, _, eval_ in _fields(bytes(val)):
                if enum == 1:
                    key = bytes(eval_).decode("utf-8")
                elif enum == 2:
                    value = _scalar(how[1], eval_)
            out.setdefault(name, {})[key] = value
        elif isinstance(how, tuple) and how[0] == "repeated":
            out.setdefault(name, []).append(_scalar(how[1], val))
        else:
            out[name] = _scalar(how, val)
    return out


def decode(body: bytes) -> JSONDict:
    """Decode a protobuf-encoded request body into its JSON form.

    Raises ApiError 415 for kinds this decoder does not know, and 400 for
    undecodable bytes.
    """
    if not body.startswith(MAGIC):
        raise ApiError(400, "provided protobuf body is missing the k8s magic prefix")
    try:
        unknown = {num: val for num, _, val in _fields(body[len(MAGIC) :])}
        type_meta = decode_message(bytes(unknown.get(1, b"")), _TYPE_META)
        api_version = str(type_meta.get("apiVersion", ""))
        kind = str(type_meta.get("kind", ""))
        spec = KINDS.get((api_version, kind))
        if spec is None:
            raise ApiError(
                415,
                f"the emulator cannot decode protobuf bodies of {api_version}, Kind={kind}; "
                "send JSON instead",
            )
        obj = decode_message(bytes(unknown.get(2, b"")), spec)
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ApiError(400, f"unable to decode protobuf body: {exc}") from exc
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj


# --- encoding (used by tests and by anyone who wants to send protobuf) ------


def _enc_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_field(num: int, payload: bytes) -> bytes:
    return _enc_varint((num << 3) | 2) + _enc_varint(len(payload)) + payload


def _enc_scalar(num: int, how: Any, value: Any) -> bytes:
    if how == "string":
        return _enc_field(num, str(value).encode("utf-8"))
    if how == "bytes":
        return _enc_field(num, base64.b64decode(value))
    if how in ("int", "bool"):
        return _enc_varint(num << 3) + _enc_varint(int(value))
    if how == _TIME:
        secs = int(_dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
        return _enc_field(num, _enc_varint(1 << 3) + _enc_varint(secs))
    if isinstance(how, tuple) and how[0] == "msg":
        return _enc_field(num, encode_message(value, how[1]))
    raise ValueError(f"unknown field kind {how!r}")


def encode_message(obj: JSONDict, spec: _Spec) -> bytes:
    out = bytearray()
    for num, (name, how) in sorted(spec.items()):
        if name not in obj or obj[name] is None:
            continue
        value = obj[name]
        if isinstance(how, tuple) and how[0] == "map":
            for k in sorted(value):
                entry = _enc_scalar(1, "string", k) + _enc_scalar(2, how[1], value[k])
                out += _enc_field(num, entry)
        elif isinstance(how, tuple) and how[0] == "repeated":
            for item in value:
                out += _enc_scalar(num, how[1], item)
        else:
            out += _enc_scalar(num, how, value)
    return bytes(out)


def encode(obj: JSONDict) -> bytes:
    """Encode a Secret/ConfigMap/Namespace/DeleteOptions like client-go does."""
    api_version = str(obj.get("apiVersion", "v1"))
    kind = str(obj.get("kind", ""))
    spec = KINDS[(api_version, kind)]
    type_meta = encode_message({"apiVersion": api_version, "kind": kind}, _TYPE_META)
    raw = encode_message(obj, spec)
    return MAGIC + _enc_field(1, type_meta) + _enc_field(2, raw)
