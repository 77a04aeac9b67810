"""The session server's HTTP API: tokens, validation, trust, busy rooms, CORS, operators."""

import os
import time
from collections.abc import Iterator

import jwt
import pytest

from tests.conftest import ADMIN, ADMIN_TOKEN, LOOPBACK, REMOTE, SECRETS, ApiFactory

pytestmark = pytest.mark.server


def decode(token: str) -> dict:
    return jwt.decode(token, SECRETS["livekit_api_secret"], algorithms=["HS256"])


def test_user_token_grants_one_room_and_expires(api: ApiFactory) -> None:
    client = api(token_ttl_seconds=600)
    before = time.time()
    response = client.post("/token", json={"room": "kitchen-1", "identity": "ada"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["room"], body["identity"], body["url"]) == (
        "kitchen-1",
        "ada",
        "ws://127.0.0.1:7880",
    )
    claims = decode(body["token"])
    assert claims["sub"] == "ada"
    assert claims["iss"] == SECRETS["livekit_api_key"]
    video = claims["video"]
    assert video["room"] == "kitchen-1" and video["roomJoin"] is True
    assert video["canPublish"] is True and video["canSubscribe"] is True
    assert video["canPublishData"] is True
    assert video["canPublishSources"] == ["microphone"]
    assert not video.get("roomAdmin") and not video.get("roomCreate") and not video.get("agent")
    assert before + 600 - 5 <= claims["exp"] <= time.time() + 600 + 5
    expires_at = body["expires_at"]
    assert abs(jwt.api_jwt.datetime.fromisoformat(expires_at).timestamp() - claims["exp"]) <= 1


def test_observer_token_only_listens(api: ApiFactory) -> None:
    claims = decode(
        api()
        .post("/token", json={"room": "r1", "identity": "ops", "participant_type": "observer"})
        .json()["token"]
    )
    video = claims["video"]
    assert video["canSubscribe"] is True
    assert video["canPublish"] is False and video["canPublishData"] is False
    assert video["hidden"] is True


def test_agent_token_needs_admin_bearer_when_admin_token_set(api: ApiFactory) -> None:
    client = api(admin_token=ADMIN_TOKEN)
    request = {"room": "test", "identity": "agent", "participant_type": "agent"}
    refused = client.post("/token", json=request)
    assert refused.status_code == 403
    assert "ADMIN_TOKEN" in refused.json()["detail"]
    wrong = client.post("/token", json=request, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    granted = client.post("/token", json=request, headers=ADMIN)
    assert granted.status_code == 200
    claims = decode(granted.json()["token"])
    assert claims["video"]["agent"] is True and claims["kind"] == "agent"


def test_agent_token_without_admin_token_only_from_loopback(api: ApiFactory) -> None:
    request = {"room": "test", "identity": "agent", "participant_type": "agent"}
    assert api(client=LOOPBACK).post("/token", json=request).status_code == 200
    assert api(client=REMOTE).post("/token", json=request).status_code == 403
    relayed = api(client=LOOPBACK).post(
        "/token", json=request, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert relayed.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room": ""}, "room"),
        ({"room": "a" * 65}, "room"),
        ({"room": "../x"}, "room"),
        ({"room": "two words"}, "room"),
        ({"room": "café"}, "room"),
        ({"room": "line\n"}, "room"),
        ({"room": 42}, "room"),
        ({"room": ["a"]}, "room"),
        ({"room": "ok", "identity": "no/slash"}, "identity"),
        ({"room": "ok", "identity": "x" * 65}, "identity"),
        ({"room": "ok", "participant_type": "admin"}, "participant_type"),
        ({"identity": "ada"}, "room"),
        ({"room": "ok", "identity": "agent"}, "identity"),
    ],
)
def test_invalid_token_requests_name_the_field(api: ApiFactory, body: object, field: str) -> None:
    response = api().post("/token", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["reason"] == "invalid_request"
    assert error["detail"].startswith(f"{field}:")


@pytest.mark.parametrize("path", ["/token", "/connect"])
@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2]",
        b'"room"',
        b"{not json",
        b"\xff\xfe",
        b'{"room": {"a": 1}}',
        b"7",
        b'{"room": NaN}',
    ],
)
def test_malformed_bodies_are_4xx_json(api: ApiFactory, path: str, content: bytes) -> None:
    response = api().post(path, content=content, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


def test_token_without_body_is_422(api: ApiFactory) -> None:
    response = api().post("/token")
    assert response.status_code == 422
    assert "body" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/token", "/connect"])
def test_huge_body_is_413(api: ApiFactory, path: str) -> None:
    huge = b'{"room": "' + b"a" * 2_000_000 + b'"}'
    response = api().post(path, content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["reason"] == "body_too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"room": "'
        for _ in range(100):
            yield b"a" * 10_000
        yield b'"}'

    streamed = api().post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_connect_gives_a_fresh_unguessable_room_and_token(api: ApiFactory) -> None:
    client = api()
    first = client.post("/connect").json()
    second = client.post("/connect", json={}).json()
    assert first["room"] != second["room"]
    assert len(first["room"]) >= 16 and first["session_id"] != second["session_id"]
    claims = decode(first["token"])
    assert claims["video"]["room"] == first["room"] and claims["sub"] == first["identity"]
    assert first["url"] == "ws://127.0.0.1:7880"


def test_connect_hands_browsers_the_public_livekit_url(api: ApiFactory) -> None:
    client = api(livekit_public_url="wss://lk.example.com")
    assert client.post("/connect").json()["url"] == "wss://lk.example.com"


def test_same_identity_rejoins_and_another_identity_gets_409(api: ApiFactory) -> None:
    client = api()
    first = client.post("/connect", json={"room": "den", "identity": "ada"})
    again = client.post("/connect", json={"room": "den", "identity": "ada"})
    assert first.status_code == again.status_code == 200
    assert first.json()["session_id"] == again.json()["session_id"]
    assert decode(again.json()["token"])["sub"] == "ada"
    intruder = client.post("/connect", json={"room": "den", "identity": "eve"})
    assert intruder.status_code == 409
    assert intruder.json()["reason"] == "room_busy"
    assert "den" in intruder.json()["detail"]


def test_busy_room_token_refused_to_remote_caller(api: ApiFactory) -> None:
    client = api(client=REMOTE)
    assert client.post("/connect", json={"room": "den", "identity": "ada"}).status_code == 200
    assert client.post("/token", json={"room": "den", "identity": "ada"}).status_code == 200
    assert client.post("/token", json={"room": "den", "identity": "eve"}).status_code == 409


def test_rate_limit_answers_429_with_retry_after(api: ApiFactory) -> None:
    client = api(rate_limit_per_minute=3)
    statuses = [client.post("/token", json={"room": "r"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.post("/connect")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["reason"] == "rate_limited"


def test_cors_allows_only_configured_origins(api: ApiFactory) -> None:
    client = api(cors_allow_origins="http://localhost:5173,https://app.example.com")
    for origin in ("http://localhost:5173", "https://app.example.com"):
        response = client.options(
            "/connect",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert response.headers.get("access-control-allow-origin") == origin
        assert response.headers.get("access-control-allow-credentials") is None
    for origin in ("https://evil.example.com", "http://localhost:5174", "null"):
        preflight = client.options(
            "/connect", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers
        simple = client.post("/token", json={"room": "r"}, headers={"Origin": origin})
        assert "access-control-allow-origin" not in simple.headers


def test_health_and_readiness(api: ApiFactory) -> None:
    client = api(max_concurrent_sessions=1)
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"ready": True, "sessions": 0, "max_sessions": 1}
    client.post("/connect")
    full = client.get("/ready")
    assert full.status_code == 503 and full.json()["ready"] is False
    assert full.headers["Retry-After"]


def test_operator_endpoints_need_the_admin_bearer(api: ApiFactory) -> None:
    disabled = api()
    assert disabled.get("/sessions").status_code == 403
    client = api(admin_token=ADMIN_TOKEN)
    assert client.get("/sessions").status_code == 401
    assert client.get("/sessions", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.delete("/sessions/den").status_code == 401
    room = client.post("/connect", json={"room": "den", "identity": "ada"}).json()["room"]
    listed = client.get("/sessions", headers=ADMIN).json()
    assert [(s["room"], s["identity"]) for s in listed] == [(room, "ada")]
    assert listed[0]["pid"] > 0
    assert client.delete("/sessions/den", headers=ADMIN).status_code == 204
    assert client.get("/sessions", headers=ADMIN).json() == []
    missing = client.delete("/sessions/den", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["reason"] == "not_found"
    assert client.delete("/sessions/..%2Fx", headers=ADMIN).status_code in (404, 422)


def test_unknown_paths_are_json_404(api: ApiFactory) -> None:
    response = api().get("/nope")
    assert response.status_code == 404
    assert response.json()["reason"] == "not_found"


def test_built_client_is_served_at_root(api: ApiFactory, tmp_path: os.PathLike) -> None:
    (tmp_path / "index.html").write_text("<title>voice agent</title>")  # type: ignore[operator]
    client = api(client_dist_dir=str(tmp_path))
    assert "voice agent" in client.get("/").text
    assert client.get("/health").json() == {"status": "ok"}
