"""Backend error bodies → :mod:`netweave.errors`.

The k8s plugin answers with Go ``http.Error`` plain text and mostly status 500 — a missing
object is a 500 whose text carries MongoDB's "no documents in result" (only instance GET and
profile GET turn it into 404). So it is mapped by status *and* by the few texts its code
produces. SO answers ``{"requestError": {"serviceException"|"policyException": {messageId,
text, variables}}}`` where ``text`` has ``%1``-style placeholders filled from ``variables``.
"""

from __future__ import annotations

import json
import re

import httpx
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)

_LIMIT = 300


def _first_line(text: str) -> str:
    text = " ".join(text.split())
    return text[:_LIMIT]


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""


# -- k8s plugin ----------------------------------------------------------------------------

#: Texts the plugin's code produces for a missing object (Mongo driver / its own messages).
_K8S_NOT_FOUND = (
    "no documents in result",
    # Listing an empty table is an error in the plugin (MongoStore.ReadAll), not [].
    "Did not find any objects",
    "No Profiles Found",
    "Error finding master table",
    "Unable to find Profile",
    "Invalid Definition ID provided",
    "Invalid Resource Bundle ID provided",
)
_K8S_EXISTS = ("already exists",)
_K8S_INVALID = ("Error in file format", "Unable to detect chart name", "required")


def k8splugin_error(response: httpx.Response) -> NetweaveError | None:
    status = response.status_code
    text = _first_line(_text(response)) or f"HTTP {status}"
    message = f"k8s plugin: {text}"
    if status == 404 or (status == 500 and any(t in text for t in _K8S_NOT_FOUND)):
        return NotFound(message)
    if status == 500 and any(t in text for t in _K8S_EXISTS):
        return AlreadyExists(message)
    if status in (400, 422) or (status == 500 and any(t in text for t in _K8S_INVALID)):
        return InvalidInput(message)
    if status == 500 and "CloudRegion" in text:
        # The cloud region has no connectivity-info (kubeconfig) registered in the plugin.
        return BackendError(
            f"{message} (is the cloud region registered with POST /v1/connectivity-info?)"
        )
    if status in (502, 503, 504):
        return BackendUnavailable(f"k8s plugin is unavailable (HTTP {status})")
    return None  # the core's default mapping (401/403, other 5xx)


# -- SO ------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%(\d+)")


def so_request_error(body: object) -> tuple[str | None, str] | None:
    """``(messageId, text)`` of an SO ``requestError`` body, placeholders filled in."""
    if not isinstance(body, dict):
        return None
    wrapper = body.get("requestError")
    if not isinstance(wrapper, dict):
        return None
    for key in ("serviceException", "policyException"):
        exc = wrapper.get(key)
        if isinstance(exc, dict):
            text = str(exc.get("text") or "")
            variables = exc.get("variables") or []
            if isinstance(variables, list):

                def fill(match: re.Match[str], values: list[object] = variables) -> str:
                    index = int(match.group(1)) - 1
                    return str(values[index]) if 0 <= index < len(values) else match.group(0)

                text = _PLACEHOLDER.sub(fill, text)
            message_id = exc.get("messageId")
            return (str(message_id) if message_id else None, text)
    return None


def so_error(response: httpx.Response) -> NetweaveError | None:
    status = response.status_code
    try:
        parsed = so_request_error(json.loads(_text(response) or "null"))
    except ValueError:
        parsed = None
    if parsed is None:
        return None
    message_id, text = parsed
    message = f"SO {message_id or 'error'}: {_first_line(text)}"
    details = {"messageId": message_id} if message_id else {}
    if status == 400:
        return InvalidInput(message, details=details)
    if status == 404:
        return NotFound(message, details=details)
    if status == 409:
        # SO's DuplicateRequestException: another request for the same instance is running.
        return Conflict(message, details=details)
    if status in (502, 503, 504):
        return BackendUnavailable(message, details=details)
    if status in (401, 403):
        return BackendError(f"SO refused the gateway's credentials (HTTP {status})")
    return BackendError(message, details=details)


__all__ = ["k8splugin_error", "so_error", "so_request_error"]
