"""Chart dependencies an upload does not vendor, fetched by the gateway itself.

A chart may declare dependencies it does not carry in ``charts/`` when a repository the
operator configured (``dependencyRepositories``, or the instance's own remote repository)
holds them. ``helm dependency update`` would fetch them with the Helm SDK's own HTTP client —
from *every* repository the chart names (the vendored ones too, and ``file://`` paths), with
its own name resolution. So the SDK never fetches: the gateway picks the version Helm would
(the highest one satisfying the dependency's range), downloads it through core's fetch policy
(:class:`netweave.fetching.Fetcher`: each host and redirect hop checked, connections pinned to
the checked address, errors without the server's words) and adds it to the archive under
``charts/``. What is added is then validated with the whole archive like any upload.

Repositories: ``http(s)://`` (``index.yaml``, the chart URL it lists — relative or absolute,
anywhere the policy allows — and its ``digest``), ``oci://`` (the registry's tag list, then the
pinned pull of :class:`netweave_helm.storage.oci.RegistryReader`), and the instance's own
remote repository (its store, which the gateway talks to anyway).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml
from netweave.adapters.charts import NoAliasLoader as _NoAliasLoader
from netweave.errors import InvalidInput
from netweave.fetching import Fetcher, FetchPolicy

from netweave_helm.storage.base import ChartStore
from netweave_helm.storage.oci import OciReference, RegistryReader, tag_for

#: Field the fetch errors name: the chart's own ``dependencies`` (not a request field).
FIELD = "dependencies"
_HEX_DIGEST = re.compile(r"^[a-f0-9]{64}$")

# -- versions and ranges (Helm's dependency version constraints) ---------------------------

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_PART = r"(?:0|[1-9]\d*|[xX*])"
_COMPARATOR = re.compile(
    r"(?P<op>!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?\s*"
    rf"v?(?P<major>{_PART})(?:\.(?P<minor>{_PART}))?(?:\.(?P<patch>{_PART}))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_HYPHEN_RANGE = re.compile(r"(\S+)\s+-\s+(\S+)")

#: A comparable form of a version: (major, minor, patch, prerelease key).
VersionKey = tuple[int, int, int, tuple[Any, ...]]


def _pre_key(pre: str | None) -> tuple[Any, ...]:
    # SemVer 2.0 precedence: a release ranks above its pre-releases; numeric identifiers
    # rank below alphanumeric ones and compare as numbers.
    if not pre:
        return (1,)
    return (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))


def version_key(text: str) -> VersionKey | None:
    """The version's precedence key, ``None`` if it is not a semantic version."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    return (
        int(match["major"]),
        int(match["minor"]),
        int(match["patch"]),
        _pre_key(match["pre"]),
    )


@dataclass(frozen=True, slots=True)
class _Comparator:
    low: VersionKey | None  # inclusive unless low_open
    high: VersionKey | None  # exclusive unless high_closed
    low_open: bool = False
    high_closed: bool = False
    negate: bool = False
    #: Whether the comparator names a pre-release (see ``_allows``).
    takes_pre: bool = False
    never: bool = False

    def matches(self, key: VersionKey) -> bool:
        if self.never:
            return False
        inside = True
        if self.low is not None:
            inside = key > self.low if self.low_open else key >= self.low
        if inside and self.high is not None:
            inside = key <= self.high if self.high_closed else key < self.high
        return inside != self.negate


def _comparator(match: re.Match[str]) -> _Comparator:
    op = match["op"] or "="
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        raw = match[name]
        wild = raw is None or raw in {"x", "X", "*"} or (bool(parts) and parts[-1] is None)
        parts.append(None if wild else int(raw))
    major, minor, patch = parts
    pre = match["pre"]
    takes_pre = bool(pre)
    exact: VersionKey = (major or 0, minor or 0, patch or 0, _pre_key(pre))

    def release(a: int, b: int, c: int) -> VersionKey:
        # An upper bound below every pre-release of a.b.c (so <2.0.0 excludes 2.0.0-rc.1).
        return (a, b, c, (0,))

    if major is None:  # "*", "x": any release (">*"/"<*" match nothing)
        return _Comparator(None, None, takes_pre=takes_pre, never=op in {">", "<"})
    # The range a partial version stands for: 1 → [1.0.0, 2.0.0), 1.2 → [1.2.0, 1.3.0).
    if minor is None:
        span_low, span_high = exact, release(major + 1, 0, 0)
    elif patch is None:
        span_low, span_high = exact, release(major, minor + 1, 0)
    else:
        span_low, span_high = exact, None
    if op in {"=", "!="}:
        if span_high is None:
            return _Comparator(
                exact, exact, high_closed=True, negate=op == "!=", takes_pre=takes_pre
            )
        return _Comparator(span_low, span_high, negate=op == "!=", takes_pre=takes_pre)
    if op == ">":
        if span_high is None:
            return _Comparator(exact, None, low_open=True, takes_pre=takes_pre)
        return _Comparator(span_high, None, takes_pre=takes_pre)
    if op in {">=", "=>"}:
        return _Comparator(exact, None, takes_pre=takes_pre)
    if op == "<":
        return _Comparator(None, exact, takes_pre=takes_pre)
    if op in {"<=", "=<"}:
        if span_high is None:
            return _Comparator(None, exact, high_closed=True, takes_pre=takes_pre)
        return _Comparator(None, span_high, takes_pre=takes_pre)
    if op in {"~", "~>"}:
        high = release(major + 1, 0, 0) if minor is None else release(major, minor + 1, 0)
        return _Comparator(exact, high, takes_pre=takes_pre)
    # "^": up to the next change of the left-most non-zero part.
    if major > 0 or minor is None:
        high = release(major + 1, 0, 0)
    elif minor > 0 or patch is None:
        high = release(0, minor + 1, 0)
    else:
        high = release(0, 0, patch + 1)
    return _Comparator(exact, high, takes_pre=takes_pre)


