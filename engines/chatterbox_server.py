"""Chatterbox's OpenAI-style speech API over a `Synthesizer`.

`POST /v1/audio/speech` answers with the whole clip; `POST /v1/audio/speech/stream`
sends the same audio as it is synthesised. Both take `input`, `voice`,
`response_format` (`wav` or `pcm`) and the optional `exaggeration`, `cfg_weight` and
`temperature`.
"""

import time
import uuid

from aiohttp import web

from engines.backends import Synthesizer
from engines.faults import FaultPlan, RequestLog, bearer_ok
from engines.wav import wav_header

RESPONSE_FORMATS = ("wav", "pcm")
OPTIONS = ("exaggeration", "cfg_weight", "temperature")


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
            return web.json_response({"error": {"message": "'input' is required"}}, status=400)
        if body.get("response_format", "wav") not in RESPONSE_FORMATS:
            return web.json_response({"error": {"message": "unsupported format"}}, status=400)
        log.add(
            kind="speech",
            request=request_id,
            path=request.path,
            body=body,
            headers=dict(request.headers),
            at=time.monotonic(),
        )
        return body

    async def misbehave() -> web.Response | None:
        garbage = web.Response(body=b"<html>not audio</html>", content_type="audio/wav")
        return await faults.early_answer(garbage=garbage)

    def audio_of(body: dict):
        options = {k: body[k] for k in OPTIONS if k in body}
        return synthesizer.synthesize(str(body["input"]), str(body.get("voice", "")), options)

    async def speech(request: web.Request) -> web.StreamResponse:
        body = await parse(request, uuid.uuid4().hex[:12])
        if isinstance(body, web.Response):
            return body
        if (failure := await misbehave()) is not None:
            return failure
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
        as_wav = body.get("response_format", "wav") == "wav"
        response = web.StreamResponse(
            headers={"Content-Type": "audio/wav" if as_wav else "audio/pcm"}
        )
        audio = log.first_sent(audio_of(body), kind="speech_first_audio", request=request_id)
        try:
            await faults.start_stream(
                request, response, wav_header(synthesizer.sample_rate) if as_wav else b""
            )
            if not await faults.stream(request, response, audio):
                return response
        except ConnectionResetError:
            # The client closed the request: an interruption, or the bot leaving.
            log.add(kind="speech_cancelled", request=request_id, at=time.monotonic())
            return response
        log.add(kind="speech_done", request=request_id, at=time.monotonic())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/v1/audio/speech/stream", speech_stream)
    return app
