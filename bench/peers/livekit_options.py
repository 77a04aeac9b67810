"""The LiveKit Agents 1.8.9 session in two configurations, every option we set written down.

Both share the engines (its OpenAI plugins on our stand-ins' OpenAI-compatible
endpoints: HTTP transcription per utterance, streamed chat completions, streamed speech
as 24 kHz PCM) and the worker options. They differ only in turn handling:

- `default`: what a user gets by setting nothing. Silero VAD from
  `livekit-plugins-silero` with `VAD.load()`'s defaults (0.05 s to start speech, 0.55 s
  of silence to end it, threshold 0.5); `turn_handling` not given, so the session picks
  its local turn-detector model (`turn-detector-v1-mini`: not in dev mode, no cloud
  URL), endpointing 0.5–3.0 s, VAD interruptions (its adaptive detector is off in
  production mode) after 0.5 s of speech, false-interruption resume after 2 s,
  preemptive LLM generation, 3 s of AEC warm-up from its first reply.
- `matched`: its turn handling set like our bot's defaults (`VAD_START_SECS=0.2`,
  `VAD_STOP_SECS=0.4`, `VAD_CONFIDENCE=0.5`, turn ends once the VAD's silence has passed
  and the final transcript is in, VAD-confirmed speech pauses the reply, a word ends it,
  silence resumes it). Silero VAD with
  `min_speech_duration=0.2`, `min_silence_duration=0.4`, `activation_threshold=0.5`,
  `prefix_padding_duration=0.3` (our STT pre-roll); `turn_detection="vad"`;
  endpointing `min_delay=0.4` (counted from the last voiced audio, so it adds nothing
  after the VAD's 0.4 s) and `max_delay=0.4`; interruption `mode="vad"`,
  `min_duration=0.2`, `resume_false_interruption=True` with
  `false_interruption_timeout=1.0` (ours: `FALSE_INTERRUPTION_TIMEOUT_MS=1000`),
  `min_words=0`; no AEC warm-up (ours has none).

  Why `min_words=0` although ours has `MIN_INTERRUPTION_WORDS=1`: both then pause the
  reply when the VAD confirms speech, interrupt it for good once a transcript with a word
  arrives, and resume it when none does. LiveKit's `min_words` is checked before it
  pauses (`AgentActivity._interrupt_by_audio_activity` returns while the transcript has
  fewer words), so with its HTTP STT (one upload per VAD segment) `min_words=1` would
  keep the reply playing until the speaker stops and the upload is transcribed. Ours
  counts words after the pause (`processors/overlap_turn_start.py`). Backchannels:
  LiveKit 1.8.9 has no word list; only its adaptive interruption detector (a LiveKit
  Inference model behind its cloud URL, `livekit/agents/inference/interruption.py`,
  with `backchannel_boundary`) tells "mm-hm" from a barge-in, so offline any transcript
  with a word ("mm-hm" counts as one) interrupts. A `min_words=2` would let "mm-hm"
  through and also "Stop!", so it stays 0.
  Preemptive generation keeps its default (on): it is its own latency feature, and
  with VAD turn detection the turn ends as the transcript lands, so it rarely fires.

Options we set in both that are not its defaults, and why:
- TTS `response_format="pcm"`: its default `mp3` needs an encoder our stand-ins lack;
  PCM is what our bot asks Chatterbox for too.
- STT `language="en"` (its default) and the model name our Voxtral stand-in serves.
- Worker: `load_fnc` always 0 (on this shared 2-core machine its default 0.7 CPU
  threshold refuses jobs because of other processes, which is not what we measure),
  `num_idle_processes=2` (its production default on 2 cores, stated), HTTP health port
  0 (its 8081 default collides with our session server's), explicit dispatch by
  `agent_name`, so it never joins our bot's rooms.
"""

from dataclasses import dataclass
from typing import Any, Literal

PeerConfig = Literal["default", "matched"]
CONFIGS: tuple[PeerConfig, ...] = ("default", "matched")
AGENT_NAME = "compare-peer"
WORKER_IDLE_PROCESSES = 2


@dataclass
class PeerEngines:
    """Where the peer's plugins find our engine stand-ins, and their keys."""

    stt_base_url: str
    stt_api_key: str
    stt_model: str
    llm_base_url: str
    llm_api_key: str
    llm_model: str
    tts_base_url: str
    tts_api_key: str


def vad_options(config: PeerConfig) -> dict[str, Any]:
    """Keyword arguments for `silero.VAD.load`."""
    if config == "default":
        return {}
    return {
        "min_speech_duration": 0.2,
        "min_silence_duration": 0.4,
        "activation_threshold": 0.5,
        "prefix_padding_duration": 0.3,
    }


def session_options(config: PeerConfig) -> dict[str, Any]:
    """Keyword arguments for `AgentSession`, besides the engines and the VAD."""
    if config == "default":
        return {}
    return {
        "turn_handling": {
            "turn_detection": "vad",
            "endpointing": {"mode": "fixed", "min_delay": 0.4, "max_delay": 0.4},
            "interruption": {
                "enabled": True,
                "mode": "vad",
                "min_duration": 0.2,
                "min_words": 0,
                "resume_false_interruption": True,
                "false_interruption_timeout": 1.0,
            },
        },
        "aec_warmup_duration": None,
    }
