"""The waits in WebRTC the pipeline never sees, read or known, counted in the turn."""

import asyncio
from typing import Any

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from bot.measured_livekit_input import JitterBufferMeter, transport_delays
from processors.transport_delay_frame import TransportDelayFrame
from processors.turn_metrics import TurnMetricsObserver

pytestmark = pytest.mark.unit
MS = 1_000_000


def test_the_wait_is_averaged_over_what_was_played_out_since_the_last_reading() -> None:
    meter = JitterBufferMeter()
    assert meter.read(delay_s=2.0, emitted=100) == pytest.approx(0.02)
    # 50 more samples waited 4 s in all: 80 ms each.
    assert meter.read(delay_s=6.0, emitted=150) == pytest.approx(0.08)
    assert meter.read(delay_s=6.0, emitted=150) is None


def test_a_new_track_starts_its_totals_over() -> None:
    meter = JitterBufferMeter()
    meter.read(delay_s=60.0, emitted=3000)
    assert meter.read(delay_s=0.3, emitted=10) == pytest.approx(0.03)


def test_the_listeners_jitter_buffer_counts_as_long_as_the_bots() -> None:
    """The bot cannot read the listener's receiver; it takes its own wait for it."""
    quiet, uneven = transport_delays(0.02), transport_delays(0.1)
    assert uneven.uplink_s - quiet.uplink_s == pytest.approx(0.08)
    assert uneven.downlink_s - quiet.downlink_s == pytest.approx(0.08)
    # Besides the jitter buffers: half an Opus frame up; a 10 ms tick's half and a frame down.
    assert quiet.uplink_s == pytest.approx(0.03)
    assert quiet.downlink_s == pytest.approx(0.045)


async def turn_record(*frames: tuple[float, Frame, FrameProcessor]) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    observer = TurnMetricsObserver(room="r")

    @observer.event_handler("on_turn_metrics")
    async def keep(_: TurnMetricsObserver, record: dict[str, Any]) -> None:
        records.append(record)

    sink = FrameProcessor()
    for at_s, frame, source in frames:
        await observer.on_push_frame(
            FramePushed(source, sink, frame, FrameDirection.DOWNSTREAM, int(at_s * 1000 * MS))
        )
    await observer.on_push_frame(
        FramePushed(sink, sink, UserStoppedSpeakingFrame(), FrameDirection.DOWNSTREAM, 10**12)
    )
    for _ in range(100):  # the handler may run as a task
        if records:
            break
        await asyncio.sleep(0.01)
    return records[0]


async def test_the_turn_counts_from_the_voice_to_the_audio_leaving_the_transport() -> None:
    vad, output = FrameProcessor(), BaseOutputTransport(TransportParams())
    record = await turn_record(
        (1.0, VADUserStoppedSpeakingFrame(stop_secs=0.1), vad),
        (1.01, TransportDelayFrame(uplink_s=0.05, downlink_s=0.03), vad),
        (1.2, UserStoppedSpeakingFrame(), vad),
        (1.5, BotStartedSpeakingFrame(), output),
    )
    # Voice reached the VAD at 0.9 s after 50 ms in the transport: it ended at 0.85 s.
    # The first audio, written at 1.5 s, left 30 ms later.
    assert record["voice_to_voice_ms"] == pytest.approx(680)
    assert record["endpointer_latency_ms"] == pytest.approx(350)
    assert record["e2e_first_audio_ms"] == pytest.approx(330)
