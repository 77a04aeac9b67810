"""When the VAD hears the user stop, and what silence it says it stopped on."""

from collections.abc import Callable

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import InputAudioRawFrame, VADUserStoppedSpeakingFrame
from pipecat.tests.utils import run_test

from processors.measured_stop_vad import MeasuredStopVADProcessor
from processors.pausing_vad import PausingSileroVADAnalyzer
from processors.sound_frames import UserSoundStartedFrame

pytestmark = pytest.mark.unit

RATE = 16000
CHUNK = RATE // 100
PAUSE = VADParams(confidence=0.5, start_secs=0.2, stop_secs=0.064)
QUESTION = "What is the weather like in Paris this afternoon?"
# Voiceless stops inside words ("doctor", "biting", "kept") leave short closures.
CLOSURES = "Could you tell me about the happy puppy that kept biting the doctor?"


def with_room_noise(speech: bytes, *, lead_s: float = 0.2, tail_s: float = 1.0) -> bytes:
    """Speech between stretches of silence, all under a quiet microphone's hiss."""
    samples = np.concatenate(
        [
            np.zeros(int(lead_s * RATE)),
            np.frombuffer(speech, dtype=np.int16).astype(np.float64),
            np.zeros(int(tail_s * RATE)),
        ]
    )
    samples += np.random.default_rng(0).normal(0, 30, samples.size)
    return np.clip(samples, -32768, 32767).astype(np.int16).tobytes()


def last_voiced(audio: bytes) -> int:
    """Index just past the last 10 ms louder than -40 dBFS."""
    samples = np.frombuffer(audio, dtype=np.int16).astype(np.float64)
    blocks = samples[: samples.size // CHUNK * CHUNK].reshape(-1, CHUNK)
    return int((np.flatnonzero(np.sqrt((blocks**2).mean(axis=1)) > 330)[-1] + 1) * CHUNK)


async def stops(analyzer: SileroVADAnalyzer, audio: bytes) -> list[tuple[int, float | None]]:
    """Feed 10 ms chunks; (sample at which each stop came, silence the analyzer measured)."""
    analyzer.set_sample_rate(RATE)
    out: list[tuple[int, float | None]] = []
    previous = VADState.QUIET
    for start in range(0, len(audio) // 2, CHUNK):
        state = await analyzer.analyze_audio(audio[start * 2 : (start + CHUNK) * 2])
        if state == VADState.QUIET and previous in (VADState.SPEAKING, VADState.STOPPING):
            out.append((start + CHUNK, getattr(analyzer, "silence_secs", None)))
        previous = state
    return out


def pausing() -> PausingSileroVADAnalyzer:
    return PausingSileroVADAnalyzer(params=PAUSE, resume_secs=0.168)


async def test_the_pause_is_heard_sooner_than_silero_alone_hears_it(
    speak: Callable[[str], bytes],
) -> None:
    audio = with_room_noise(speak(QUESTION))
    end = last_voiced(audio)
    [(ours, _)] = await stops(pausing(), audio)
    [(silero, _)] = await stops(SileroVADAnalyzer(params=PAUSE), audio)
    assert (ours - end) / RATE <= 0.1
    assert ours < silero


async def test_closures_inside_words_do_not_count_as_a_pause(
    speak: Callable[[str], bytes],
) -> None:
    audio = with_room_noise(speak("The happy puppy kept biting the doctor"))
    end = last_voiced(audio)
    assert [at for at, _ in await stops(pausing(), audio) if at < end] == []


async def test_the_measured_silence_is_the_time_since_the_last_voiced_audio(
    speak: Callable[[str], bytes],
) -> None:
    for text in (QUESTION, CLOSURES):
        audio = with_room_noise(speak(text))
        at, silence = (await stops(pausing(), audio))[-1]
        assert silence is not None
        assert silence == pytest.approx((at - last_voiced(audio)) / RATE, abs=0.02)
        assert silence > PAUSE.stop_secs


async def test_the_stop_frame_carries_the_measured_silence(speak: Callable[[str], bytes]) -> None:
    audio = with_room_noise(speak(QUESTION))
    analyzer = pausing()
    frames = [
        InputAudioRawFrame(audio[i : i + CHUNK * 2], RATE, 1)
        for i in range(0, len(audio), CHUNK * 2)
    ]
    down, _ = await run_test(MeasuredStopVADProcessor(vad_analyzer=analyzer), frames_to_send=frames)
    (stop,) = [f for f in down if isinstance(f, VADUserStoppedSpeakingFrame)]
    # Not the configured pause: the silence heard, which Silero's lag makes longer.
    assert PAUSE.stop_secs < stop.stop_secs <= 0.15


async def starts(analyzer: SileroVADAnalyzer, audio: bytes) -> list[int]:
    """Feed 32 ms frames; the sample at which each speech start was confirmed."""
    analyzer.set_sample_rate(RATE)
    out, previous, frame = [], VADState.QUIET, 512
    for start in range(0, len(audio) // 2, frame):
        state = await analyzer.analyze_audio(audio[start * 2 : (start + frame) * 2])
        if state == VADState.SPEAKING and previous != VADState.SPEAKING:
            out.append(start + frame)
        previous = state
    return out


async def test_words_after_a_silent_spell_are_heard_as_soon_without_silero_in_the_silence(
    speak: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    words = speak("Stop, please.")
    silero = SileroVADAnalyzer.voice_confidence
    for lead in (np.zeros(2 * RATE, dtype=np.int16).tobytes(), with_room_noise(b"", lead_s=2)):
        audio = lead + words + bytes(RATE)
        always = PausingSileroVADAnalyzer(params=PAUSE, resume_secs=0.168, silent_dbfs=-np.inf)
        expected = (await starts(always, audio))[0]
        scored: list[bytes] = []

        def counted(self: SileroVADAnalyzer, buffer: bytes, scored: list = scored) -> float:
            scored.append(buffer)
            return silero(self, buffer)

        monkeypatch.setattr(SileroVADAnalyzer, "voice_confidence", counted)
        assert (await starts(pausing(), audio))[0] <= expected
        monkeypatch.undo()
        # Silero ran on the words and the silence after them, not on the silent spell.
        assert len(scored) <= (len(audio) - len(lead)) // 2 // 512 + 1


@pytest.mark.parametrize(("sound_min_dbfs", "pauses"), [(-40.0, True), (-30.0, False)])
async def test_a_sound_under_the_configured_loudness_does_not_pause_the_bot(
    sound_min_dbfs: float, pauses: bool
) -> None:
    """Where the bot's own voice echoes back at -35 dBFS, SOUND_MIN_DBFS=-30 ignores it."""
    t = np.arange(int(0.3 * RATE)) / RATE
    rms = 32768 * 10 ** (-35 / 20)
    hum = (rms * np.sqrt(2) * np.sin(2 * np.pi * 200 * t)).astype(np.int16).tobytes()
    audio = with_room_noise(hum, lead_s=1.0, tail_s=0.5)
    frames = [
        InputAudioRawFrame(audio[i : i + CHUNK * 2], RATE, 1)
        for i in range(0, len(audio), CHUNK * 2)
    ]
    processor = MeasuredStopVADProcessor(vad_analyzer=pausing(), sound_min_dbfs=sound_min_dbfs)
    down, _ = await run_test(processor, frames_to_send=frames)
    assert any(isinstance(f, UserSoundStartedFrame) for f in down) is pauses
