"""Reading the header of a WAV stream that may arrive in small pieces."""

import struct
from dataclasses import dataclass

RIFF_MAGIC = b"RIFF"


@dataclass(frozen=True)
class WavFormat:
    """What a WAV header says about the samples that follow it."""

    sample_rate: int
    channels: int
    data_offset: int


def parse_wav_header(data: bytes) -> WavFormat | None:
    """Parse the header at the start of `data`.

    Returns None while more bytes are needed to reach the start of the samples.

    Raises:
        ValueError: when the bytes are not a PCM WAV stream.
    """
    if len(data) < 12:
        if not RIFF_MAGIC.startswith(data[:4]):
            raise ValueError("not a WAV stream")
        return None
    if data[:4] != RIFF_MAGIC or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while len(data) >= offset + 8:
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data before its format")
            audio_format, channels, rate, bits = fmt
            if audio_format not in (1, 0xFFFE) or bits != 16:
                raise ValueError("WAV is not 16-bit PCM")
            return WavFormat(rate, channels, body)
        if len(data) < body + size:
            return None
        if chunk_id == b"fmt ":
            audio_format, channels, rate = struct.unpack("<HHI", data[body : body + 8])
            (bits,) = struct.unpack("<H", data[body + 14 : body + 16])
            fmt = (audio_format, channels, rate, bits)
        offset = body + size + (size & 1)
    return None
