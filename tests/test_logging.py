import io
import json
import logging
from typing import Any

import pytest
from loguru import logger

from bot.logging import setup_logging
from processors.redaction import REDACTED, WITHHELD
from tests.conftest import quiet_logging

pytestmark = pytest.mark.unit
SECRET = "csk-test-abcdef0123456789secret"
OTHER = 'lk-secret-with-"quote\\'


@pytest.fixture
def capture():
    stream = io.StringIO()

    def install(**overrides):
        options: dict[str, Any] = {
            "level": "TRACE",
            "json_format": True,
            "secrets": [SECRET, OTHER],
            "log_transcripts": False,
            "stream": stream,
            "room": "room-1",
        } | overrides
        return setup_logging(**options)

    yield install, stream
    quiet_logging()
    logging.basicConfig(handlers=[], force=True)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_its_context(capture):
    install, stream = capture
    install()
    logger.info("hello")
    logger.bind(event="Turn metrics", turn=3).info("Turn metrics")
    first, second = records(stream)
    assert first["message"] == "hello" and first["level"] == "INFO" and first["room"] == "room-1"
    assert second["event"] == "Turn metrics" and second["turn"] == 3


def test_secrets_are_redacted_in_messages_extras_and_exceptions(capture):
    install, stream = capture
    install()
    logger.bind(api_key=SECRET, nested={"k": OTHER}).info(f"key is {SECRET}")
    try:
        raise RuntimeError(f"failed with {SECRET} and {OTHER}")
    except RuntimeError:
        logger.exception("boom")
    out = stream.getvalue()
    assert SECRET not in out and "lk-secret-with-" not in out
    assert out.count(REDACTED) >= 4
    assert "Traceback" in records(stream)[1]["exception"]


@pytest.mark.parametrize(
    "line",
    [
        "headers: {'Authorization': 'Bearer sk-live-abc123'}",
        "Authorization: Basic dXNlcjpwYXNz",
        "calling with bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        'x-api-key: "abc123def456"',
    ],
)
def test_authorization_values_and_bearer_tokens_are_redacted(capture, line):
    install, stream = capture
    install()
    logger.info(line)
    message = records(stream)[0]["message"]
    assert REDACTED in message
    for token in ("sk-live-abc123", "dXNlcjpwYXNz", "eyJhbGciOiJIUzI1NiJ9", "abc123def456"):
        assert token not in message


def test_standard_library_loggers_go_through_the_same_sink(capture):
    install, stream = capture
    install()
    logging.getLogger("httpx").warning("request with Authorization: Bearer abc.def.ghi %s", SECRET)
    (record,) = records(stream)
    assert record["logger"] != "" and SECRET not in record["message"]
    assert "abc.def.ghi" not in record["message"]


def test_pipecat_lines_quoting_conversation_text_are_withheld(capture):
    install, stream = capture
    install()
    pipecat = logger.patch(lambda r: r.update({"name": "pipecat.services.tts_service"}))
    pipecat.debug("ChatterboxTTSService#0: Generating TTS [My secret diagnosis]")
    pipecat.debug(
        "CerebrasLLMService#0: Generating LLM response [{'role': 'user', 'content': 'x'}]"
    )
    pipecat.debug("TTS request: ctx-1 - My secret diagnosis")
    pipecat.trace("pushing TranscriptionFrame#3(user: u, text: [my card number is])")
    out = stream.getvalue()
    assert "secret diagnosis" not in out and "card number" not in out and "'content'" not in out
    assert out.count(WITHHELD) == 4
    assert "Generating TTS [[withheld]]" in out


def test_tracked_conversation_text_is_withheld_wherever_it_appears(capture):
    install, stream = capture
    redactor = install()
    redactor.track_conversation_text("my address is 12 Elm Street")
    logger.error("KeyError while handling 'my address is 12 Elm Street'")
    assert "Elm Street" not in stream.getvalue()


def test_transcripts_are_kept_when_logging_them_is_allowed(capture):
    install, stream = capture
    redactor = install(log_transcripts=True)
    redactor.track_conversation_text("keep this sentence please")
    logger.debug("Generating TTS [keep this sentence please]")
    assert "keep this sentence please" in stream.getvalue()


def test_text_format_is_redacted_too(capture):
    install, stream = capture
    install(json_format=False)
    logger.warning(f"oops {SECRET}")
    out = stream.getvalue()
    assert SECRET not in out and REDACTED in out and not out.startswith("{")


def test_levels_below_the_threshold_are_dropped(capture):
    install, stream = capture
    install(level="INFO")
    logger.debug("quiet")
    logger.info("loud")
    assert [r["message"] for r in records(stream)] == ["loud"]
