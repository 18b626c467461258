"""Authentication (token, session login and refresh), configuration, retries and error mapping."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from argo_emulator import ArgoEmulator, jwt
from conftest import ctx, helm_upload, make_config, spec
from netweave.adapters import DeploymentChange
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
)
from netweave_argocd.adapter import ArgoCDAdapter, argo_error
from netweave_argocd.auth import SessionAuth, token_expiry
from netweave_argocd.config import ArgoCDConfig
from pydantic import ValidationError

# -- configuration --------------------------------------------------------------------------


def test_config_documented_example_validates() -> None:
    config = ArgoCDConfig.model_validate(
        {
            "serverUrl": "https://argocd.example.com/",
            "authToken": "eyJ-very-secret",
            "namespace": "argocd",
            "applicationNamespace": "nf-apps",
            "defaultProject": "ran",
            "syncPolicy": {"automated": True, "prune": True, "selfHeal": True},
            "destination": {"name": "edge-1"},
            "propagationPolicy": "background",
            "scaleValuePath": "cu.replicas",
            "http": {"requestTimeout": 10, "tls": {"caFile": "/etc/ssl/argocd-ca.pem"}},
            "timeouts": {"read": 20, "write": 300},
        }
    )
    assert config.server_url == "https://argocd.example.com"
    assert config.app_namespace == "nf-apps"
    assert config.destination.name == "edge-1"
    assert config.auth_token is not None
    assert "very-secret" not in repr(config)  # secrets never printed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"serverUrl": "argocd:443", "authToken": "t"}, "http"),
        ({"serverUrl": "https://a"}, "credentials"),
        ({"serverUrl": "https://a", "authToken": "t", "username": "u", "password": "p"}, "either"),
        ({"serverUrl": "https://a", "username": "u"}, "together"),
        ({"serverUrl": "https://a", "authToken": "t", "destination": {}}, "exactly one"),
        (
            {
                "serverUrl": "https://a",
                "authToken": "t",
                "destination": {"server": "s", "name": "n"},
            },
            "exactly one",
        ),
        ({"serverUrl": "https://a", "authToken": "t", "scaleValuePath": "a..b"}, "dotted"),
        ({"serverUrl": "https://a", "authToken": "t", "namespace": "Argo"}, "pattern"),
        ({"serverUrl": "https://a", "authToken": "t", "propagationPolicy": "orphan"}, "foreground"),
        ({"serverUrl": "https://a", "authToken": "t", "surprise": 1}, "Extra inputs"),
    ],
)
def test_config_rejects(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ArgoCDConfig.model_validate(raw)


# -- authentication ---------------------------------------------------------------------------


async def test_static_token_is_sent_as_bearer(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    health = await adapter.health()
    assert health.healthy
    assert health.details["version"] == "v3.5.1+109ca7c"
    assert argo.logins == 0


async def test_wrong_static_token_is_a_backend_error_not_a_client_error(
    argo: ArgoEmulator,
) -> None:
    adapter = ArgoCDAdapter("argo", make_config(argo, authToken="nope"))
    try:
        with pytest.raises(BackendError, match="credentials") as info:
            await adapter.get_deployment("argocd/web")
        assert info.value.status == 502
        health = await adapter.health()
        assert not health.healthy
    finally:
        await adapter.stop()


async def test_session_login_then_reuse(argo: ArgoEmulator) -> None:
    adapter = ArgoCDAdapter("argo", make_config(argo, username="admin", password="s3cret"))
    try:
        package = await adapter.upload_package(helm_upload())
        ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
        await adapter.get_deployment(ref)
        assert argo.logins == 1  # one login, the token reused for every call
        sessions = [r for r in argo.requests if r.operation_id == "SessionService_Create"]
        assert sessions[0].body == {"username": "admin", "password": "s3cret"}
    finally:
        await adapter.stop()


async def test_session_refreshes_on_401_and_replays_the_request(argo: ArgoEmulator) -> None:
    adapter = ArgoCDAdapter("argo", make_config(argo, username="admin", password="s3cret"))
    try:
        package = await adapter.upload_package(helm_upload())
        ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
        argo.expire_sessions()  # e.g. argocd-server restarted with a new signing key
        # A POST (not retried by the client) still succeeds: the auth flow logs in again and
        # replays it once.
        info = await adapter.update_deployment(
            ref, DeploymentChange(values={"a": 1}), ctx(attempt=2)
        )
        assert info.values == {"a": 1}
        assert argo.logins == 2
    finally:
        await adapter.stop()


async def test_session_is_renewed_before_it_expires(argo: ArgoEmulator) -> None:
    argo.session_ttl = 30  # shorter than the refresh margin: every call logs in first
    adapter = ArgoCDAdapter("argo", make_config(argo, username="admin", password="s3cret"))
    try:
        await adapter.health()
        await adapter.health()
        assert argo.logins >= 2
        assert not any(r.operation_id is None for r in argo.requests)
    finally:
        await adapter.stop()


async def test_wrong_password_is_a_backend_error(argo: ArgoEmulator) -> None:
    adapter = ArgoCDAdapter("argo", make_config(argo, username="admin", password="wrong"))
    try:
        with pytest.raises(BackendError, match="refused the login of user 'admin'"):
            await adapter.get_deployment("argocd/web")
    finally:
        await adapter.stop()


def test_token_expiry_reads_the_jwt_exp_claim() -> None:
    exp = int(time.time()) + 100
    assert token_expiry(jwt({"exp": exp})) == exp
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.!!!.c") is None
    assert token_expiry(jwt({"sub": "x"})) is None


def test_session_auth_is_async_only() -> None:
    with httpx.Client(auth=SessionAuth("u", "p")) as client, pytest.raises(RuntimeError):
        client.get("http://127.0.0.1:9/")


# -- retries and outages ---------------------------------------------------------------------


async def test_reads_are_retried_on_503(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(helm_upload())
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.fail_next(2, status=503, code=14, retry_after="0")
    info = await adapter.get_deployment(ref)
    assert info.backend_ref == ref
    argo.fail_operation("ApplicationService_Get", 3, status=503, code=14)
    with pytest.raises(BackendUnavailable):  # 1 + 2 retries, then the gateway gives up
        await adapter.get_deployment(ref)
    assert argo.operation_faults["ApplicationService_Get"] == []


async def test_sync_is_not_retried(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(helm_upload())
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.settle("web")
    argo.fail_operation("ApplicationService_Sync", 1, status=503, code=14)
    with pytest.raises(BackendUnavailable):
        await adapter.update_deployment(ref, DeploymentChange(values={"x": 1}), ctx())
    syncs = [r for r in argo.requests if r.operation_id == "ApplicationService_Sync"]
    assert len(syncs) == 2  # the create's sync, and the update's — sent once
    # Retrying the step later (the gateway's FAILED_TEMP → retry) completes it.
    info = await adapter.update_deployment(ref, DeploymentChange(values={"x": 1}), ctx())
    assert info.values == {"x": 1}


async def test_unreachable_argo_is_backend_unavailable(argo: ArgoEmulator) -> None:
    config = make_config(argo, serverUrl="http://127.0.0.1:9", http={"retries": 0})
    adapter = ArgoCDAdapter("argo", config)
    try:
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await adapter.get_deployment("argocd/web")
        health = await adapter.health()
        assert not health.healthy
    finally:
        await adapter.stop()


async def test_slow_argo_is_backend_timeout(argo: ArgoEmulator) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    adapter = ArgoCDAdapter(
        "argo",
        make_config(argo, http={"retries": 1, "backoff": 0}),
        transport=httpx.MockTransport(slow),
    )
    try:
        with pytest.raises(BackendTimeout):
            await adapter.get_deployment("argocd/web")
    finally:
        await adapter.stop()


# -- grpc-gateway error bodies ---------------------------------------------------------------


def _response(status: int, code: int | None, message: str) -> httpx.Response:
    body: dict[str, Any] = {"error": message, "message": message}
    if code is not None:
        body["code"] = code
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "code", "message", "error", "http"),
    [
        (404, 5, 'applications.argoproj.io "x" not found', NotFound, 404),
        (409, 6, "exists", AlreadyExists, 409),
        (400, 3, "existing application spec is different, use upsert", AlreadyExists, 409),
        (400, 3, "application destination can't have both", InvalidInput, 400),
        (400, 9, "another operation is already in progress", Conflict, 409),
        (403, 7, "permission denied", BackendError, 502),
        (401, 16, "invalid session", BackendError, 502),
        (503, 14, "unavailable", BackendUnavailable, 503),
        (504, 4, "deadline", BackendTimeout, 504),
        (404, None, "plain 404", NotFound, 404),
    ],
)
def test_argo_error_mapping(
    status: int, code: int | None, message: str, error: type[Exception], http: int
) -> None:
    mapped = argo_error(_response(status, code, message))
    assert isinstance(mapped, error)
    assert mapped.status == http


def test_unknown_errors_fall_back_to_the_default_mapping() -> None:
    assert argo_error(_response(500, 2, "rpc error")) is None
    assert argo_error(httpx.Response(500, text="<html>")) is None


async def test_conflicting_sync_is_a_409(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(helm_upload())
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    # The first attempt's sync is still queued: a *first* attempt of another step conflicts.
    with pytest.raises(Conflict) as info:
        await adapter.update_deployment(ref, DeploymentChange(values={"b": 2}), ctx())
    assert info.value.status == 409
