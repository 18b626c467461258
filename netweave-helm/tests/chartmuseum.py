"""A ChartMuseum-behaving test server, following its documented API (v0.16.5 README and
handlers; see research/backends.md §5.6): the repository face (``/index.yaml``,
``/charts/<file>.tgz``) and ``/api`` (upload, list, get, delete), ``{"error": …}`` bodies,
optional basic auth and a tenant prefix (``--depth``)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.parser
import email.policy
import gzip
import hashlib
import http.server
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass
class Museum:
    tenant: str = ""
    auth: tuple[str, str] | None = None
    charts: dict[str, dict[str, tuple[dict[str, Any], bytes]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: While set, every request is answered 503 (an outage).
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, archive: bytes) -> tuple[int, dict[str, Any]]:
        try:
            with (
                gzip.GzipFile(fileobj=io.BytesIO(archive)) as gz,
                tarfile.open(fileobj=gz, mode="r|") as tar,
            ):
                meta = None
                for member in tar:
                    if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                        handle = tar.extractfile(member)
                        meta = yaml.safe_load(handle.read()) if handle else None
                        break
        except (tarfile.TarError, OSError, EOFError):
            return 400, {"error": "chart archive is invalid"}
        if not isinstance(meta, dict) or "name" not in meta or "version" not in meta:
            return 400, {"error": "chart metadata is invalid"}
        name, version = str(meta["name"]), str(meta["version"])
        with self.lock:
            if version in self.charts.get(name, {}):
                return 409, {"error": "file already exists"}
            entry = dict(meta)
            entry.update(
                {
                    "urls": [f"charts/{name}-{version}.tgz"],
                    "created": dt.datetime.now(dt.UTC).isoformat(),
                    "digest": hashlib.sha256(archive).hexdigest(),
                }
            )
            self.charts.setdefault(name, {})[version] = (entry, archive)
        return 201, {"saved": True}

    def index(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            return {
                name: [entry for entry, _ in versions.values()]
                for name, versions in sorted(self.charts.items())
            }


def _handler(museum: Museum) -> type[http.server.BaseHTTPRequestHandler]:
    prefix = f"/{museum.tenant}" if museum.tenant else ""
    api = f"/api{prefix}/charts"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _authorised(self) -> bool:
            if museum.down:
                self._body()
                self._send(503, {"error": "service unavailable"})
                return False
            if museum.auth is None:
                return True
            expected = base64.b64encode(f"{museum.auth[0]}:{museum.auth[1]}".encode()).decode()
            if self.headers.get("Authorization") == f"Basic {expected}":
                return True
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="chartmuseum"')
            self.send_header("Content-Type", "application/json")
            body = json.dumps({"error": "unauthorized"}).encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            museum.requests.append(("GET", self.path))
            if not self._authorised():
                return
            path = self.path.split("?", 1)[0]
            if path == "/health":
                return self._send(200, {"healthy": True})
            if path == f"{prefix}/index.yaml":
                doc = {
                    "apiVersion": "v1",
                    "entries": museum.index(),
                    "generated": dt.datetime.now(dt.UTC).isoformat(),
                }
                return self._send(200, yaml.safe_dump(doc).encode(), "application/x-yaml")
            match = re.fullmatch(rf"{prefix}/charts/(.+)-(\d[^/]*)\.tgz", path)
            if match:
                found = museum.charts.get(match.group(1), {}).get(match.group(2))
                if found is None:
                    return self._send(404, {"error": "not found"})
                return self._send(200, found[1], "application/x-tar")
            if path == api:
                return self._send(200, museum.index())
            match = re.fullmatch(rf"{api}/([^/]+)(?:/([^/]+))?", path)
            if match:
                versions = museum.charts.get(match.group(1))
                if not versions:
                    return self._send(404, {"error": "chart not found"})
                if match.group(2) is None:
                    return self._send(200, [entry for entry, _ in versions.values()])
                version = match.group(2)
                if version == "latest":
                    version = sorted(versions)[-1]
                if version not in versions:
                    return self._send(404, {"error": "improper constraint: " + version})
                return self._send(200, versions[version][0])
            return self._send(404, {"error": "not found"})

        do_HEAD = do_GET

        def do_POST(self) -> None:
            museum.requests.append(("POST", self.path))
            if not self._authorised():
                return
            if self.path.split("?", 1)[0] != api:
                return self._send(404, {"error": "not found"})
            body = self._body()
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    f"Content-Type: {content_type}\r\n\r\n".encode() + body
                )
                parts = {
                    part.get_param("name", header="content-disposition"): part.get_payload(
                        decode=True
                    )
                    for part in message.iter_parts()
                }
                archive = parts.get("chart")
                if archive is None:
                    return self._send(400, {"error": "no chart in form"})
            else:
                archive = body
            status, answer = museum.add(archive)
            return self._send(status, answer)

        def do_DELETE(self) -> None:
            museum.requests.append(("DELETE", self.path))
            if not self._authorised():
                return
            match = re.fullmatch(rf"{api}/([^/]+)/([^/]+)", self.path)
            if not match:
                return self._send(404, {"error": "not found"})
            with museum.lock:
                versions = museum.charts.get(match.group(1), {})
                if versions.pop(match.group(2), None) is None:
                    return self._send(404, {"error": "chart not found"})
                if not versions:
                    museum.charts.pop(match.group(1), None)
            return self._send(200, {"deleted": True})

    return Handler


@contextlib.contextmanager
def run_chartmuseum(museum: Museum) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(museum))
    thread = threading.Thread(target=server.serve_forever, name="chartmuseum", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
