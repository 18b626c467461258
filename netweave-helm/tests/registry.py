"""A real OCI registry for tests: Debian's ``docker-registry`` on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from netweave.testing import processes, require_backend
from servers import free_port, wait_for_port

REGISTRY_BINARY = "docker-registry"


@dataclass(frozen=True)
class Registry:
    host: str
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def _htpasswd(user: str, password: str) -> str:
    try:
        import bcrypt
    except ImportError:
        require_backend("bcrypt is needed to write the registry's htpasswd (pip install bcrypt)")
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"


@contextlib.contextmanager
def run_registry(directory: Path, *, auth: tuple[str, str] | None = None) -> Iterator[Registry]:
    binary = shutil.which(REGISTRY_BINARY) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").is_file() else None
    )
    if binary is None:
        require_backend(
            "Debian's docker-registry is not installed (apt-get install docker-registry)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "fields": {"service": "registry"}},
        "storage": {
            "cache": {"blobdescriptor": "inmemory"},
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if auth is not None:
        (directory / "htpasswd").write_text(_htpasswd(*auth))
        config["auth"] = {
            "htpasswd": {"realm": "netweave-test", "path": str(directory / "htpasswd")}
        }
    (directory / "config.yml").write_text(yaml.safe_dump(config))
    log = (directory / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(directory / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        yield Registry(
            host=f"127.0.0.1:{port}",
            username=auth[0] if auth else None,
            password=auth[1] if auth else None,
        )
    finally:
        processes.stop(process, grace=10)
        log.close()
