"""The engines' wire protocols, answered the same way by the stand-ins and the local engines.

Each test runs twice: against the scripted stand-ins and against the local engines (real
faster-whisper, Piper and llama.cpp models from PyPI packages), through the one protocol
layer in `engines/`. A client written for Voxtral, Chatterbox or Cerebras sees no
difference but in the content.
"""

import asyncio
import base64
import io
import json
import time
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import numpy as np
import openai
import pytest
import pytest_asyncio

from engines.backends import Responder, Synthesizer, Transcriber
from engines.chat_server import create_chat_app
from engines.chatterbox_server import create_chatterbox_app
from engines.scripted import ScriptedResponder, ScriptedTranscriber, ToneSynthesizer
from engines.serving import ServedApp, serve
from engines.voxtral_server import create_voxtral_app

pytestmark = [pytest.mark.asyncio(loop_scope="module")]

MODEL = "mistralai/Voxtral-Mini-4B-Realtime-2602"
QUESTION = "What is the capital of France?"
SPOKEN = "Hello there. The capital of France is Paris. It is a lovely city to visit."


@dataclass
class Served:
    kind: str
    stt: ServedApp
    tts: ServedApp
    llm: ServedApp


async def start(kind: str) -> Served:
    transcriber: Transcriber
    synthesizer: Synthesizer
    responder: Responder
    if kind == "scripted":
        transcriber, synthesizer, responder = (
            ScriptedTranscriber(["what is the capital of france"]),
            ToneSynthesizer(realtime_factor=0.25),  # made over time, as a real engine does
            ScriptedResponder(["Paris is the capital of France."]),
        )
    else:
        from engines.llama_responder import LlamaResponder
        from engines.local import gguf_model, piper_voice, whisper_model_dir
        from engines.piper_synthesizer import PiperSynthesizer
        from engines.whisper_transcriber import WhisperTranscriber

        transcriber = WhisperTranscriber(whisper_model_dir("tiny.en"))
        synthesizer = PiperSynthesizer(piper_voice("packaged"))
        responder = LlamaResponder(gguf_model("packaged"))
    return Served(
        kind,
        await serve(create_voxtral_app(transcriber, model=MODEL)),
        await serve(create_chatterbox_app(synthesizer)),
        await serve(create_chat_app(responder)),
    )


