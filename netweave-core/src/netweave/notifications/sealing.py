"""Subscription callback secrets encrypted at rest (BASIC password, OAuth2 client secret).

The gateway must present these secrets to subscribers, so it cannot hash them; it encrypts them
with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) before they reach the database
and decrypts them only to call back. A database dump or backup alone no longer reveals them.

The key
    ``NETWEAVE_SECRET_KEY`` (a Fernet key: 32 random bytes, URL-safe base64, e.g. from
    ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``),
    else ``<data_dir>/secret.key``, generated at first start (mode 0600). Replicas sharing a
    database must share the key: set ``NETWEAVE_SECRET_KEY`` to the same value on each (a
    replica with another key cannot decrypt the secrets others stored, and says so, naming both
    key ids, on each delivery it attempts for such a subscription). Losing the key loses the
    stored secrets: subscriptions must then be created again.

Stored form: each secret string becomes ``enc:v1:<key id>:<Fernet token>`` (the key id is the
first 8 hex digits of the key's SHA-256, so a mismatch is named, never guessed). Values without
that prefix (rows written before encryption) are read as they are.
"""

from __future__ import annotations

import binascii
import copy
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken

from netweave.errors import InvalidInput
from netweave.logging import register_secret

_log = logging.getLogger("netweave.notifications")

SECRET_KEY_ENV: Final = "NETWEAVE_SECRET_KEY"  # noqa: S105 - a variable name
KEY_FILE: Final = "secret.key"
_PREFIX: Final = "enc:v1:"
#: Where the secrets sit in an ``authentication`` record (the API's camelCase form).
_SECRET_FIELDS: Final = (
    ("paramsBasic", "password"),
    ("paramsOauth2ClientCredentials", "clientPassword"),
)


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with this process's key."""


class SecretSealer:
    """Seals with ``key``; without one (``problem`` says why), subscriptions carrying secrets
    are refused and only rows stored in clear can be used."""

    def __init__(self, key: bytes | None, *, problem: str = "") -> None:
        self._fernet: Fernet | None = None
        self._problem = problem
        self.key_id = "none"
        if key is None:
            return
        try:
            self._fernet = Fernet(key)
        except (ValueError, binascii.Error):
            raise InvalidInput(
                f"{SECRET_KEY_ENV} must be a Fernet key (32 bytes, URL-safe base64)"
            ) from None
        self.key_id = hashlib.sha256(key).hexdigest()[:8]

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise SecretUnavailable(f"no key for callback secrets: {self._problem}")
        return self._fernet

    def seal(self, record: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """``record`` with its secret fields encrypted (a copy; already sealed ones kept)."""
        return _with_secrets(record, self._seal_value)

    def open(self, record: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """``record`` with its secrets in clear (a copy); raises :class:`SecretUnavailable`."""
        return _with_secrets(record, self._open_value)

    def _seal_value(self, value: str) -> str:
        if value.startswith(_PREFIX):
            return value
        token = self._require().encrypt(value.encode()).decode()
        return f"{_PREFIX}{self.key_id}:{token}"

    def _open_value(self, value: str) -> str:
        if not value.startswith(_PREFIX):
            return value  # stored before secrets were encrypted
        key_id, _, token = value.removeprefix(_PREFIX).partition(":")
        fernet = self._require()
        if key_id != self.key_id:
            raise SecretUnavailable(
                f"callback secret was encrypted with key {key_id}, this process has key "
                f"{self.key_id}: give every replica the same {SECRET_KEY_ENV}"
            )
        try:
            plain = fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                f"callback secret does not decrypt with key {self.key_id}"
            ) from None
        register_secret(plain)
        return plain


def load_sealer(data_dir: Path, env: Mapping[str, str] | None = None) -> SecretSealer:
    """The key from ``NETWEAVE_SECRET_KEY``, else ``<data_dir>/secret.key`` (made if absent)."""
    env = os.environ if env is None else env
    configured = env.get(SECRET_KEY_ENV)
    if configured:
        register_secret(configured)
        return SecretSealer(configured.strip().encode())
    path = data_dir / KEY_FILE
    try:
        return _from_file(path)
    except OSError as exc:
        # A read-only data directory: the gateway still runs; secrets are refused, not stored
        # in clear.
        problem = f"cannot use {path} ({exc.strerror or exc}); set {SECRET_KEY_ENV}"
        _log.error("callback secrets cannot be stored: %s", problem)
        return SecretSealer(None, problem=problem)


def _from_file(path: Path) -> SecretSealer:
    try:
        return SecretSealer(path.read_bytes().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes starting on one data dir must not each write their own key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process is writing it right now: read it once it is there (bounded).
        for _ in range(50):
            existing = path.read_bytes().strip()
            if existing:
                return SecretSealer(existing)
            time.sleep(0.02)
        return SecretSealer(path.read_bytes().strip())
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    sealer = SecretSealer(key)
    _log.warning(
        "generated the callback-secret key %s in %s; replicas sharing the database need the "
        "same key (%s)",
        sealer.key_id,
        path,
        SECRET_KEY_ENV,
    )
    return sealer


def _with_secrets(
    record: Mapping[str, Any] | None, change: Callable[[str], str]
) -> dict[str, Any] | None:
    """A copy of ``record`` with ``change`` applied to each secret field that holds a string."""
    if record is None:
        return None
    result = copy.deepcopy(dict(record))
    for section, name in _SECRET_FIELDS:
        params = result.get(section)
        if isinstance(params, dict) and isinstance(params.get(name), str):
            params[name] = change(params[name])
    return result


__all__ = [
    "KEY_FILE",
    "SECRET_KEY_ENV",
    "SecretSealer",
    "SecretUnavailable",
    "load_sealer",
]
