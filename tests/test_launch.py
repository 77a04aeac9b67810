"""What the run command starts locally and what it leaves to remote services."""

from scripts.launch import DEV_KEY, LOCAL_LLM_NAME, local_overrides, local_parts


def test_nothing_configured_runs_everything_locally() -> None:
    local = local_parts(set())
    assert local == ["livekit", "stt", "tts", "llm"]
    overrides = local_overrides(local, 7880, 8010, "k")
    assert overrides["livekit_url"] == "ws://127.0.0.1:7880"
    assert overrides["livekit_api_key"] == DEV_KEY
    assert overrides["cerebras_base_url"] == "http://127.0.0.1:8010/v1"
    assert overrides["cerebras_model"] == LOCAL_LLM_NAME


def test_a_cerebras_key_alone_uses_cerebras_with_local_speech() -> None:
    local = local_parts({"CEREBRAS_API_KEY"})
    assert local == ["livekit", "stt", "tts"]
    overrides = local_overrides(local, 7880, 8010, "k")
    assert not {"cerebras_api_key", "cerebras_base_url", "cerebras_model"} & set(overrides)
    assert overrides["voxtral_host"] == overrides["chatterbox_host"] == "127.0.0.1"


def test_remote_engines_and_livekit_stay_remote() -> None:
    given = {"LIVEKIT_URL", "VOXTRAL_HOST", "CHATTERBOX_HOST", "CEREBRAS_API_KEY"}
    assert local_parts(given) == []
    assert local_overrides([], 7880, 8010, "k") == {}
