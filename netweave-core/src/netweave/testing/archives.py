"""A corpus of hostile chart archives for the adapters that onboard Helm charts (Helm, ONAP):
each maker writes one archive that core's inspector (:mod:`netweave.adapters.charts`) must refuse
with ``InvalidInput``, and :data:`EXPECTED_REASON` holds a word its refusal names, so every
archive is refused for its own reason. Written with ``tarfile``; no Helm involved.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

NAME, VERSION = "evil", "1.0.0"


def chart_files(name: str = "evil", version: str = "1.0.0") -> dict[str, bytes]:
    """A small valid chart's files, relative to its directory."""
    chart = {
        "apiVersion": "v2",
        "name": name,
        "version": version,
        "description": f"test chart {name}",
        "type": "application",
        "appVersion": "1.0.0",
    }
    configmap = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    return {
        "Chart.yaml": yaml.safe_dump(chart).encode(),
        "values.yaml": yaml.safe_dump({"greeting": "hello", "replicaCount": 1}).encode(),
        "templates/configmap.yaml": configmap.encode(),
    }


def write_tgz(
    path: Path,
    files: dict[str, bytes],
    *,
    top: str | None,
    extra: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = (),
    fmt: int = tarfile.PAX_FORMAT,
) -> Path:
    """A gzip tar with ``files`` under ``top/`` plus raw ``extra`` members."""
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for item in extra:
            if isinstance(item, tuple):
                info, data = item
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(item)
    return path


Maker = Callable[[Path], Path]


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **attrs: object
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _base() -> dict[str, bytes]:
    return chart_files(NAME, VERSION)


def _with(
    path: Path,
    *extra: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes],
    fmt: int = tarfile.PAX_FORMAT,
) -> Path:
    return write_tgz(path, _base(), top=NAME, extra=extra, fmt=fmt)


def traversal_dotdot(p: Path) -> Path:
    return _with(p, (_info(f"{NAME}/../../evil.txt", size=4), b"evil"))


def traversal_leading(p: Path) -> Path:
    return _with(p, (_info("../evil.txt", size=4), b"evil"))


def absolute_path(p: Path) -> Path:
    return _with(p, (_info("/tmp/evil.txt", size=4), b"evil"))  # noqa: S108 - the attack


def symlink(p: Path) -> Path:
    return _with(p, _info(f"{NAME}/templates/passwd", tarfile.SYMTYPE, linkname="/etc/passwd"))


def symlink_dir_escape(p: Path) -> Path:
    return _with(p, _info(f"{NAME}/up", tarfile.SYMTYPE, linkname="../.."))


def hardlink(p: Path) -> Path:
    return _with(p, _info(f"{NAME}/hard", tarfile.LNKTYPE, linkname="/etc/passwd"))


def char_device(p: Path) -> Path:
    return _with(p, _info(f"{NAME}/null", tarfile.CHRTYPE, devmajor=1, devminor=3))


def block_device(p: Path) -> Path:
    return _with(p, _info(f"{NAME}/sda", tarfile.BLKTYPE, devmajor=8, devminor=0))


def fifo(p: Path) -> Path:
    return _with(p, _info(f"{NAME}/pipe", tarfile.FIFOTYPE))


def duplicate_entry(p: Path) -> Path:
    chart = b"apiVersion: v2\nname: evil\nversion: 9.9.9\n"
    return _with(p, (_info(f"{NAME}/Chart.yaml", size=len(chart)), chart))


def too_many_entries(p: Path) -> Path:
    files = _base()
    files.update({f"templates/cm{i}.txt": b"x" for i in range(120)})
    return write_tgz(p, files, top=NAME)


def gzip_bomb(p: Path) -> Path:
    # 12 MiB of zeros in files under the 5 MiB per-file limit compress ~1000:1.
    zeros = bytes(4 * 1024 * 1024)
    files = _base()
    files.update({f"files/zero{i}.bin": zeros for i in range(3)})
    return write_tgz(p, files, top=NAME)


