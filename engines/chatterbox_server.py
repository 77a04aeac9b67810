"""Chatterbox's OpenAI-style speech API over a `Synthesizer`.

`POST /v1/audio/speech` answers with the whole clip; `POST /v1/audio/speech/stream`
sends the same audio as it is synthesised. Both take `input`, `voice`,
`response_format` (`wav` or `pcm`) and the optional `exaggeration`, `cfg_weight` and
`temperature`.

Like OpenAI-compatible servers, `POST /v1/audio/speech` also honours OpenAI's
`stream_format`: `audio` streams the clip's bytes as they are made, `sse` sends them as
`speech.audio.delta` events (base64) ending with one `speech.audio.done`. OpenAI's
clients (LiveKit Agents' plugin among them) always send it.
"""

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from engines.backends import Synthesizer
from engines.faults import FaultPlan, RequestLog, bearer_ok, connection_of, connections
from engines.serving import IDLE_CLOSE_S, UVICORN_IDLE_CLOSE_S
from engines.wav import wav_header

RESPONSE_FORMATS = ("wav", "pcm")
STREAM_FORMATS = ("audio", "sse")
OPTIONS = ("exaggeration", "cfg_weight", "temperature")


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=400)


def _sse(event: dict) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


def create_chatterbox_app(
    synthesizer: Synthesizer,
    *,
    faults: FaultPlan | None = None,
    log: RequestLog | None = None,
    api_key: str | None = None,
) -> web.Application:
    """An application serving Chatterbox's speech endpoints."""
    faults = faults or FaultPlan()
    log = log if log is not None else RequestLog()

    async def parse(request: web.Request, request_id: str) -> dict | web.Response:
        if not bearer_ok(request.headers.get("Authorization"), api_key):
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        try:
            body = await request.json()
            if not isinstance(body, dict) or not str(body.get("input", "")).strip():
                raise ValueError
        except ValueError:
            return _bad_request("'input' is required")
        if body.get("response_format", "wav") not in RESPONSE_FORMATS:
            return _bad_request(f"unsupported format; use one of {', '.join(RESPONSE_FORMATS)}")
        if body.get("stream_format", "audio") not in STREAM_FORMATS:
            return _bad_request(f"unsupported stream_format; use {' or '.join(STREAM_FORMATS)}")
        log.add(
            kind="speech",
            request=request_id,
            path=request.path,
            body=body,
            headers=dict(request.headers),
            **connection_of(request),
            at=time.monotonic(),
        )
        return body

    async def misbehave() -> web.Response | None:
        garbage = web.Response(body=b"<html>not audio</html>", content_type="audio/wav")
        return await faults.early_answer(garbage=garbage)

    def audio_of(body: dict):
        options = {k: body[k] for k in OPTIONS if k in body}
        return synthesizer.synthesize(str(body["input"]), str(body.get("voice", "")), options)

    async def streamed(
        request: web.Request, body: dict, request_id: str, *, sse: bool
    ) -> web.StreamResponse:
        """The audio as it is made: raw bytes of the format, or as SSE deltas."""
        as_wav = body.get("response_format", "wav") == "wav"
        head = wav_header(synthesizer.sample_rate) if as_wav else b""
        if sse:
            content_type = "text/event-stream"
        else:
            content_type = "audio/wav" if as_wav else "audio/pcm"
        response = web.StreamResponse(headers={"Content-Type": content_type})

        def framed(audio: bytes) -> bytes:
            if not sse:
                return audio
            encoded = base64.b64encode(audio).decode()
            return _sse({"type": "speech.audio.delta", "audio": encoded})

        async def chunks() -> AsyncIterator[bytes]:
            first = True
            async for chunk in audio_of(body):
                if first:
                    first = False
                    log.add(kind="speech_first_audio", request=request_id, at=time.monotonic())
                    chunk = head + chunk if sse else chunk
                yield framed(chunk)

        try:
            await faults.start_stream(request, response, b"" if sse else head)
            if not await faults.stream(request, response, chunks()):
                return response
        except ConnectionResetError:
            # The client closed the request: an interruption, or the bot leaving.
            log.add(kind="speech_cancelled", request=request_id, at=time.monotonic())
            return response
        if sse:
            characters = len(str(body["input"]))
            usage = {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}
            await response.write(_sse({"type": "speech.audio.done", "usage": usage}))
        log.add(kind="speech_done", request=request_id, at=time.monotonic())
        await response.write_eof()
        return response

    async def speech(request: web.Request) -> web.StreamResponse:
        request_id = uuid.uuid4().hex[:12]
        body = await parse(request, request_id)
        if isinstance(body, web.Response):
            return body
        if (failure := await misbehave()) is not None:
            return failure
        if "stream_format" in body:
            return await streamed(request, body, request_id, sse=body["stream_format"] == "sse")
        pcm = b"".join([chunk async for chunk in audio_of(body)])
        if body.get("response_format", "wav") == "wav":
            return web.Response(
                body=wav_header(synthesizer.sample_rate, len(pcm)) + pcm, content_type="audio/wav"
            )
        return web.Response(body=pcm, content_type="audio/pcm")

    async def speech_stream(request: web.Request) -> web.StreamResponse:
        request_id = uuid.uuid4().hex[:12]
        body = await parse(request, request_id)
        if isinstance(body, web.Response):
            return body
        if (failure := await misbehave()) is not None:
            return failure
        return await streamed(request, body, request_id, sse=False)

    app = web.Application(middlewares=[connections(faults)])
    app[IDLE_CLOSE_S] = UVICORN_IDLE_CLOSE_S
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/v1/audio/speech/stream", speech_stream)
    return app
