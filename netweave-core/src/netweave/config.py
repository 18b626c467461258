"""Gateway configuration: a YAML file plus the environment, validated with pydantic.

Shape (the design notes' form)::

    server: {host: 127.0.0.1, port: 8080}
    store: {url: postgresql+asyncpg://…}        # default: SQLite file in the data directory
    api: {token: ${NETWEAVE_API_TOKEN}, maxUploadBytes: 1073741824}
    plugins:
      dms:
        - name: helm-local      # instance name, unique
          type: helm            # entry-point name in netweave.adapters
          enabled: true
          default: true
          config: { ... adapter specific ... }
      hooks: [my_company.netweave_policy]   # extra pluggy plugins (importable modules)

``${VAR}`` anywhere in the file is replaced from the environment before validation; secrets are
kept as ``SecretStr`` so they never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class StoreSettings(_Section):
    #: SQLAlchemy async URL; ``None`` = ``sqlite+aiosqlite:///<data_dir>/netweave.db``.
    url: SecretStr | None = None
    echo: bool = False


class ApiSettings(_Section):
    #: Static bearer token (scopes: all). With none and no stored token, one is generated.
    token: SecretStr | None = None
    max_upload_bytes: int = Field(default=1 << 30, ge=1)
    #: JSON bodies larger than this are refused with 413.
    max_json_bytes: int = Field(default=4 << 20, ge=1024)
    #: ``public_url`` is used in ``Location`` headers and callbacks when behind a proxy.
    public_url: str | None = None


class OperationSettings(_Section):
    workers: int = Field(default=4, ge=1, le=256)
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval: float = Field(default=0.5, gt=0)
    #: An operation failing with a retryable error is retried this many times, then FAILED_TEMP.
    max_attempts: int = Field(default=3, ge=1, le=100)


class AdapterInstanceSettings(_Section):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    type: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    enabled: bool = True
    default: bool = False
    config: dict[str, Any] = Field(default_factory=dict)


class PluginSettings(_Section):
    dms: list[AdapterInstanceSettings] = Field(default_factory=list)
    hooks: list[str] = Field(default_factory=list)


class Settings(_Section):
    data_dir: Path = Path(".netweave")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    operations: OperationSettings = Field(default_factory=OperationSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)

    def store_url(self) -> str:
        if self.store.url is not None:
            return self.store.url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'netweave.db').resolve()}"