def parse_constraint(text: str) -> list[list[_Comparator]]:
    """Helm's (Masterminds semver) range syntax: ``||`` between alternatives, commas or
    spaces between the comparators of one, ``a - b`` ranges, ``x``/``*`` wildcards, ``~``,
    ``^``. ``ValueError`` if it is not one (an empty range is none, as for Helm)."""
    if not text.strip():
        raise ValueError("the dependency names no version range")
    alternatives: list[list[_Comparator]] = []
    for alternative in text.split("||"):
        spec = _HYPHEN_RANGE.sub(r">=\1 <=\2", alternative.replace(",", " ")).strip() or "*"
        comparators: list[_Comparator] = []
        position = 0
        while position < len(spec):
            if spec[position].isspace():
                position += 1
                continue
            match = _COMPARATOR.match(spec, position)
            if match is None or match.end() == position:
                raise ValueError(f"{text!r} is not a version range")
            end = match.end()
            if end < len(spec) and not spec[end].isspace():
                raise ValueError(f"{text!r} is not a version range")
            comparators.append(_comparator(match))
            position = end
        alternatives.append(comparators)
    return alternatives


def _allows(alternatives: list[list[_Comparator]], key: VersionKey) -> bool:
    # A pre-release version is only considered by an alternative that names a pre-release
    # somewhere (as Helm's semver library does: ``>=1.0.0`` does not take ``1.1.0-rc.1``,
    # ``>=1.0.0-0 <2`` does).
    pre = key[3] != (1,)
    return any(
        (not pre or any(c.takes_pre for c in group)) and all(c.matches(key) for c in group)
        for group in alternatives
    )


def satisfies(version: str, constraint: str) -> bool:
    """Whether ``constraint`` allows ``version`` (``ValueError`` for a bad range)."""
    key = version_key(version)
    alternatives = parse_constraint(constraint)
    return key is not None and _allows(alternatives, key)


def best_version(versions: Iterable[str], constraint: str) -> str | None:
    """The highest of ``versions`` that ``constraint`` allows (what Helm would pick)."""
    alternatives = parse_constraint(constraint)
    best: tuple[VersionKey, str] | None = None
    for version in versions:
        key = version_key(version)
        if key is None:
            continue
        if _allows(alternatives, key) and (best is None or key > best[0]):
            best = (key, version)
    return best[1] if best else None


# -- fetching ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wanted:
    """One dependency to fetch: the chart's name, its range and the repository."""

    name: str
    constraint: str
    repository: str

    @classmethod
    def of(cls, dependency: dict[str, Any]) -> Wanted:
        return cls(
            name=str(dependency.get("name") or ""),
            constraint=str(dependency.get("version") or ""),
            repository=str(dependency.get("repository") or "").rstrip("/"),
        )

    def describe(self) -> str:
        return f"dependency {self.name} {self.constraint or '*'} from {self.repository}"


def _refuse(wanted: Wanted, what: str, **details: Any) -> InvalidInput:
    return InvalidInput(
        f"{wanted.describe()}: {what}",
        details={"field": FIELD, "dependency": wanted.name, **details},
    )


def _pick(wanted: Wanted, versions: Iterable[str]) -> str:
    try:
        chosen = best_version(versions, wanted.constraint)
    except ValueError as exc:
        raise _refuse(wanted, str(exc)) from None
    if chosen is None:
        raise _refuse(wanted, "no version in the repository satisfies the range")
    return chosen


