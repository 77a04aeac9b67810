import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings, SettingsError, configured_variables, load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "a-very-secret-livekit-value",
    "CEREBRAS_API_KEY": "csk-do-not-print-me-123456",
}


def run_bot(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", "--room", "settings-test"],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", list(REQUIRED))
def test_each_missing_required_variable_stops_with_code_2_and_its_name(missing, tmp_path):
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{missing} is required but not set" in lines[0]
    assert "Traceback" not in result.stderr
    for secret in (REQUIRED["LIVEKIT_API_SECRET"], REQUIRED["CEREBRAS_API_KEY"]):
        assert secret not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("LIVEKIT_URL", "http://127.0.0.1:7880", "must start with ws:// or wss://"),
        ("VOXTRAL_PORT", "eighty", "valid integer"),
        ("VOXTRAL_PORT", "70000", "less than 65536"),
        ("VOXTRAL_MODE", "batch", "'realtime' or 'segmented'"),
        ("CHUNK_MIN_CHARS", "0", "greater than or equal to 1"),
        ("CHUNK_MAX_WAIT_MS", "-5", "greater than or equal to 0"),
        ("VAD_CONFIDENCE", "1.5", "less than 1"),
        ("ENABLE_INTERRUPTIONS", "maybe", "valid boolean"),
        ("LOG_FORMAT", "xml", "'json' or 'text'"),
        ("CEREBRAS_BASE_URL", "api.cerebras.ai", "must start with http:// or https://"),
        ("TURN_STOP_STRATEGY", "guess", "'speech_timeout' or 'smart_turn'"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318", "must start with http:// or https://"),
    ],
)
def test_invalid_values_stop_with_code_2_naming_the_variable(name, value, reason, tmp_path):
    result = run_bot({**REQUIRED, name: value}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert name in result.stderr and reason in result.stderr
    assert REQUIRED["CEREBRAS_API_KEY"] not in result.stderr


def test_a_bad_secret_value_is_named_but_never_shown(tmp_path):
    result = run_bot({**REQUIRED, "VOXTRAL_API_KEY": "", "BOT_IDENTITY": "bad identity!"}, tmp_path)
    assert result.returncode == 2
    assert "BOT_IDENTITY" in result.stderr
    assert "bad identity!" not in result.stderr


def test_values_come_from_a_dotenv_file_too(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "\n".join(f"{k}={v}" for k, v in REQUIRED.items()) + "\nCHUNK_MIN_CHARS=24\n"
    )
    monkeypatch.chdir(tmp_path)
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.chunk_min_chars == 24
    assert settings.cerebras_api_key.get_secret_value() == REQUIRED["CEREBRAS_API_KEY"]
    assert REQUIRED["CEREBRAS_API_KEY"] not in repr(settings)


def test_defaults_match_the_runbook():
    values: dict[str, Any] = {k.lower(): v for k, v in REQUIRED.items()}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert settings.chunk_min_chars == 16
    assert settings.chunk_max_wait_ms == 200
    assert settings.vad_confidence == 0.5
    assert settings.enable_interruptions is True
    assert settings.log_transcripts is False
    assert settings.log_format == "json"
    assert settings.voxtral_mode == "realtime"
    assert settings.cerebras_base_url == "https://api.cerebras.ai/v1"
    assert settings.cerebras_model == "gpt-oss-120b"
    assert settings.secret_values() == [
        "devkey",
        REQUIRED["LIVEKIT_API_SECRET"],
        REQUIRED["CEREBRAS_API_KEY"],
    ]


def test_load_settings_raises_a_printable_error():
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None, livekit_url="nope")
    assert "LIVEKIT_URL is invalid: must start with ws://" in str(caught.value)


def test_the_example_file_lists_every_setting_and_loads(tmp_path, monkeypatch):
    example = (ROOT / ".env.example").read_text()
    (tmp_path / ".env").write_text(example)
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        assert f"\n{name.upper()}=" in example, f"{name.upper()} missing from .env.example"
    # Copied as is, it leaves LiveKit and every engine to the local launcher.
    given = configured_variables()
    assert not given & {"LIVEKIT_URL", "VOXTRAL_HOST", "CHATTERBOX_HOST", "CEREBRAS_API_KEY"}
    settings = load_settings(
        livekit_url="ws://127.0.0.1:7880",
        livekit_api_key="devkey",
        livekit_api_secret="secret",
        cerebras_api_key="local",
    )
    assert settings.chatterbox_exaggeration is None and settings.voxtral_api_key is None
    assert "csk-" not in example and "sk-" not in example


def test_backchannel_words_are_a_comma_list(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BACKCHANNEL_WORDS", "ouais, d'accord ,hum")
    monkeypatch.setenv("UNFINISHED_TURN_WORDS", "pour, de")
    settings = load_settings(_env_file=None)
    assert settings.backchannel_words == ["ouais", "d'accord", "hum"]
    assert settings.unfinished_turn_words == ["pour", "de"]
