"""Our Pipecat services: Voxtral STT, Chatterbox TTS, Cerebras LLM policy."""