@pytest_asyncio.fixture(
    loop_scope="module",
    scope="module",
    params=["scripted", pytest.param("local", marks=pytest.mark.local)],
)
async def engines(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    served = await start(request.param)
    yield served
    for app in (served.stt, served.tts, served.llm):
        await app.close()


@pytest.fixture(scope="module")
def question(speak: Callable[[str], bytes]) -> bytes:
    return speak(QUESTION)


def wav_of(pcm: bytes, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def heard_the_question(engines: Served, text: str) -> bool:
    words = text.lower()
    if engines.kind == "scripted":
        return words == "what is the capital of france"
    return "capital" in words and "france" in words


async def test_transcription_streams_server_sent_chunks(engines: Served, question: bytes) -> None:
    form = aiohttp.FormData()
    form.add_field("file", wav_of(question), filename="q.wav", content_type="audio/wav")
    form.add_field("model", MODEL)
    form.add_field("stream", "true")
    events = []
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{engines.stt.url}/v1/audio/transcriptions", data=form) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            async for line in r.content:
                if line.startswith(b"data: "):
                    events.append(line[6:].strip().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks and all(c["object"] == "transcription.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert heard_the_question(engines, text.strip()), text


async def test_transcription_answers_json_without_stream(engines: Served, question: bytes) -> None:
    form = aiohttp.FormData()
    form.add_field("file", wav_of(question), filename="q.wav", content_type="audio/wav")
    form.add_field("model", MODEL)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{engines.stt.url}/v1/audio/transcriptions", data=form) as r:
            body = await r.json()
    assert heard_the_question(engines, body["text"]), body


async def test_realtime_gives_partials_while_speaking_then_the_transcript(
    engines: Served, question: bytes
) -> None:
    # Two seconds of speech at real-time pace, then a little silence, as the bot sends it.
    audio = question + bytes(int(0.3 * 32000))
    chunk = 3200  # 100 ms
    events: list[tuple[float, dict]] = []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{engines.stt.url.replace('http', 'ws')}/v1/realtime") as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            await ws.send_json({"type": "session.update", "model": MODEL})
            await ws.send_json({"type": "input_audio_buffer.commit"})

            async def receive() -> None:
                async for message in ws:
                    event = json.loads(message.data)
                    events.append((time.monotonic(), event))
                    if event["type"] == "transcription.done":
                        return

            receiving = asyncio.create_task(receive())
            for start in range(0, len(audio), chunk):
                piece = base64.b64encode(audio[start : start + chunk]).decode()
                await ws.send_json({"type": "input_audio_buffer.append", "audio": piece})
                await asyncio.sleep(0.1)
            ended_at = time.monotonic()
            await ws.send_json({"type": "input_audio_buffer.commit", "final": True})
            await asyncio.wait_for(receiving, 30)
    deltas = [(at, e["delta"]) for at, e in events if e["type"] == "transcription.delta"]
    (done,) = [e for _, e in events if e["type"] == "transcription.done"]
    assert [at for at, _ in deltas if at < ended_at], "no partial while the user spoke"
    assert "".join(d for _, d in deltas).strip() == done["text"].strip()
    assert heard_the_question(engines, done["text"].strip()), done
    print(
        f"\n{engines.kind} STT: transcript {(events[-1][0] - ended_at) * 1000:.0f} ms after speech"
    )


async def test_transcription_speaks_openai_formats(engines: Served, question: bytes) -> None:
    # What OpenAI's own client asks for (LiveKit Agents' plugin uses it), at 48 kHz.
    upsampled = np.repeat(np.frombuffer(question, dtype=np.int16), 3).tobytes()
    client = openai.AsyncClient(base_url=f"{engines.stt.url}/v1", api_key="unused")
    try:
        verbose = await client.audio.transcriptions.create(
            file=("q.wav", wav_of(upsampled, 48000), "audio/wav"),
            model="whisper-1",
            response_format="verbose_json",
            language="en",
        )
        plain = await client.audio.transcriptions.create(
            file=("q.wav", wav_of(question), "audio/wav"), model=MODEL, response_format="text"
        )
        with pytest.raises(openai.BadRequestError, match="response_format"):
            await client.audio.transcriptions.create(
                file=("q.wav", wav_of(question), "audio/wav"), model=MODEL, response_format="srt"
            )
    finally:
        await client.close()
    assert heard_the_question(engines, verbose.text.strip()), verbose
    assert verbose.language == "english"
    assert verbose.duration == pytest.approx(len(question) / 32000, abs=0.01)
    assert heard_the_question(engines, str(plain).strip()), plain


@pytest.mark.parametrize("stream_format", ["sse", "audio"])
async def test_openai_speech_streams_while_it_is_made(engines: Served, stream_format: str) -> None:
    client = openai.AsyncClient(base_url=f"{engines.tts.url}/v1", api_key="unused")
    pieces: list[tuple[float, bytes]] = []
    started = time.monotonic()
    try:
        async with client.audio.speech.with_streaming_response.create(
            input=SPOKEN,
            model="gpt-4o-mini-tts",
            voice="ash",
            response_format="pcm",
            stream_format=stream_format,  # type: ignore[arg-type]
        ) as response:
            kind = response.headers["content-type"]
            if stream_format == "sse":
                events = [json.loads(line[6:]) async for line in response.iter_lines() if line]
                pieces = [(0.0, base64.b64decode(e["audio"])) for e in events[:-1]]
                assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
                assert events[-1]["type"] == "speech.audio.done", events[-1]
            else:
                async for piece in response.iter_bytes():
                    pieces.append((time.monotonic() - started, piece))
    finally:
        await client.close()
    audio = np.frombuffer(b"".join(p for _, p in pieces), dtype=np.int16)
    assert kind == ("text/event-stream" if stream_format == "sse" else "audio/pcm")
    assert audio.size / 24000 > 1.0
    assert float(np.sqrt(np.mean(audio.astype(np.float32) ** 2))) > 300
    assert len(pieces) >= 2, "audio came in one piece, not as it was made"
    if stream_format == "audio":
        assert pieces[0][0] < pieces[-1][0]


async def test_speech_is_24khz_wav_and_not_silent(engines: Served) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{engines.tts.url}/v1/audio/speech",
            json={"input": SPOKEN, "voice": "default", "response_format": "wav"},
        ) as r:
            assert r.status == 200
            body = await r.read()
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert samples.size / 24000 > 1.0
    assert float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) > 300


async def test_streamed_speech_arrives_while_it_is_made(engines: Served) -> None:
    arrivals: list[tuple[float, int]] = []
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{engines.tts.url}/v1/audio/speech/stream",
            json={"input": SPOKEN, "voice": "default", "response_format": "pcm"},
        ) as r:
            assert r.status == 200
            async for piece in r.content.iter_any():
                arrivals.append((time.monotonic() - started, len(piece)))
    total = sum(size for _, size in arrivals)
    assert total / 2 / 24000 > 1.0
    first, last = arrivals[0][0], arrivals[-1][0]
    assert len(arrivals) >= 2 and first < last, "audio came in one piece, not as it was made"
    print(f"\n{engines.kind} TTS: first audio {first * 1000:.0f} ms, last {last * 1000:.0f} ms")


async def test_chat_completions_stream_tokens(engines: Served) -> None:
    request = {
        "model": "local-llm",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": QUESTION},
        ],
    }
    started = time.monotonic()
    first_token: float | None = None
    tokens = []
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{engines.llm.url}/v1/chat/completions", json=request) as r:
            assert r.status == 200
            async for line in r.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                assert chunk["object"] == "chat.completion.chunk"
                if not chunk["choices"]:
                    continue  # the usage summary
                content = chunk["choices"][0]["delta"].get("content")
                if content:
                    first_token = first_token or time.monotonic() - started
                    tokens.append(content)
    assert first_token is not None and "".join(tokens).strip()
    print(f"\n{engines.kind} LLM: first token {first_token * 1000:.0f} ms, {len(tokens)} tokens")


async def test_chat_completions_answer_json_without_stream(engines: Served) -> None:
    request = {"model": "local-llm", "messages": [{"role": "user", "content": QUESTION}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{engines.llm.url}/v1/chat/completions", json=request) as r:
            body = await r.json()
    assert body["choices"][0]["message"]["content"].strip()
