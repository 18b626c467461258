"""Upload validation: archive safety, ``Chart.yaml`` schema, names and versions, dependencies,
Helm lint (errors refuse, warnings are reported) and the chart's own ``values.schema.json``.

All of it is synchronous (the adapter runs it on its SDK thread pool). The archive is inspected
with Python's ``tarfile`` in streaming mode *before* any Helm call.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netweave.errors import InvalidInput

from netweave_helm import sdk
from netweave_helm.archives import ArchiveFacts, inspect_archive, refuse
from netweave_helm.config import HelmConfig

if TYPE_CHECKING:
    import jsonschema

#: Semantic Versioning 2.0.0 (semver.org's recommended expression).
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
#: Helm's chart name rule (no path separators, no dots-only names); kept URL- and file-safe.
CHART_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$", re.I)

#: dependency_list statuses that mean "present in charts/ and matching".
_DEP_OK = {"ok", "unpacked"}
_LINT_ERROR, _LINT_WARNING, _LINT_INFO = 3, 2, 1

#: Chart.yaml / index fields copied into PackageInfo.extensions (camelCase, as Helm writes them).
EXTENSION_FIELDS = (
    "apiVersion",
    "appVersion",
    "kubeVersion",
    "type",
    "dependencies",
    "maintainers",
    "keywords",
    "icon",
    "home",
    "sources",
    "deprecated",
    "annotations",
)


@functools.cache
def _chart_schema_validator() -> jsonschema.Draft7Validator:
    import jsonschema  # here, not at import: only chart uploads need it (start-up time)

    text = (
        importlib.resources.files("netweave_helm")
        .joinpath("data/chart.schema.json")
        .read_text("utf-8")
    )
    schema = json.loads(text)
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def validate_chart_yaml(chart_yaml: dict[str, Any]) -> None:
    """``Chart.yaml`` against SchemaStore's chart.json (bundled), plus name and SemVer rules."""
    errors = sorted(_chart_schema_validator().iter_errors(chart_yaml), key=lambda e: list(e.path))
    if errors:
        messages = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in errors[:10]
        ]
        raise refuse(
            "Chart.yaml does not match the chart schema: " + "; ".join(messages), errors=messages
        )
    name = str(chart_yaml["name"])
    if not CHART_NAME.match(name):
        raise refuse(f"chart name {name!r} is not a valid chart name", field="name")
    version = str(chart_yaml["version"])
    if not SEMVER.match(version):
        raise refuse(
            f"chart version {version!r} is not a semantic version (SemVer 2)", field="version"
        )


@dataclass(frozen=True, slots=True)
class ValidatedChart:
    name: str
    version: str
    metadata: dict[str, Any]
    #: ``sha256:<hex>`` of the archive.
    digest: str
    size: int
    warnings: tuple[str, ...]
    facts: ArchiveFacts
    #: Dependencies not vendored but available from a configured repository: the archive
    #: must be rebuilt with them (``helm dependency update``) before it can be installed.
    to_vendor: tuple[str, ...] = ()


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


