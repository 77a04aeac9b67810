"""LiveKit's native log records: held back while a room connects, forwarded after."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.native_logs import NativeLogHold
from tests.conftest import SECRETS, LogCapture, livekit_token
from tests.livekit_server import LiveKitServer
from tests.participant import Participant
from tests.waiting import until


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
    participant = Participant()
    await participant.join(livekit.url, livekit_token("native-logs", "user-native-logs"))
    try:
        joined = _native_messages(captured_logs)
        livekit.kill()
        # The SFU going away afterwards is told, through the redacting JSON sink.
        await until(
            lambda: any("resuming connection" in m for m in _native_messages(captured_logs)),
            10,
            lambda: (
                f"a native 'resuming connection' record among {_native_messages(captured_logs)}"
            ),
        )
    finally:
        await participant.leave()
    # Nothing from the join itself (its signalling would say "connecting to").
    assert joined == [], joined