def over_total_size(p: Path) -> Path:
    files = _base()
    files.update({f"files/rnd{i}.bin": os.urandom(400 * 1024) for i in range(4)})
    return write_tgz(p, files, top=NAME)


def huge_single_file(p: Path) -> Path:
    files = _base()
    files["files/big.bin"] = bytes(6 * 1024 * 1024)
    return write_tgz(p, files, top=NAME)


def lying_size_header(p: Path) -> Path:
    # A header that claims 50 GiB with no data behind it.
    raw = io.BytesIO()
    tar = tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - never closed on purpose
    for rel, data in _base().items():
        tar.addfile(_info(f"{NAME}/{rel}", size=len(data)), io.BytesIO(data))
    members = raw.getvalue()  # before close(): no end-of-archive blocks yet
    header = _info(f"{NAME}/files/huge.bin", size=50 * 1024**3).tobuf(tarfile.PAX_FORMAT)
    body = members + header
    p.write_bytes(gzip.compress(body))
    return p


def deep_nesting(p: Path) -> Path:
    deep = "/".join(f"d{i}" for i in range(40))
    return _with(p, (_info(f"{NAME}/{deep}/x.txt", size=1), b"x"))


def long_name(p: Path) -> Path:
    return _with(p, (_info(f"{NAME}/" + "a" * 2000, size=1), b"x"))


def invalid_chart_yaml(p: Path) -> Path:
    files = _base()
    files["Chart.yaml"] = b"apiVersion: v2\nname: [evil\nversion: 1.0.0\n"
    return write_tgz(p, files, top=NAME)


def invalid_values_yaml(p: Path) -> Path:
    files = _base()
    files["values.yaml"] = b"replicaCount: 1\n  bad: : indent\n- nope\n"
    return write_tgz(p, files, top=NAME)


