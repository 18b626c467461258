"""The ``config:`` block of an ``osm`` adapter instance (documented field by field in README.md).

Keys are camelCase in YAML (``nbiUrl``, ``vimAccount`` …); snake_case works too. ``${VAR}`` in
the file (e.g. ``password: ${OSM_PASSWORD}``) is replaced by the core before validation.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from netweave.adapters import AdapterConfig
from netweave.adapters.http import HttpSettings
from pydantic import Field, SecretStr, field_validator


class OsmConfig(AdapterConfig):
    #: Scheme, host and port of the NBI, e.g. ``https://osm.example.net:9999``.
    nbi_url: str
    #: Path prefix of the NBI's API (OSM serves it under ``/osm``).
    base_path: str = Field(default="/osm", pattern=r"^(/[A-Za-z0-9._~-]+)*$")
    username: str = Field(min_length=1)
    password: SecretStr
    #: Project name or id the token is scoped to (``project_id`` of the token request).
    project: str = Field(default="admin", min_length=1)
    #: VIM account (uuid or name) NS instances are deployed to; KNFs reach their K8s cluster
    #: through it.
    vim_account: str = Field(min_length=1)
    #: Seconds between two reads of an NS LCM operation occurrence while waiting for it.
    polling_interval: float = Field(default=2.0, gt=0, le=300)
    #: Helm values key a ``scale`` sets on a Helm-based (KDU) NS.
    replicas_key: str = Field(
        default="replicaCount", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    )
    #: Seconds before a token's ``expires`` at which it is renewed proactively.
    token_renew_margin: float = Field(default=30.0, ge=0, le=3600)
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("nbi_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("nbiUrl must be an absolute http(s) URL, e.g. https://osm:9999")
        if parts.query or parts.fragment:
            raise ValueError("nbiUrl takes no query or fragment")
        return value.rstrip("/")

    def api_root(self) -> str:
        """``nbiUrl`` joined with ``basePath``: what every NBI path is relative to."""
        return f"{self.nbi_url}{self.base_path}"


__all__ = ["OsmConfig"]
