"""The room's audio, down-sampled for the VAD and the STT without being held back."""

import numpy as np
import pytest

from bot.decimating_resampler import DecimatingResampler

pytestmark = pytest.mark.unit

IN, OUT = 48000, 16000


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(IN * seconds)) / IN
    return (np.sin(2 * np.pi * hz * t) * 10000).astype(np.int16)


async def stream(samples: np.ndarray, chunk: int = IN // 100) -> list[np.ndarray]:
    resampler = DecimatingResampler()
    return [
        np.frombuffer(
            await resampler.resample(samples[i : i + chunk].tobytes(), IN, OUT), dtype=np.int16
        )
        for i in range(0, samples.size, chunk)
    ]


def level_db(samples: np.ndarray) -> float:
    rms = np.sqrt(np.mean(samples[OUT // 10 :].astype(np.float64) ** 2))
    return 20 * np.log10(max(rms, 1e-3) / (10000 / np.sqrt(2)))


async def test_every_10_ms_in_comes_out_at_once_and_barely_late() -> None:
    impulse = np.zeros(IN // 2, dtype=np.int16)
    impulse[IN // 10] = 30000
    chunks = await stream(impulse)
    assert {c.size for c in chunks} == {OUT // 100}
    delay_s = np.argmax(np.abs(np.concatenate(chunks))) / OUT - 0.1
    assert 0 <= delay_s <= 0.003


@pytest.mark.parametrize("hz", [200, 1000, 3000, 6000, 7000])
async def test_speech_frequencies_pass_unchanged(hz: float) -> None:
    assert abs(level_db(np.concatenate(await stream(tone(hz))))) < 0.5


@pytest.mark.parametrize("hz", [8500, 10000, 13000, 20000])
async def test_what_16_khz_cannot_carry_does_not_fold_back(hz: float) -> None:
    assert level_db(np.concatenate(await stream(tone(hz)))) < -70


async def test_chunks_of_any_size_give_the_same_audio() -> None:
    noise = np.random.default_rng(0).normal(0, 3000, IN).astype(np.int16)
    whole = np.concatenate(await stream(noise, chunk=noise.size))
    sizes = np.random.default_rng(1).integers(1, 700, size=400)
    resampler, parts, start = DecimatingResampler(), [], 0
    for size in sizes:
        part = noise[start : start + size].tobytes()
        parts.append(await resampler.resample(part, IN, OUT))
        start += size
    pieces = np.frombuffer(b"".join(parts), dtype=np.int16)
    assert np.array_equal(pieces[: whole.size], whole)