def validate_archive(
    path: Path,
    *,
    expected_name: str | None,
    expected_version: str | None,
    config: HelmConfig,
    dependency_resolvable: Callable[[dict[str, Any]], bool] | None = None,
    known_digest: str | None = None,
) -> ValidatedChart:
    """Validate the chart archive at ``path``; raise ``InvalidInput`` listing what is wrong.

    ``dependency_resolvable`` decides whether a declared dependency that is *not* vendored in
    ``charts/`` can be had from a configured repository. ``known_digest`` (``sha256:<hex>``,
    computed by the core while streaming the upload) saves hashing the file again.
    """
    facts = inspect_archive(path, config.limits)
    validate_chart_yaml(facts.chart_yaml)
    name = str(facts.chart_yaml["name"])
    version = str(facts.chart_yaml["version"])
    if expected_name is not None and name != expected_name:
        raise InvalidInput(
            f"the form says name {expected_name!r} but Chart.yaml says {name!r}",
            details={"field": "name", "chart": name},
        )
    if expected_version is not None and version != expected_version:
        raise InvalidInput(
            f"the form says version {expected_version!r} but Chart.yaml says {version!r}",
            details={"field": "artifactVersion", "chart": version},
        )
    archive = str(path)
    # Helm loads the chart inside lint (which also checks the defaults against
    # values.schema.json); loading it separately as well would double time and memory.
    metadata = dict(facts.chart_yaml)
    if facts.requirements is not None and not metadata.get("dependencies"):
        # apiVersion v1: dependencies live in requirements.yaml (Helm merges them likewise).
        metadata["dependencies"] = list(facts.requirements.get("dependencies") or [])
    warnings: list[str] = []
    to_vendor = _check_dependencies(archive, metadata, facts, warnings, dependency_resolvable)
    with sdk.translated("linting the chart"):
        report = sdk.lint(archive, strict=config.lint.strict, kube_version=config.lint.kube_version)
    errors: list[str] = []
    for message in report.get("messages") or []:
        severity = int(message.get("severity", 0))
        text = f"{message.get('path') or '(chart)'}: {message.get('error', '')}".strip()
        if severity >= _LINT_ERROR:
            errors.append(text)
        elif severity == _LINT_WARNING:
            (errors if config.lint.strict else warnings).append(f"[WARNING] {text}")
        elif severity == _LINT_INFO:
            warnings.append(f"[INFO] {text}")
    for error in report.get("errors") or []:
        if not any(str(error) in e for e in errors):
            errors.append(str(error))
    if errors:
        raise InvalidInput(
            "the chart fails helm lint: " + " | ".join(errors[:10]),
            details={"lintErrors": errors[:50]},
        )
    return ValidatedChart(
        name=name,
        version=version,
        metadata=metadata,
        digest=known_digest or file_digest(path),
        size=path.stat().st_size,
        warnings=tuple(warnings),
        facts=facts,
        to_vendor=tuple(to_vendor),
    )


def _check_dependencies(
    archive: str,
    metadata: dict[str, Any],
    facts: ArchiveFacts,
    warnings: list[str],
    resolvable: Callable[[dict[str, Any]], bool] | None,
) -> list[str]:
    """Refuse unresolvable dependencies; return those a configured repository provides."""
    declared = metadata.get("dependencies") or []
    if not declared:
        return []
    from_repositories: list[str] = []
    with sdk.translated("checking chart dependencies"):
        statuses = sdk.dependency_list(archive)
    by_name = {str(s.get("name")): s for s in statuses}
    unresolved: list[str] = []
    for dep in declared:
        name = str(dep.get("name", ""))
        status = str(by_name.get(name, {}).get("status", "missing"))
        if status in _DEP_OK:
            continue
        vendored = _is_vendored(name, dep, facts)
        if status == "invalid version" and vendored:
            # free5gc declares vendored subcharts with no version and no repository: the
            # subchart in charts/ is what Helm loads, so the dependency is satisfied.
            continue
        if status == "missing" and not vendored and resolvable is not None and resolvable(dep):
            from_repositories.append(name)
            continue
        repo = dep.get("repository") or "(no repository)"
        unresolved.append(f"{name} {dep.get('version') or ''} from {repo}: {status}".strip())
    if unresolved:
        raise InvalidInput(
            "unresolvable chart dependencies (vendor them in charts/ or configure a "
            "repository that has them): " + "; ".join(unresolved),
            details={"dependencies": unresolved},
        )
    return from_repositories


def _is_vendored(name: str, dep: dict[str, Any], facts: ArchiveFacts) -> bool:
    if name in facts.vendored:
        return True
    prefix = f"{name}-"
    return any(v.startswith(prefix) and v.endswith(".tgz") for v in facts.vendored)


def extensions_from_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    extensions: dict[str, Any] = {"chartVersion": metadata.get("version")}
    for key in EXTENSION_FIELDS:
        value = metadata.get(key)
        if value not in (None, "", [], {}):
            extensions[key] = value
    extensions.setdefault("apiVersion", "v1")
    if extensions["apiVersion"] != "v1":
        extensions.setdefault("type", "application")
    return extensions


__all__ = [
    "CHART_NAME",
    "EXTENSION_FIELDS",
    "SEMVER",
    "ValidatedChart",
    "extensions_from_metadata",
    "file_digest",
    "validate_archive",
    "validate_chart_yaml",
]
