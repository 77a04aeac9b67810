"""Each turn's latency figures as Prometheus histograms, one per runbook metric.

The buckets are 25 ms wide from 0 to 1 s, where every target sits (barge-in 50 ms,
LLM and TTS 200 ms, first audio 600 ms), then coarse up to 10 s. No label: a room,
identity or transcript must never reach a metric. Field `x_ms` of the turn record
becomes `voice_agent_x_seconds`.
"""

from prometheus_client import Counter, Histogram

FINE_STEP_S = 0.025
LATENCY_BUCKETS_S = (
    *(round(FINE_STEP_S * i, 3) for i in range(1, 41)),
    1.25,
    1.5,
    2.0,
    2.5,
    3.0,
    5.0,
    10.0,
)
TURN_FIELDS = (
    "voice_to_voice_ms",
    "endpointer_latency_ms",
    "llm_ttft_ms",
    "tts_first_audio_latency_ms",
    "e2e_first_audio_ms",
    "barge_in_cutoff_ms",
)
_DESCRIPTIONS = {
    "voice_to_voice_ms": "End of the user's speech to the first agent audio written",
    "endpointer_latency_ms": "End of the user's speech to the turn-end decision",
    "llm_ttft_ms": "LLM request to its first token",
    "tts_first_audio_latency_ms": "First text chunk sent to TTS to its first audio",
    "e2e_first_audio_ms": "User turn end to the first agent audio written",
    "barge_in_cutoff_ms": "Start of the user's interrupting speech to agent playback halted",
}

TURNS = Counter("voice_agent_turns", "Turns measured (one per turn-metrics record)")
HISTOGRAMS = {
    field: Histogram(
        f"voice_agent_{field.removesuffix('_ms')}_seconds",
        _DESCRIPTIONS[field],
        buckets=LATENCY_BUCKETS_S,
    )
    for field in TURN_FIELDS
}


def observe_turn(record: dict) -> None:
    """Count a turn and add each figure it has (milliseconds) to its histogram."""
    TURNS.inc()
    for field, histogram in HISTOGRAMS.items():
        value = record.get(field)
        if value is not None:
            histogram.observe(value / 1000)
