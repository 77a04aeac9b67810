"""What the two Voxtral speech-to-text services share: audio format, settings, messages.

Voxtral is served by vLLM and reached one of two ways, chosen by `VOXTRAL_MODE`:
`services/voxtral_realtime_stt.py` streams speech over `ws /v1/realtime` while the user
talks; `services/voxtral_segmented_stt.py` posts each VAD-segmented utterance to
`POST /v1/audio/transcriptions`. Both retry a timed-out utterance once, then report a
non-fatal error; the session carries on and the next utterance is transcribed normally.
"""

from dataclasses import dataclass

from pipecat.services.settings import STTSettings

VOXTRAL_SAMPLE_RATE = 16000
DEFAULT_MODEL = "mistralai/Voxtral-Mini-4B-Realtime-2602"
TIMEOUT_MESSAGE = "Speech recognition timed out; please say that again."
# Speech end to final transcript, p99, for Voxtral Realtime's built-in delay; the turn
# strategy waits this long only when no finalized transcript arrives.
VOXTRAL_TTFS_P99_S = 1.0


@dataclass
class VoxtralSTTSettings(STTSettings):
    """Runtime-changeable Voxtral settings.

    Parameters:
        model: The model the server must serve.
        language: Always None: Voxtral detects the language itself.
    """


def voxtral_settings(changes: VoxtralSTTSettings | None) -> VoxtralSTTSettings:
    """The full default settings with the caller's changes applied."""
    settings = VoxtralSTTSettings(model=DEFAULT_MODEL, language=None)
    if changes is not None:
        settings.apply_update(changes)
    return settings


def bearer_headers(api_key: str | None) -> dict[str, str]:
    """The Authorization header, when the server requires a key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
