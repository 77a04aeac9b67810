"""Voxtral as vLLM serves it, over a `Transcriber`.

`POST /v1/audio/transcriptions` takes a multipart upload (`file`, `model`, `stream`,
`response_format`) and answers with JSON (`json`, or OpenAI's `verbose_json` with the
language, duration and one segment), plain `text`, or server-sent `transcription.chunk`
deltas ending in `[DONE]`. Uploads at other rates than 16 kHz are resampled.
`ws /v1/realtime` follows vLLM's realtime protocol: the server greets with
`session.created`; the client sends `session.update` with its model, a
`input_audio_buffer.commit` to start an utterance, `input_audio_buffer.append` with
base64 PCM16 at 16 kHz, and a commit with `final: true` to end it; the server answers
with `transcription.delta` events and one `transcription.done`.
"""

import asyncio
import base64
import binascii
import io
import json
import time
import uuid
import wave
from collections.abc import AsyncIterator

import numpy as np
from aiohttp import WSMsgType, web

from engines.backends import Transcriber, TranscriptionStream
from engines.faults import FaultPlan, RequestLog, bearer_ok, connection_of, connections
from engines.serving import IDLE_CLOSE_S, UVICORN_IDLE_CLOSE_S

SAMPLE_RATE = 16000
RESPONSE_FORMATS = ("json", "verbose_json", "text")


def _pcm_from_upload(data: bytes) -> bytes:
    """The PCM16 samples of an uploaded WAV file at 16 kHz (raw PCM is taken as is).

    Other rates are resampled (linearly: enough for a transcriber), as vLLM does.
    """
    if not data.startswith(b"RIFF"):
        return data
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError("expected 16-bit mono audio")
        pcm, rate = wav.readframes(wav.getnframes()), wav.getframerate()
    if rate == SAMPLE_RATE:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    count = int(len(samples) * SAMPLE_RATE / rate)
    resampled = np.interp(np.arange(count) * rate / SAMPLE_RATE, np.arange(len(samples)), samples)
    return resampled.astype(np.int16).tobytes()


def _answer(text: str, response_format: str, seconds: float) -> web.Response:
    """A whole transcript in the requested format, as OpenAI-compatible servers give it."""
    if response_format == "text":
        return web.Response(text=text, content_type="text/plain")
    if response_format == "json":
        return web.json_response({"text": text})
    segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text, "tokens": []}
    return web.json_response(
        {
            "task": "transcribe",
            "language": "english",
            "duration": seconds,
            "text": text,
            "segments": [segment],
        }
    )