def yaml_alias_bomb(p: Path) -> Path:
    lines = ["apiVersion: v2", "name: evil", "version: 1.0.0", 'a0: &a0 ["lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]" for i in range(1, 12)]
    lines.append("keywords: *a11")
    files = _base()
    files["Chart.yaml"] = "\n".join(lines).encode()
    return write_tgz(p, files, top=NAME)


def chart_yaml_not_mapping(p: Path) -> Path:
    files = _base()
    files["Chart.yaml"] = b"- just\n- a list\n"
    return write_tgz(p, files, top=NAME)


def values_schema_not_json(p: Path) -> Path:
    files = _base()
    files["values.schema.json"] = b"{not json"
    return write_tgz(p, files, top=NAME)


def not_gzip(p: Path) -> Path:
    p.write_bytes(os.urandom(2048))
    return p


def zip_archive(p: Path) -> Path:
    with zipfile.ZipFile(p, "w") as archive:
        for rel, data in _base().items():
            archive.writestr(f"{NAME}/{rel}", data)
    return p


def plain_tar(p: Path) -> Path:
    with tarfile.open(p, "w") as tar:
        for rel, data in _base().items():
            info = _info(f"{NAME}/{rel}", size=len(data))
            tar.addfile(info, io.BytesIO(data))
    return p


def truncated(p: Path) -> Path:
    files = _base()
    files["files/rnd.bin"] = os.urandom(64 * 1024)
    write_tgz(p, files, top=NAME)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def empty_file(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def two_top_dirs(p: Path) -> Path:
    return _with(p, (_info("other/Chart.yaml", size=5), b"x: 1\n"))


def file_at_top_level(p: Path) -> Path:
    return _with(p, (_info("README.md", size=2), b"hi"))


def no_chart_yaml(p: Path) -> Path:
    files = _base()
    del files["Chart.yaml"]
    return write_tgz(p, files, top=NAME)


def backslash_name(p: Path) -> Path:
    return _with(p, (_info(f"{NAME}\\..\\..\\evil.txt", size=4), b"evil"))


def gnu_longname_traversal(p: Path) -> Path:
    name = f"{NAME}/" + "x" * 120 + "/../../../evil.txt"
    return _with(p, (_info(name, size=4), b"evil"), fmt=tarfile.GNU_FORMAT)


def pax_path_traversal(p: Path) -> Path:
    info = _info(f"{NAME}/innocent.txt", size=4, pax_headers={"path": "../../evil.txt"})
    return _with(p, (info, b"evil"))


def gnu_sparse(p: Path) -> Path:
    return _with(
        p,
        (_info(f"{NAME}/sparse.bin", tarfile.GNUTYPE_SPARSE, size=4), b"\0\0\0\0"),
        fmt=tarfile.GNU_FORMAT,
    )


def dot_component(p: Path) -> Path:
    return _with(p, (_info(f"{NAME}/./templates/x.yaml", size=1), b"x"))


CORPUS: dict[str, Maker] = {
    f.__name__: f
    for f in (
        traversal_dotdot,
        traversal_leading,
        absolute_path,
        symlink,
        symlink_dir_escape,
        hardlink,
        char_device,
        block_device,
        fifo,
        duplicate_entry,
        too_many_entries,
        gzip_bomb,
        over_total_size,
        huge_single_file,
        lying_size_header,
        deep_nesting,
        long_name,
        invalid_chart_yaml,
        invalid_values_yaml,
        yaml_alias_bomb,
        chart_yaml_not_mapping,
        values_schema_not_json,
        not_gzip,
        zip_archive,
        plain_tar,
        truncated,
        empty_file,
        two_top_dirs,
        file_at_top_level,
        no_chart_yaml,
        backslash_name,
        gnu_longname_traversal,
        pax_path_traversal,
        dot_component,
        gnu_sparse,
    )
}

#: Limits lowered for the cases that test a limit rather than a shape (config keys).
TEST_LIMITS = {"maxEntries": 100, "maxUncompressedBytes": 1024 * 1024}
#: The bomb runs against the default limits: the ratio check must catch it on its own.
LIMITS_FOR: dict[str, dict[str, int]] = {"gzip_bomb": {}}
#: The cases refused only under :data:`TEST_LIMITS` (the default limits let them through).
NEED_LOWERED_LIMITS = frozenset({"too_many_entries", "over_total_size"})

#: A word the refusal message must contain, so each archive is refused for its own reason.
EXPECTED_REASON = {
    "traversal_dotdot": "traversal",
    "traversal_leading": "traversal",
    "absolute_path": "absolute",
    "symlink": "symbolic link",
    "symlink_dir_escape": "symbolic link",
    "hardlink": "hard link",
    "char_device": "device",
    "block_device": "device",
    "fifo": "FIFO",
    "duplicate_entry": "duplicate",
    "too_many_entries": "entries",
    "gzip_bomb": "bomb",
    "over_total_size": "exceed",
    "huge_single_file": "limit for one file",
    "lying_size_header": "limit for one file",
    "deep_nesting": "deeper",
    "long_name": "longer than",
    "invalid_chart_yaml": "Chart.yaml is not valid YAML",
    "invalid_values_yaml": "values.yaml is not valid YAML",
    "yaml_alias_bomb": "aliases",
    "chart_yaml_not_mapping": "not a YAML mapping",
    "values_schema_not_json": "not valid JSON",
    "not_gzip": "not gzip",
    "zip_archive": "zip",
    "plain_tar": "not gzip",
    "truncated": "corrupt or truncated",
    "empty_file": "empty",
    "two_top_dirs": "more than one top-level",
    "file_at_top_level": "more than one top-level",
    "no_chart_yaml": "no Chart.yaml",
    "backslash_name": "backslash",
    "gnu_longname_traversal": "traversal",
    "pax_path_traversal": "traversal",
    "dot_component": "traversal or empty component",
    "gnu_sparse": "sparse",
}


def valid_chart(path: Path) -> Path:
    """The corpus's base chart without any hostile part (the control case)."""
    return write_tgz(path, _base(), top=NAME)


__all__ = [
    "CORPUS",
    "EXPECTED_REASON",
    "LIMITS_FOR",
    "NAME",
    "NEED_LOWERED_LIMITS",
    "TEST_LIMITS",
    "VERSION",
    "Maker",
    "chart_files",
    "valid_chart",
    "write_tgz",
]
