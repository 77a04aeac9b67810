"""The one configuration object, read from the environment and `.env`.

Everything the bot (and later the session server) needs is declared here, grouped by
concern. Nothing else in the project reads the environment. A missing or invalid value
surfaces as a `SettingsError` whose message names the variable and never its value.
"""

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import DirectoryPath, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.names import NAME_PATTERN
from processors.backchannel import DEFAULT_BACKCHANNEL_WORDS
from processors.unfinished_phrase import DEFAULT_UNFINISHED_TURN_WORDS

Milliseconds = Annotated[int, Field(gt=0, le=600_000)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Port = Annotated[int, Field(gt=0, lt=65536)]


class SettingsError(Exception):
    """Configuration is missing or invalid; the message is safe to print."""


class Settings(BaseSettings):
    """Process configuration: LiveKit, engines, pipeline tuning, logging, tracing."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # LiveKit
    livekit_url: str
    livekit_api_key: SecretStr
    livekit_api_secret: SecretStr
    # A bot that cannot reach LIVEKIT_URL within this long gives up (exit 3).
    livekit_connect_timeout_s: Seconds = 10

    # Voxtral STT (vLLM)
    voxtral_host: str = "127.0.0.1"
    voxtral_port: Port = 8000
    voxtral_tls: bool = False
    voxtral_model: str = "mistralai/Voxtral-Mini-4B-Realtime-2602"
    voxtral_api_key: SecretStr | None = None
    voxtral_mode: Literal["realtime", "segmented"] = "realtime"
    voxtral_timeout_ms: Milliseconds = 3000
    # How long the server keeps an idle connection; the bot reopens it ahead of use.
    voxtral_idle_close_s: Annotated[float, Field(ge=0)] = 5.0

    # Chatterbox TTS
    chatterbox_host: str = "127.0.0.1"
    chatterbox_port: Port = 4123
    chatterbox_tls: bool = False
    chatterbox_voice: str = "default"
    chatterbox_api_key: SecretStr | None = None
    chatterbox_timeout_ms: Milliseconds = 2000
    chatterbox_idle_close_s: Annotated[float, Field(ge=0)] = 5.0
    chatterbox_streaming: bool = True
    chatterbox_exaggeration: Annotated[float, Field(ge=0, le=2)] | None = None
    chatterbox_cfg_weight: Annotated[float, Field(ge=0, le=1)] | None = None
    chatterbox_temperature: Annotated[float, Field(gt=0, le=5)] | None = None

    # Cerebras LLM (any OpenAI-compatible chat completions endpoint)
    cerebras_api_key: SecretStr
    cerebras_base_url: str = "https://api.cerebras.ai/v1"
    cerebras_model: str = "gpt-oss-120b"
    llm_timeout_ms: Milliseconds = 10_000
    # A self-hosted OpenAI-compatible server under uvicorn closes idle ones after 5 s.
    llm_idle_close_s: Annotated[float, Field(gt=0, le=120)] = 120.0
    system_prompt: str = (
        "You are a friendly voice assistant. Your replies are spoken aloud, so answer in "
        "one to three short sentences of plain speech: no lists, markdown, emoji or URLs."
    )

    # Text chunking between LLM and TTS
    chunk_min_chars: Annotated[int, Field(ge=1, le=1000)] = 16
    chunk_max_wait_ms: Annotated[int, Field(ge=0, le=10_000)] = 200
    chunk_first_at_clause: bool = True

    # Voice activity and turn taking
    vad_start_secs: Annotated[float, Field(ge=0, le=2)] = 0.2
    vad_stop_secs: Annotated[float, Field(ge=0, le=5)] = 0.4
    vad_pause_secs: Annotated[float, Field(ge=0, le=5)] = 0.064
    vad_confidence: Annotated[float, Field(gt=0, lt=1)] = 0.5
    # Microphone audio reaches the pipeline in frames this long. 32 ms is one Silero
    # window (512 samples at 16 kHz): each window is scored as soon as its last sample
    # arrives, with a third fewer frames (and per-frame CPU) than 20 ms, whose windows
    # wait up to 16 ms for the frame that completes them.
    audio_in_frame_ms: Annotated[int, Field(ge=10, le=64)] = 32
    # Pipecat gates speech on a loudness smoothed over 0.4 s (its default 0.6), which lags
    # an onset, and every barge-in, by ~0.2-0.6 s on top of VAD_START_SECS; 0: no gate.
    vad_min_volume: Annotated[float, Field(ge=0, le=1)] = 0.0
    turn_stop_strategy: Literal["speech_timeout", "smart_turn"] = "speech_timeout"
    enable_interruptions: bool = True
    preemptive_generation: bool = True
    # speech_timeout: a transcript ending where no sentence ends ("a table for") waits this
    # much silence instead of VAD_STOP_SECS (0: never longer).
    unfinished_turn_words: Annotated[list[str], NoDecode] = list(DEFAULT_UNFINISHED_TURN_WORDS)
    unfinished_turn_timeout_ms: Annotated[int, Field(ge=0, le=10_000)] = 1500
    # While the bot talks: words that never interrupt it, how many other words do, and how
    # long a paused bot waits for words after a sound before it plays on (0: never pause).
    backchannel_words: Annotated[list[str], NoDecode] = list(DEFAULT_BACKCHANNEL_WORDS)
    min_interruption_words: Annotated[int, Field(ge=1, le=20)] = 1
    false_interruption_timeout_ms: Annotated[int, Field(ge=0, le=10_000)] = 1000
    # A user sound pauses the bot from this loudness (and 12 dB over the room's floor).
    # Raise it where the bot's own voice comes back through a speakerphone's echo.
    sound_min_dbfs: Annotated[float, Field(ge=-80, le=0)] = -40.0

    # Bot process
    bot_idle_timeout_s: Seconds = 120
    bot_identity: Annotated[str, Field(pattern=NAME_PATTERN)] = "agent"
    greeting: str = "Hello! How can I help you today?"
    # Once the SFU forwards the bot's audio, how long the greeting waits for the client to
    # say it plays it (RTVI client-ready); 0 for clients that never say so.
    greeting_client_ready_wait_s: Annotated[float, Field(ge=0, le=10)] = 2.0

    # Session server (these stay out of the bots' environment)
    server_host: str = "127.0.0.1"
    token_server_port: Port = 8081
    livekit_public_url: str | None = None
    token_ttl_seconds: Annotated[int, Field(ge=60, le=86_400)] = 3600
    admin_token: Annotated[SecretStr, Field(min_length=16)] | None = None
    max_concurrent_sessions: Annotated[int, Field(ge=1, le=1000)] = 10
    # Refuse new sessions while the machine's CPUs were busier than this share over the
    # last CPU_BUSY_WINDOW_S (process backend: the bots run here); 0 never refuses.
    max_cpu_busy: Annotated[float, Field(ge=0, le=1)] = 0.0
    cpu_busy_window_s: Annotated[float, Field(ge=2, le=300)] = 10.0
    bot_command: Annotated[str, Field(min_length=1)] = "python -m bot"
    bot_warm_pool: Annotated[int, Field(ge=0, le=20)] = 1
    # Fork bots from a zygote that has imported everything (`bot/fork_server.py`);
    # false, or a BOT_COMMAND that cannot serve forks, spawns each bot afresh.
    bot_fork_server: bool = True
    bot_start_timeout_s: Seconds = 15
    bot_stop_grace_s: Seconds = 5
    drain_timeout_s: Annotated[float, Field(ge=0, le=3600)] = 30
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 60
    cors_allow_origins: Annotated[list[str], NoDecode] = ["http://localhost:5173"]
    client_dist_dir: Path = Path("client/dist")

    # Scaling out: LiveKit's agent dispatch to worker hosts, conversation context in Redis
    session_backend: Literal["process", "dispatch"] = "process"
    session_server_url: str | None = None
    agent_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")] = "voice-agent"
    redis_url: SecretStr | None = None
    context_ttl_s: Annotated[float, Field(gt=0, le=86_400)] = 3600
    resume_line: str = "Sorry, I lost you for a moment."
    max_jobs_per_worker: Annotated[int, Field(ge=1, le=100)] = 4
    worker_idle_processes: Annotated[int, Field(ge=0, le=20)] = 2
    worker_job_executor: Literal["process", "thread"] = "process"
    worker_health_host: str = "127.0.0.1"
    worker_health_port: Annotated[int, Field(ge=0, lt=65536)] = 8082
    worker_metrics_port: Port | None = None

    # Local mode (scripts/run starts a local engine for each engine not configured above)
    local_stt_model: str = "tiny.en"
    local_tts_voice: str = "packaged"
    local_llm_model: str = "packaged"
    local_llm_port: Port = 8010
    local_livekit_port: Port = 7880
    client_port: Port = 5173

    # Metrics: the session server sets this for the bots it starts (a fresh directory per
    # run) and serves what they write there on /metrics; without it a bot runs the same,
    # its metrics unexported.
    prometheus_multiproc_dir: DirectoryPath | None = None

    # Logging
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    log_transcripts: bool = False

    # Tracing (OpenTelemetry over OTLP/HTTP; off unless the endpoint is set)
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: Annotated[str, Field(min_length=1, max_length=128)] = "voice-agent"

    @field_validator("livekit_url")
    @classmethod
    def _livekit_url_is_websocket(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("livekit_public_url")
    @classmethod
    def _public_url_is_websocket(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("session_server_url")
    @classmethod
    def _session_server_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator(
        "cors_allow_origins", "backchannel_words", "unfinished_turn_words", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _explicit_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                raise ValueError("list the allowed origins; a wildcard is not accepted")
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return value

    @field_validator("cerebras_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _otlp_endpoint_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (the OTLP/HTTP receiver)")
        return value.rstrip("/") if value is not None else None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def voxtral_http_url(self) -> str:
        """Base URL of the Voxtral HTTP API."""
        return (
            f"{'https' if self.voxtral_tls else 'http'}://{self.voxtral_host}:{self.voxtral_port}"
        )

    @property
    def voxtral_ws_url(self) -> str:
        """URL of the Voxtral realtime websocket."""
        scheme = "wss" if self.voxtral_tls else "ws"
        return f"{scheme}://{self.voxtral_host}:{self.voxtral_port}/v1/realtime"

    @property
    def chatterbox_url(self) -> str:
        """Base URL of the Chatterbox HTTP API."""
        scheme = "https" if self.chatterbox_tls else "http"
        return f"{scheme}://{self.chatterbox_host}:{self.chatterbox_port}"

    @property
    def control_url(self) -> str:
        """Where bots on worker hosts report to this session server (a websocket)."""
        host = "127.0.0.1" if self.server_host in {"0.0.0.0", "::"} else self.server_host
        base = self.session_server_url or f"http://{host}:{self.token_server_port}"
        return base.replace("http", "ws", 1) + "/agents/control"

    @property
    def client_livekit_url(self) -> str:
        """The LiveKit URL handed to browsers, which may differ from the bots' own."""
        return self.livekit_public_url or self.livekit_url

    def logging_options(self) -> dict[str, Any]:
        """`bot.logging.setup_logging`'s options from these settings."""
        return {
            "level": self.log_level,
            "json_format": self.log_format == "json",
            "secrets": self.secret_values(),
            "log_transcripts": self.log_transcripts,
        }

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        secrets = [
            self.livekit_api_key,
            self.livekit_api_secret,
            self.cerebras_api_key,
            self.voxtral_api_key,
            self.chatterbox_api_key,
            self.admin_token,
            self.redis_url,
        ]
        return [s.get_secret_value() for s in secrets if s and s.get_secret_value()]


# Settings only the session server reads; a bot's environment is built without them.
SERVER_ONLY_FIELDS = frozenset(
    {
        "server_host",
        "token_server_port",
        "livekit_public_url",
        "token_ttl_seconds",
        "admin_token",
        "max_concurrent_sessions",
        "max_cpu_busy",
        "cpu_busy_window_s",
        "bot_command",
        "session_backend",
        "session_server_url",
        "bot_warm_pool",
        "bot_fork_server",
        "bot_start_timeout_s",
        "bot_stop_grace_s",
        "drain_timeout_s",
        "rate_limit_per_minute",
        "cors_allow_origins",
        "client_dist_dir",
        "local_stt_model",
        "local_tts_voice",
        "local_llm_model",
        "local_llm_port",
        "local_livekit_port",
        "client_port",
    }
)


def configured_variables(env_file: str = ".env") -> set[str]:
    """Names of the variables set (non-empty) in the environment or in `.env`.

    The local launcher uses it to tell an engine configured as remote from one left to
    its default.
    """
    from dotenv import dotenv_values

    values = {**dotenv_values(env_file), **os.environ}
    return {name.upper() for name, value in values.items() if value}


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one safe line.

    Raises:
        SettingsError: naming each bad variable and what is wrong, without values.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        problems = []
        for error in e.errors(include_input=False, include_url=False):
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            if error["type"] == "missing":
                problems.append(f"{name} is required but not set")
            else:
                problems.append(f"{name} is invalid: {error['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