def _parse_index(body: bytes, wanted: Wanted) -> dict[str, Any]:
    try:
        index = yaml.load(body, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        # Not the parser's message: it quotes the document.
        index = None
    if not isinstance(index, dict) or not isinstance(index.get("entries"), dict):
        raise _refuse(wanted, "the repository's index.yaml is not a chart repository index")
    return index


class DependencyFetcher:
    """Fetches the dependencies of one upload (the repositories' indexes read once)."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        store: ChartStore | None,
        max_bytes: int,
        timeout: float,
    ) -> None:
        self._policy = policy
        self._store = store
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._indexes: dict[str, dict[str, Any]] = {}

    def _fetcher(self, wanted: Wanted) -> Fetcher:
        return Fetcher(self._policy, timeout=self._timeout, field=FIELD, subject=wanted.describe())

    async def fetch(self, wanted: Wanted, directory: Path) -> Path:
        """The dependency's archive as ``directory/<name>-<version>.tgz``."""
        store = self._store
        if store is not None and wanted.repository == store.location.rstrip("/"):
            entries = [e for e in await store.list_charts() if e.name == wanted.name]
            version = _pick(wanted, (e.version for e in entries))
            stored = await store.fetch(wanted.name, version, directory / ".store")
            path = directory / ".download.tgz"
            await asyncio.to_thread(shutil.copyfile, stored, path)  # never move a store's file
        elif wanted.repository.startswith(("http://", "https://")):
            path, version = await self._from_http(wanted, directory)
        elif wanted.repository.startswith("oci://"):
            path, version = await self._from_oci(wanted, directory)
        else:
            raise _refuse(wanted, "only http(s):// and oci:// repositories are fetched from")
        target = directory / f"{wanted.name}-{version}.tgz"
        await asyncio.to_thread(path.replace, target)
        return target

    async def _from_http(self, wanted: Wanted, directory: Path) -> tuple[Path, str]:
        async with self._fetcher(wanted) as fetcher:
            index = self._indexes.get(wanted.repository)
            if index is None:
                answer = await fetcher.read(
                    f"{wanted.repository}/index.yaml", limit=self._max_bytes
                )
                if answer.status != 200:
                    raise fetcher.failed(f"index.yaml: HTTP {answer.status}", status=answer.status)
                index = await asyncio.to_thread(_parse_index, answer.body, wanted)
                self._indexes[wanted.repository] = index
            listed = index["entries"].get(wanted.name)
            releases = {
                str(e["version"]): e
                for e in (listed if isinstance(listed, list) else [])
                if isinstance(e, dict) and isinstance(e.get("version"), str)
            }
            version = _pick(wanted, releases)
            entry = releases[version]
            urls = entry.get("urls")
            if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
                raise _refuse(wanted, f"the index lists no URL for version {version}")
            digest = entry.get("digest")
            path = await fetcher.to_file(
                urljoin(wanted.repository + "/", urls[0]),
                directory / ".download.tgz",
                limit=self._max_bytes,
                digest=f"sha256:{digest}"
                if isinstance(digest, str) and _HEX_DIGEST.match(digest)
                else None,
            )
            return path, version

    async def _from_oci(self, wanted: Wanted, directory: Path) -> tuple[Path, str]:
        async with self._fetcher(wanted) as fetcher:
            base = OciReference.parse(wanted.repository, field=FIELD)
            if base.tag is not None or base.digest is not None:
                raise _refuse(wanted, "an oci:// repository names no tag")
            reader = await RegistryReader.connect(fetcher, base.with_name(wanted.name))
            tags = await reader.tags()
            version = _pick(wanted, (t.replace("_", "+") for t in tags))
            path = await reader.pull(tag_for(version), directory, max_bytes=self._max_bytes)
            return path, version


def add_to_archive(archive: Path, top: str, charts: list[Path], target: Path) -> Path:
    """A copy of ``archive`` (already inspected: regular files and directories only) with
    ``charts`` added under ``<top>/charts/``, as ``target``. The chart's own files stay as
    they were (no repackaging by Helm)."""
    with (
        tarfile.open(archive, mode="r|gz") as source,
        tarfile.open(target, mode="w:gz") as out,
    ):
        for member in source:
            data = source.extractfile(member) if member.isfile() else None
            out.addfile(member, data)
        for chart in charts:
            info = out.gettarinfo(str(chart), arcname=f"{top}/charts/{chart.name}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with chart.open("rb") as handle:
                out.addfile(info, handle)
    return target


async def vendor(
    archive: Path,
    directory: Path,
    *,
    top: str,
    dependencies: list[dict[str, Any]],
    fetcher: DependencyFetcher,
) -> Path:
    """``archive`` with ``dependencies`` fetched into its ``charts/`` (see the module
    docstring); the new archive, in ``directory``."""
    fetched: dict[tuple[str, str], Path] = {}
    downloads = directory / "charts"
    await asyncio.to_thread(downloads.mkdir, parents=True, exist_ok=True)
    for dependency in dependencies:
        wanted = Wanted.of(dependency)
        key = (wanted.name, wanted.constraint)
        if key not in fetched:  # the same chart under two aliases is one file
            fetched[key] = await fetcher.fetch(wanted, downloads)
    charts = sorted(set(fetched.values()))
    return await asyncio.to_thread(
        add_to_archive, archive, top, charts, directory / "with-dependencies.tgz"
    )


__all__ = [
    "DependencyFetcher",
    "Wanted",
    "add_to_archive",
    "best_version",
    "parse_constraint",
    "satisfies",
    "vendor",
    "version_key",
]
