"""Local mode: the real small models end to end, and the one run command.

The conversation test runs faster-whisper, Piper and llama.cpp behind the engines'
protocols, a real livekit-server and real bots from the session server; the run-command
test starts `scripts/run` as a newcomer would, with no .env and no key, and stops it
with Ctrl-C (SIGINT).
"""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.livekit_server import free_tcp_port
from tests.participant import Participant
from tests.stack import Backends, Stack, start_stack
from tests.waiting import until

pytestmark = [pytest.mark.local, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def local_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    from engines.llama_responder import LlamaResponder
    from engines.local import gguf_model, piper_voice, whisper_model_dir
    from engines.piper_synthesizer import PiperSynthesizer
    from engines.whisper_transcriber import WhisperTranscriber

    backends = Backends(
        WhisperTranscriber(whisper_model_dir("tiny.en")),
        LlamaResponder(gguf_model("packaged")),
        PiperSynthesizer(piper_voice("packaged")),
    )
    folder = tmp_path_factory.mktemp("local")
    async for stack in start_stack(
        folder,
        backends,
        cerebras_model="local-llm",
        voxtral_timeout_ms=8000,
        chatterbox_timeout_ms=8000,
        llm_timeout_ms=30000,
        greeting="Hello!",
    ):
        yield stack


async def test_a_spoken_question_answered_by_local_models(
    local_stack: Stack, speak: Callable[[str], bytes]
) -> None:
    status, body = await local_stack.server.post("/connect", {})
    assert status == 200, body
    participant = Participant()
    await participant.join(body["url"], body["token"])
    await until(lambda: participant.first_loud_at(0.0), 60, "the spoken greeting")
    await asyncio.sleep(1.5)  # let the greeting finish

    question = speak("What is the capital of France?")
    spoken_at = participant.say(question)
    await until(lambda: participant.first_loud_at(spoken_at), 90, "a spoken answer")
    first_audio = participant.first_loud_at(spoken_at)
    assert first_audio is not None

    chat = local_stack.engines.chat.log.of_kind("chat")[-1]["body"]
    asked = next(m["content"] for m in reversed(chat["messages"]) if m["role"] == "user")
    assert "capital" in asked.lower() and "france" in asked.lower(), asked

    stt = local_stack.engines.voxtral.log
    utterance_at = stt.of_kind("utterance")[-1]["at"]
    transcribed_at = stt.of_kind("transcribed")[-1]["at"]
    await until(
        lambda: [
            r
            for r in local_stack.server.records()
            if r.get("event") == "Turn metrics" and r.get("llm_ttft_ms") is not None
        ],
        30,
        "the turn metrics",
    )
    record = [
        r
        for r in local_stack.server.records()
        if r.get("event") == "Turn metrics" and r.get("llm_ttft_ms") is not None
    ][-1]
    print(
        f"\nlocal mode: STT {(transcribed_at - utterance_at) * 1000:.0f} ms after a "
        f"{len(question) / 32000:.1f} s utterance; LLM first token {record['llm_ttft_ms']} ms; "
        f"TTS first audio {record['tts_first_audio_latency_ms']} ms; voice-to-voice at the "
        f"participant {(first_audio - spoken_at) * 1000:.0f} ms (bot-logged "
        f"{record['voice_to_voice_ms']} ms)"
    )
    await participant.leave()


def checkout_without_env(clone: Path) -> Path:
    """The project as a newcomer has it: no .env, so nothing is configured.

    The installed parts (.venv, .tools, client/node_modules) are linked, not copied,
    and are taken as up to date.
    """
    linked = {".venv", ".tools"}
    skipped = {".env", ".run", "artifacts", ".git", ".pytest_cache", ".mypy_cache"}
    clone.mkdir()
    for item in ROOT.iterdir():
        if item.name in linked:
            (clone / item.name).symlink_to(item)
        elif item.name in skipped:
            continue
        elif item.is_dir():
            shutil.copytree(item, clone / item.name, ignore=_heavy)
        else:
            shutil.copy2(item, clone / item.name)
    (clone / "client" / "node_modules").symlink_to(ROOT / "client" / "node_modules")
    # The linked .venv is this checkout's: an install run from the copy, which a
    # pyproject.toml newer than the install stamp would start, would point the
    # editable install at the copy, soon deleted.
    os.utime(clone / "pyproject.toml", (0, 0))
    return clone


def _heavy(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in {"node_modules", "dist", "__pycache__"}}


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


async def test_the_run_command_serves_the_page_and_stops_cleanly(tmp_path: Path) -> None:
    clone = checkout_without_env(tmp_path / "project")
    ports = {
        "TOKEN_SERVER_PORT": free_tcp_port(),
        "VOXTRAL_PORT": free_tcp_port(),
        "CHATTERBOX_PORT": free_tcp_port(),
        "LOCAL_LLM_PORT": free_tcp_port(),
        "LOCAL_LIVEKIT_PORT": 17880,
        "CLIENT_PORT": free_tcp_port(),
    }
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    env |= {name: str(port) for name, port in ports.items()}
    output = (tmp_path / "run.log").open("w")
    run = subprocess.Popen(
        ["bash", "scripts/run"],
        cwd=clone,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    page = f"http://127.0.0.1:{ports['CLIENT_PORT']}"
    try:
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while True:
                assert run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                assert time.monotonic() - started < 400, (tmp_path / "run.log").read_text()
                if "click Connect" in (tmp_path / "run.log").read_text():
                    break
                await asyncio.sleep(0.5)
            async with http.get(page) as response:
                assert response.status == 200 and "Voice agent" in await response.text()
            async with http.get(f"{page}/health") as response:
                assert (await response.json()) == {"status": "ok"}
        print(f"\nrun command ready in {time.monotonic() - started:.1f}s")
        started_processes = descendants(run.pid)
        assert len(started_processes) >= 6
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 0
        left = [pid for pid in started_processes if alive(pid)]
        assert not left, left
        assert "stopped" in (tmp_path / "run.log").read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
