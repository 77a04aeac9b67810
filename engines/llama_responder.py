"""A chat model on llama.cpp (llama-cpp-python), behind the OpenAI protocol (`Responder`)."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from engines.threaded import stream_in_thread

MAX_REPLY_TOKENS = 160


class LlamaResponder:
    """A GGUF instruct model on the CPU; one reply at a time, streamed token by token."""

    def __init__(self, model_path: Path, *, threads: int = 2, context: int = 2048) -> None:
        from llama_cpp import Llama

        self._llama = Llama(
            model_path=str(model_path), n_ctx=context, n_threads=threads, verbose=False
        )
        self._busy = asyncio.Lock()

    async def respond(self, messages: list[dict[str, Any]], model: str) -> AsyncIterator[str]:
        """Stream the reply; generation stops when the caller stops reading."""

        def tokens() -> Iterator[str]:
            chunks: Iterator[dict[str, Any]] = self._llama.create_chat_completion(  # type: ignore[assignment]
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                max_tokens=MAX_REPLY_TOKENS,
            )
            for chunk in chunks:
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield str(text)

        async with self._busy:
            async for token in stream_in_thread(tokens):
                yield token
