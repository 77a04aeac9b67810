"""LiveKit's native log records: held back while a room connects, forwarded after."""

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.native_logs import NativeLogHold
from bot.tokens import mint_token
from tests.conftest import SECRETS, LogCapture
from tests.livekit_server import LiveKitServer
from tests.participant import Participant


def test_forwarding_stays_off_until_the_last_of_overlapping_connects_ends() -> None:
    switched: list[bool] = []
    hold = NativeLogHold(switched.append)
    with hold.connecting():
        with hold.connecting():
            pass
        assert switched == [False]
    assert switched == [False, True]


def test_a_failed_connect_turns_forwarding_back_on() -> None:
    switched: list[bool] = []
    hold = NativeLogHold(switched.append)
    with pytest.raises(ConnectionError), hold.connecting():
        raise ConnectionError("unreachable")
    assert switched == [False, True]


@pytest.fixture
async def livekit(tmp_path: Path) -> AsyncIterator[LiveKitServer]:
    server = await LiveKitServer.start(
        tmp_path, SECRETS["livekit_api_key"], SECRETS["livekit_api_secret"]
    )
    yield server
    server.stop()


def _native_messages(logs: LogCapture) -> list[str]:
    return [r["message"] for r in logs.records() if r["message"].startswith("livekit")]


async def test_a_join_logs_no_native_records_and_a_lost_server_still_does(
    livekit: LiveKitServer, captured_logs: LogCapture
) -> None:
    token = mint_token(
        api_key=SECRETS["livekit_api_key"],
        api_secret=SECRETS["livekit_api_secret"],
        room="native-logs",
        identity="user-native-logs",
        participant_type="user",
        ttl=datetime.timedelta(minutes=5),
    ).jwt
    participant = Participant()
    await participant.join(livekit.url, token)
    try:
        joined = _native_messages(captured_logs)
        livekit.kill()
        for _ in range(100):  # The native side sends its records in batches.
            if any("resuming connection" in m for m in _native_messages(captured_logs)):
                break
            await asyncio.sleep(0.1)
    finally:
        await participant.leave()
    # Nothing from the join itself (its signalling would say "connecting to")...
    assert joined == [], joined
    # ...but the SFU going away afterwards is told, through the redacting JSON sink.
    native = _native_messages(captured_logs)
    assert any("resuming connection" in m for m in native), native
