"""OpenAI chat completions (Cerebras' wire protocol) over a `Responder`, and `GET /models`."""

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from engines.backends import Responder
from engines.faults import FaultPlan, RequestLog, bearer_ok, connection_of, connections


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = {429: "rate_limit_error", 401: "authentication_error"}.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "code": str(status)}}
    return web.json_response(body, status=status, headers=headers)


def _chunk(completion_id: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def create_chat_app(
    responder: Responder,
    *,
    faults: FaultPlan | None = None,
    log: RequestLog | None = None,
    api_key: str | None = None,
) -> web.Application:
    """An application serving `POST /v1/chat/completions`, streaming or not."""
    faults = faults or FaultPlan()
    log = log if log is not None else RequestLog()

    async def completions(request: web.Request) -> web.StreamResponse:
        if not bearer_ok(request.headers.get("Authorization"), api_key):
            return _error(401, "invalid api key")
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body["model"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with 'model' and 'messages'")
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        log.add(
            kind="chat",
            request=completion_id,
            body=body,
            headers=dict(request.headers),
            **connection_of(request),
            at=time.monotonic(),
        )
        failure = await faults.early_answer(
            garbage=web.Response(
                text="data: this is not json\n\n", content_type="text/event-stream"
            ),
            error=lambda status, headers: _error(status, f"scripted status {status}", headers),
        )
        if failure is not None:
            return failure

        if not body.get("stream"):
            text = "".join([token async for token in responder.respond(messages, model)])
            message = {"role": "assistant", "content": text}
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            )

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        sent = 0

        async def tokens() -> AsyncIterator[bytes]:
            nonlocal sent
            async for token in responder.respond(messages, model):
                sent += 1
                if sent == 1:
                    log.add(kind="chat_first_token", request=completion_id, at=time.monotonic())
                yield _chunk(completion_id, model, {"content": token}, None)

        try:
            role = _chunk(completion_id, model, {"role": "assistant"}, None)
            await faults.start_stream(request, response, role)
            if not await faults.stream(request, response, tokens()):
                return response
        except ConnectionResetError:
            # The client went away mid-reply (an interruption, or the bot leaving).
            log.add(kind="chat_cancelled", request=completion_id, at=time.monotonic())
            return response
        await response.write(_chunk(completion_id, model, {}, "stop"))
        usage = {"prompt_tokens": 1, "completion_tokens": sent, "total_tokens": sent + 1}
        final = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": usage,
        }
        await response.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        log.add(kind="chat_done", request=completion_id, at=time.monotonic())
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        if not bearer_ok(request.headers.get("Authorization"), api_key):
            return _error(401, "invalid api key")
        log.add(kind="models", **connection_of(request), at=time.monotonic())
        return web.json_response({"object": "list", "data": []})

    app = web.Application(middlewares=[connections(faults)])
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    return app
