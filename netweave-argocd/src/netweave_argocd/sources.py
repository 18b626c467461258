"""Packages are Argo CD sources; their ``backend_ref`` is the source itself, encoded.

The adapter keeps no state of its own, so a package's backend reference carries everything
needed to deploy it later::

    helm:repoURL=https%3A%2F%2Fcharts.example.com&chart=web&targetRevision=1.2.0&name=web&version=1.2.0
    git-repo:repoURL=https%3A%2F%2Fgit.example.com%2Fnf.git&path=charts%2Fweb&targetRevision=v1.2.0&name=web&version=1.2.0

i.e. ``<packageType>:<form-encoded fields>`` with the fields in a fixed order: stable (the same
source always gives the same reference) and readable in the gateway's store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from netweave.adapters import PackageInfo, PackageUpload
from netweave.errors import InvalidInput, NotFound

GIT = "git-repo"
HELM = "helm"
PACKAGE_TYPES = frozenset({GIT, HELM})

_SOURCE_KEYS = frozenset({"repoURL", "chart", "path", "targetRevision"})
_CHART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$")
_REVISION = re.compile(r"^[^\s]{1,255}$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@host:org/repo.git


@dataclass(frozen=True, slots=True)
class PackageSource:
    package_type: str
    repo_url: str
    target_revision: str
    name: str
    version: str
    chart: str | None = None
    path: str | None = None

    # -- backend reference ---------------------------------------------------------------

    def to_ref(self) -> str:
        fields: list[tuple[str, str]] = [("repoURL", self.repo_url)]
        if self.chart is not None:
            fields.append(("chart", self.chart))
        if self.path is not None:
            fields.append(("path", self.path))
        fields += [
            ("targetRevision", self.target_revision),
            ("name", self.name),
            ("version", self.version),
        ]
        return f"{self.package_type}:{urlencode(fields)}"

    @classmethod
    def from_ref(cls, ref: str) -> PackageSource:
        """Decode a reference; anything this adapter did not produce is NotFound."""
        kind, _, encoded = ref.partition(":")
        fields = dict(parse_qsl(encoded, keep_blank_values=True)) if kind in PACKAGE_TYPES else {}
        try:
            source = cls(
                package_type=kind,
                repo_url=fields["repoURL"],
                target_revision=fields["targetRevision"],
                name=fields["name"],
                version=fields["version"],
                chart=fields.get("chart"),
                path=fields.get("path"),
            )
            source.validate()
        except (KeyError, InvalidInput):
            raise NotFound(
                f"{ref!r} is not an Argo CD package source of this adapter",
                details={"backendRef": ref},
            ) from None
        return source

    # -- Argo CD ---------------------------------------------------------------------------

    def to_argo(self) -> dict[str, Any]:
        """``spec.source`` (without Helm options) of an Application deploying this package."""
        source: dict[str, Any] = {"repoURL": self.repo_url, "targetRevision": self.target_revision}
        if self.chart is not None:
            source["chart"] = self.chart
        if self.path is not None:
            source["path"] = self.path
        return source

    def info(self, upload: PackageUpload | None = None) -> PackageInfo:
        extensions: dict[str, Any] = {
            "argocd.repoURL": self.repo_url,
            "argocd.targetRevision": self.target_revision,
        }
        if self.chart is not None:
            extensions["argocd.chart"] = self.chart
        if self.path is not None:
            extensions["argocd.path"] = self.path
        return PackageInfo(
            backend_ref=self.to_ref(),
            name=self.name,
            version=self.version,
            package_type=self.package_type,
            package_uri=self.repo_url,
            description=upload.description if upload else None,
            provider=upload.provider if upload else None,
            extensions=extensions,
        )

    def validate(self) -> None:
        if self.package_type not in PACKAGE_TYPES:
            raise InvalidInput(
                f"package type must be one of {sorted(PACKAGE_TYPES)}",
                details={"field": "packageType"},
            )
        _check_repo_url(self.repo_url)
        if not _REVISION.match(self.target_revision):
            raise InvalidInput(
                "targetRevision must be a branch, tag, commit or chart version without spaces",
                details={"field": "source.targetRevision"},
            )
        if self.package_type == HELM:
            if self.chart is None or not _CHART.match(self.chart) or ".." in self.chart:
                raise InvalidInput(
                    "a helm package needs a chart name (source.chart)",
                    details={"field": "source.chart"},
                )
            if self.path is not None:
                raise InvalidInput(
                    "a helm package names a chart, not a path", details={"field": "source.path"}
                )
        else:
            if self.chart is not None:
                raise InvalidInput(
                    "a git-repo package names a path, not a chart",
                    details={"field": "source.chart"},
                )
            path = self.path or ""
            if not path or path.startswith("/") or ".." in path.split("/") or " " in path:
                raise InvalidInput(
                    "a git-repo package needs a relative path inside the repository "
                    "(source.path, '.' for the root)",
                    details={"field": "source.path"},
                )


def _check_repo_url(url: str) -> None:
    parts = urlsplit(url)
    ok = (parts.scheme in ("https", "http", "ssh", "git", "oci") and bool(parts.netloc)) or bool(
        _SCP_LIKE.match(url)
    )
    if not ok or any(c.isspace() for c in url):
        raise InvalidInput(
            f"repoURL {url!r} is not a repository URL (https://, ssh://, git@host:…, oci://)",
            details={"field": "source.repoURL"},
        )


def source_from_upload(upload: PackageUpload) -> PackageSource:
    """Read a registration: ``packageUri`` (the repository) plus ``source`` details."""
    if upload.archive is not None:
        raise InvalidInput(
            "the argocd adapter registers sources (a Git repository path or a Helm chart in a "
            "chart repository), it does not take archives: register the package with "
            "packageUri and source {repoURL, chart|path, targetRevision}",
            details={"field": "package"},
        )
    unknown = sorted(set(upload.source) - _SOURCE_KEYS)
    if unknown:
        raise InvalidInput(
            f"unknown source field(s) {unknown}; allowed: {sorted(_SOURCE_KEYS)}",
            details={"field": "source"},
        )
    for key, value in upload.source.items():
        if not isinstance(value, str):
            raise InvalidInput(f"source.{key} must be a string", details={"field": f"source.{key}"})
    repo_url = upload.source.get("repoURL") or upload.package_uri
    if not repo_url:
        raise InvalidInput("a package needs packageUri or source.repoURL")
    if upload.package_uri and upload.source.get("repoURL") not in (None, upload.package_uri):
        raise InvalidInput(
            "packageUri and source.repoURL disagree", details={"field": "source.repoURL"}
        )
    chart = upload.source.get("chart")
    path = upload.source.get("path")
    kind = upload.package_type
    if kind is None:
        if chart is not None:
            kind = HELM
        elif path is not None:
            kind = GIT
        else:
            raise InvalidInput(
                "say packageType (helm or git-repo), or give source.chart or source.path",
                details={"field": "packageType"},
            )
    if kind == HELM and chart is None:
        chart = upload.name
    source = PackageSource(
        package_type=kind,
        repo_url=repo_url,
        # A package's version is its chart version / Git revision unless told otherwise.
        target_revision=upload.source.get("targetRevision") or upload.version,
        name=upload.name,
        version=upload.version,
        chart=chart,
        path=path,
    )
    source.validate()
    return source