def _sse(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def create_voxtral_app(
    transcriber: Transcriber,
    *,
    faults: FaultPlan | None = None,
    log: RequestLog | None = None,
    api_key: str | None = None,
    model: str = "mistralai/Voxtral-Mini-4B-Realtime-2602",
) -> web.Application:
    """An application serving Voxtral's transcription endpoints."""
    faults = faults or FaultPlan()
    log = log if log is not None else RequestLog()

    async def transcriptions(request: web.Request) -> web.StreamResponse:
        if not bearer_ok(request.headers.get("Authorization"), api_key):
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        try:
            form = await request.post()
            upload = form["file"]
            pcm = _pcm_from_upload(upload.file.read())  # type: ignore[union-attr]
        except (KeyError, AttributeError, ValueError, EOFError, wave.Error):
            return web.json_response({"error": {"message": "a WAV 'file' is required"}}, status=400)
        stream = str(form.get("stream", "false")).lower() == "true"
        response_format = str(form.get("response_format", "json"))
        if response_format not in RESPONSE_FORMATS:
            message = f"unsupported response_format; use one of {', '.join(RESPONSE_FORMATS)}"
            return web.json_response({"error": {"message": message}}, status=400)
        log.add(
            kind="transcription",
            audio_bytes=len(pcm),
            model=form.get("model"),
            stream=stream,
            headers=dict(request.headers),
            **connection_of(request),
            at=time.monotonic(),
        )
        failure = await faults.early_answer(
            garbage=web.Response(text="<html>oops</html>", content_type="text/event-stream")
        )
        if failure is not None:
            return failure

        utterance = transcriber.open_stream()
        deltas = [await utterance.feed(pcm), await utterance.finish()]
        log.add(kind="transcribed", at=time.monotonic())
        if not stream:
            return _answer("".join(deltas).strip(), response_format, len(pcm) / 2 / SAMPLE_RATE)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await faults.start_stream(request, response)
        chunk_id = f"trsc-{uuid.uuid4().hex[:12]}"

        async def chunks() -> AsyncIterator[bytes]:
            for delta in filter(None, deltas):
                yield _sse(
                    {
                        "id": chunk_id,
                        "object": "transcription.chunk",
                        "created": int(time.time()),
                        "model": form.get("model") or model,
                        "choices": [{"delta": {"content": delta}, "finish_reason": None}],
                    }
                )

        if not await faults.stream(request, response, chunks()):
            return response
        await response.write(_sse("[DONE]"))
        await response.write_eof()
        return response

    async def realtime(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        if not bearer_ok(request.headers.get("Authorization"), api_key):
            raise web.HTTPUnauthorized(text="invalid api key")
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client left during the handshake: nothing to serve
            return ws
        connection = uuid.uuid4().hex[:8]
        log.add(
            kind="realtime_connect",
            connection=connection,
            headers=dict(request.headers),
            at=time.monotonic(),
        )
        await ws.send_json(
            {
                "type": "session.created",
                "id": f"sess-{uuid.uuid4().hex[:12]}",
                "created": int(time.time()),
            }
        )
        session_model: str | None = None
        utterance: TranscriptionStream | None = None
        received = 0
        text = ""

        async def error(message: str, code: str) -> None:
            await ws.send_json({"type": "error", "error": message, "code": code})

        async def send_delta(delta: str) -> None:
            nonlocal text
            if not delta:
                return
            text += delta
            if faults.chunk_delay_s:
                await asyncio.sleep(faults.chunk_delay_s)
            await ws.send_json({"type": "transcription.delta", "delta": delta})
            if faults.drop_mid_stream:
                await ws.close()

        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                event = json.loads(message.data)
                kind = event["type"]
            except (ValueError, KeyError, TypeError):
                await error("Invalid JSON", "invalid_json")
                continue
            if kind == "session.update":
                session_model = event.get("model")
                log.add(kind="session.update", model=session_model, at=time.monotonic())
                if session_model != model:
                    await error(f"The model `{session_model}` does not exist.", "model_not_found")
            elif kind == "input_audio_buffer.append":
                try:
                    pcm = base64.b64decode(event["audio"], validate=True)
                except (KeyError, binascii.Error, TypeError):
                    await error("Invalid audio data", "invalid_audio")
                    continue
                received += len(pcm)
                if utterance is not None:
                    await send_delta(await utterance.feed(pcm))
            elif kind == "input_audio_buffer.commit":
                if session_model is None:
                    await error("Model not validated.", "model_not_validated")
                elif not event.get("final"):
                    # The client opens an utterance when its VAD hears speech.
                    log.add(kind="utterance_open", connection=connection, at=time.monotonic())
                    utterance, received, text = transcriber.open_stream(), 0, ""
                elif utterance is not None:
                    log.add(
                        kind="utterance",
                        connection=connection,
                        audio_bytes=received,
                        at=time.monotonic(),
                    )
                    if faults.latency_s:
                        await asyncio.sleep(faults.latency_s)
                    if faults.hang:
                        continue
                    if faults.garbage:
                        await ws.send_str("}{ not json")
                        continue
                    await send_delta(await utterance.finish())
                    await ws.send_json({"type": "transcription.done", "text": text})
                    log.add(kind="transcribed", connection=connection, at=time.monotonic())
                    utterance = None
            else:
                await error(f"Unknown event type: {kind}", "unknown_event")
        return ws

    app = web.Application(client_max_size=50 * 1024 * 1024, middlewares=[connections(faults)])
    app[IDLE_CLOSE_S] = UVICORN_IDLE_CLOSE_S
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_get("/v1/realtime", realtime)
    return app
