"""A strict stand-in for the Google Cloud Storage **XML API** on loopback, for the ``gcs`` kind.

Why a stand-in: the GCS emulators that install from the package registries do not serve the XML
API that obstore's GCS client speaks (``gcp-storage-emulator`` answers a PUT without ``ETag``
and HEAD and listing with 501; the bundled ``fake-gcs-server`` refuses XML-API uploads;
``gcloud-storage-emulator`` and the Firebase storage emulator have no XML PUT — see ``fakegcs``).
This one implements, after Google's XML API reference, only what that client sends — object
PUT, GET, HEAD, DELETE, the V2 bucket listing and XML multipart uploads — with the part that
matters here kept strict: every object has a **generation**; ``x-goog-if-generation-match: 0``
succeeds only for an absent object and ``: N`` only while N is the live generation (else 412); a
GET with ``If-None-Match`` on the live ETag is a 304. It checks our use of generations (the
``gcs`` kind passes the generation read, not only the ETag), not Google's server.

Credentials, when ``GcsState.service_accounts`` names any: obstore does no OAuth token exchange
for a service-account key — it signs a JWT with the key's private key (a self-signed JWT, after
google.aip.dev/auth/4111: RS256, ``kid`` the key's id, ``iss`` the account) and sends it as the
bearer token — so the stand-in checks that JWT the way Google does, against the public keys it
knows for the account, and answers anything else 401. No registry GCS emulator checks
credentials at all.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import hashlib
import http.server
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass
class _Object:
    data: bytes
    generation: int
    etag: str
    modified: float


@dataclass
class GcsState:
    buckets: dict[str, dict[str, _Object]] = field(default_factory=dict)
    uploads: dict[str, tuple[str, str, dict[int, bytes]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    generations: Iterator[int] = field(default_factory=lambda: itertools.count(int(time.time())))
    #: Object PUTs seen: (bucket/key, their x-goog-if-generation-match header or None).
    preconditions: list[tuple[str, str | None]] = field(default_factory=list)
    #: Service accounts whose signed JWTs are accepted: client_email -> key id -> public key.
    #: Empty: no credentials checked (as the registry emulators).
    service_accounts: dict[str, dict[str, rsa.RSAPublicKey]] = field(default_factory=dict)
    #: Requests answered 401.
    refused: int = 0

    def new_object(self, data: bytes) -> _Object:
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        return _Object(data, next(self.generations), etag, time.time())


class _Handler(http.server.BaseHTTPRequestHandler):
    state: GcsState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    # -- plumbing ----------------------------------------------------------------------------

    def _target(self) -> tuple[str, str, dict[str, str]]:
        parts = urllib.parse.urlsplit(self.path)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        return urllib.parse.unquote(bucket), urllib.parse.unquote(key), query

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str) -> None:
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>"
        self._answer(status, body.encode(), {"Content-Type": "application/xml"})

    @staticmethod
    def _meta(obj: _Object) -> dict[str, str]:
        return {
            "ETag": obj.etag,
            "x-goog-generation": str(obj.generation),
            "Last-Modified": email.utils.formatdate(obj.modified, usegmt=True),
        }

    def _authenticated(self) -> bool:
        """A bearer JWT signed (RS256) by a key known for its issuer and not expired."""
        accounts = self.state.service_accounts
        if not accounts:
            return True
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        try:
            header, claims, signature = (
                base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")
            )
            head, body = json.loads(header), json.loads(claims)
            public = accounts[body["iss"]][head["kid"]]
            signed = token.rsplit(".", 1)[0].encode()
            public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            return scheme == "Bearer" and head["alg"] == "RS256" and body["exp"] > time.time()
        except (ValueError, KeyError, TypeError, InvalidSignature):
            return False

    def _refuse(self) -> bool:
        if self._authenticated():
            return False
        self._body()
        with self.state.lock:
            self.state.refused += 1
        self._error(401, "AuthenticationRequired")
        return True

    # -- verbs -------------------------------------------------------------------------------

    def do_PUT(self) -> None:
        if self._refuse():
            return
        bucket, key, query = self._target()
        data = self._body()
        with self.state.lock:
            objects = self.state.buckets.get(bucket)
            if objects is None:
                return self._error(404, "NoSuchBucket")
            if "uploadId" in query:
                upload = self.state.uploads.get(query["uploadId"])
                if upload is None:
                    return self._error(404, "NoSuchUpload")
                upload[2][int(query["partNumber"])] = data
                etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
                return self._answer(200, headers={"ETag": etag})
            match = self.headers.get("x-goog-if-generation-match")
            self.state.preconditions.append((f"{bucket}/{key}", match))
            current = objects.get(key)
            if match is not None and int(match) != (current.generation if current else 0):
                return self._error(412, "PreconditionFailed")
            obj = objects[key] = self.state.new_object(data)
        self._answer(200, headers=self._meta(obj))

    def do_GET(self) -> None:
        if self._refuse():
            return
        bucket, key, query = self._target()
        with self.state.lock:
            objects = self.state.buckets.get(bucket)
            if objects is None:
                return self._error(404, "NoSuchBucket")
            if not key:
                return self._list(objects, query)
            obj = objects.get(key)
        if obj is None:
            return self._error(404, "NoSuchKey")
        if self.headers.get("If-None-Match") == obj.etag:
            return self._answer(304, headers=self._meta(obj))
        self._answer(200, obj.data, self._meta(obj))

    do_HEAD = do_GET

    def _list(self, objects: dict[str, _Object], query: dict[str, str]) -> None:
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter")
        contents, prefixes = [], set()
        for key in sorted(objects):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
                continue
            obj = objects[key]
            modified = dt.datetime.fromtimestamp(obj.modified, dt.UTC).isoformat()
            contents.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
                f"<ETag>{escape(obj.etag)}</ETag><Size>{len(obj.data)}</Size></Contents>"
            )
        common = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
            for p in sorted(prefixes)
        )
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult>"
            f"<Prefix>{escape(prefix)}</Prefix>{''.join(contents)}{common}</ListBucketResult>"
        )
        self._answer(200, body.encode(), {"Content-Type": "application/xml"})

    def do_DELETE(self) -> None:
        if self._refuse():
            return
        bucket, key, query = self._target()
        with self.state.lock:
            objects = self.state.buckets.get(bucket)
            if objects is None:
                return self._error(404, "NoSuchBucket")
            if "uploadId" in query:
                self.state.uploads.pop(query["uploadId"], None)
                return self._answer(204)
            if objects.pop(key, None) is None:
                return self._error(404, "NoSuchKey")
        self._answer(204)

    def do_POST(self) -> None:
        if self._refuse():
            return
        bucket, key, query = self._target()
        body = self._body()
        with self.state.lock:
            objects = self.state.buckets.get(bucket)
            if objects is None:
                return self._error(404, "NoSuchBucket")
            if "uploads" in query:
                upload_id = hashlib.sha1(f"{bucket}/{key}/{time.time_ns()}".encode()).hexdigest()
                self.state.uploads[upload_id] = (bucket, key, {})
                xml = (
                    "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult>"
                    f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                    f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
                )
                return self._answer(200, xml.encode(), {"Content-Type": "application/xml"})
            upload = self.state.uploads.pop(query.get("uploadId", ""), None)
            if upload is None:
                return self._error(404, "NoSuchUpload")
            numbers = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)]
            if not numbers or any(n not in upload[2] for n in numbers):
                return self._error(400, "InvalidPart")
            obj = objects[key] = self.state.new_object(b"".join(upload[2][n] for n in numbers))
        xml = (
            "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult>"
            f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
            f"<ETag>{escape(obj.etag)}</ETag></CompleteMultipartUploadResult>"
        )
        self._answer(200, xml.encode(), {**self._meta(obj), "Content-Type": "application/xml"})


@contextlib.contextmanager
def run_gcs() -> Iterator[tuple[str, GcsState]]:
    state = GcsState()
    handler = type("GcsHandler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="gcs-xml", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
