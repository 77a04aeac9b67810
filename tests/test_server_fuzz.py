"""Property-based fuzz of the API, shaped by the app's own OpenAPI: no input gives a 5xx."""

import string
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.main import create_app
from tests.conftest import ADMIN_TOKEN, LOOPBACK, server_settings

pytestmark = pytest.mark.server

CASES_PER_ENDPOINT = 300

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=64)
near_names = names | st.text(max_size=70) | st.sampled_from(["", "../x", "a b", "é", "agent"])
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from(["Bearer ", "Basic x", f"Bearer {ADMIN_TOKEN}"])
        | st.text(string.printable.strip(), max_size=40).map(lambda t: f"Bearer {t}"),
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        ),
        "X-Forwarded-For": st.sampled_from(["203.0.113.9", "127.0.0.1"]),
    },
)


def body_fields(client: TestClient, path: str) -> list[str]:
    """The request body's properties, as the app's OpenAPI document declares them."""
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]
    ref = ref.get("$ref") or next(s["$ref"] for s in ref["anyOf"] if "$ref" in s)
    schema = client.get("/openapi.json").json()["components"]["schemas"][ref.split("/")[-1]]
    return list(schema["properties"])


def bodies(fields: list[str]) -> st.SearchStrategy:
    """Objects with the declared fields (valid-looking or not) and strays; or anything."""
    field_values = names | near_names | json_values | st.sampled_from(["user", "observer"])
    shaped = st.fixed_dictionaries(
        {}, optional={field: field_values for field in fields}
    ) | st.dictionaries(st.sampled_from(fields) | st.text(max_size=8), field_values, max_size=5)
    return shaped | json_values


@pytest.mark.parametrize("path", ["/token", "/connect"])
def test_no_request_gives_a_server_error(path: str) -> None:
    # `true` as the bot: spawned for real, gone at once, so capacity never runs out.
    app = create_app(
        server_settings(max_concurrent_sessions=1000, admin_token=ADMIN_TOKEN, bot_command="true")
    )
    statuses: list[int] = []
    with TestClient(app, client=LOOPBACK) as client:
        fields = body_fields(client, path)
        assert "room" in fields

        @settings(
            max_examples=CASES_PER_ENDPOINT,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(body=bodies(fields), raw=st.binary(max_size=64) | st.none(), extra=headers)
        def post(body: object, raw: bytes | None, extra: dict[str, str]) -> None:
            if raw is not None and raw[:1] == b"\x00":
                response = client.post(path, content=raw, headers=extra)
            else:
                response = client.post(path, json=body, headers=extra)
            statuses.append(response.status_code)
            assert response.status_code < 500, (body, response.text)
            if response.status_code >= 400:
                assert response.json()["detail"]

        post()
    assert len(statuses) >= CASES_PER_ENDPOINT
    # The fuzz reached past validation too, not only into 422s.
    assert 200 in statuses and 422 in statuses


def test_operator_paths_never_give_a_server_error() -> None:
    app = create_app(server_settings(admin_token=ADMIN_TOKEN))
    with TestClient(app, client=LOOPBACK) as client:

        @settings(max_examples=100, deadline=None, derandomize=True)
        @given(room=near_names, extra=headers, method=st.sampled_from(["GET", "DELETE"]))
        def call(room: str, extra: dict[str, str], method: str) -> None:
            path = "/sessions" if method == "GET" else f"/sessions/{quote(room, safe='')}"
            response = client.request(method, path, headers=extra)
            assert response.status_code < 500, response.text

        call()
