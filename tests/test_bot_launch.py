"""How a bot is launched and how it gives up: the hand-over line, `.env`, unreachable LiveKit.

The real `python -m bot` runs as a child process, with no LiveKit behind the URL.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.control import ControlMessage
from bot.launch import Assignment, AssignmentError

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "ws://127.0.0.1:9"
SECRET = "a-very-secret-livekit-value"
ENV = {
    "PATH": os.environ["PATH"],
    "PYTHONPATH": str(ROOT),
    "LIVEKIT_URL": UNREACHABLE,
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": SECRET,
    "CEREBRAS_API_KEY": "csk-do-not-print-me-123456",
    "LIVEKIT_CONNECT_TIMEOUT_S": "2",
    "LOG_LEVEL": "WARNING",
}
# A value the bot refuses, so a test can tell whether it read the `.env` holding it.
BAD_DOTENV = "CHATTERBOX_TEMPERATURE=99\n"


def run_bot(
    args: list[str], cwd: Path, stdin: str = "", control: bool = False, **env: str
) -> tuple[subprocess.CompletedProcess, list[ControlMessage], float]:
    """Run `python -m bot`, optionally supervised; its result, control messages and duration."""
    read_end, write_end = os.pipe()
    argv = [sys.executable, "-m", "bot", *args]
    if control:
        argv += ["--control-fd", str(write_end)]
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            env={**ENV, **env},
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=90,
            pass_fds=(write_end,) if control else (),
        )
    finally:
        os.close(write_end)
    elapsed = time.monotonic() - started
    with os.fdopen(read_end, "rb") as pipe:
        messages = [ControlMessage.from_line(line) for line in pipe.read().splitlines()]
    return done, messages, elapsed


def mentioning(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("kitchen\n", "not a JSON object"),
        ('["kitchen"]\n', "not a JSON object"),
        ('{"room": "no spaces allowed"}\n', "room must be 1 to 64 letters"),
        ('{"room": ""}\n', "room must be"),
        ('{"trace_context": {}}\n', "room must be"),
        ('{"room": "den", "trace_context": {"traceparent": 7}}\n', "trace_context must map"),
        ('{"room": "den", "trace_context": "00-abc"}\n', "trace_context must map"),
        ('{"room": "den", "extra": 1}\n', "unknown fields: extra"),
        ('{"room": "' + "a" * 20_000 + '"}\n', "over 16384 bytes"),
    ],
)
def test_a_bad_assignment_line_is_refused_with_a_reason(line: str, problem: str) -> None:
    with pytest.raises(AssignmentError, match=problem):
        Assignment.from_line(line)


def test_an_assignment_round_trips_with_its_trace_context() -> None:
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    sent = Assignment("kitchen-42", carrier)
    assert sent.to_line().endswith(b"\n") and sent.to_line().count(b"\n") == 1
    assert Assignment.from_line(sent.to_line().decode()) == sent
    assert Assignment.from_line('{"room": "den"}') == Assignment("den", {})


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json at all\n", "not a JSON object"),
        ('{"room": "../etc"}\n', "room must be"),
    ],
)
def test_the_bot_exits_2_on_a_bad_hand_over_line(line: str, problem: str, tmp_path: Path) -> None:
    done, messages, _ = run_bot(["--standby"], tmp_path, stdin=line, control=True)
    assert done.returncode == 2
    lines = mentioning(done.stderr, "assignment")
    assert len(lines) == 1 and problem in lines[0], done.stderr
    assert "Traceback" not in done.stderr and line.strip() not in done.stderr
    assert messages == [ControlMessage("error", "bad_assignment", messages[0].detail)]


def test_unreachable_livekit_exits_3_within_the_bound_with_one_line(tmp_path: Path) -> None:
    done, _, elapsed = run_bot(["--room", "lobby"], tmp_path)
    assert done.returncode == 3, done.stderr[-2000:]
    lines = mentioning(done.stderr, "Could not reach LiveKit")
    assert len(lines) == 1, done.stderr[-2000:]
    assert f"at {UNREACHABLE}; gave up after 2." in lines[0]
    assert "(LIVEKIT_CONNECT_TIMEOUT_S=2)" in lines[0]
    assert "Session ended" not in done.stderr and "Traceback" not in done.stderr
    assert SECRET not in done.stderr
    # The bound plus the pipeline's import time on a busy machine.
    assert elapsed < 2 + 25, elapsed
    print(f"\nunreachable LiveKit: exit 3 after {elapsed:.1f}s (bound 2s plus start-up)")


def test_a_supervised_bot_reads_no_dotenv_and_reports_unreachable_livekit(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(BAD_DOTENV)
    by_hand, _, _ = run_bot(["--room", "lobby"], tmp_path)
    assert by_hand.returncode == 2 and "CHATTERBOX_TEMPERATURE is invalid" in by_hand.stderr

    line = Assignment("lobby").to_line().decode()
    done, messages, _ = run_bot(["--standby"], tmp_path, stdin=line, control=True)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "CHATTERBOX_TEMPERATURE" not in done.stderr
    (error,) = messages
    assert error.event == "error" and error.reason == "livekit_unreachable"
    assert error.detail and error.detail.startswith(f"Could not reach LiveKit at {UNREACHABLE};")


def test_a_standby_bot_with_nothing_on_stdin_leaves_quietly(tmp_path: Path) -> None:
    done, messages, _ = run_bot(["--standby"], tmp_path, control=True, LOG_LEVEL="INFO")
    assert done.returncode == 0
    assert [json.loads(x)["message"] for x in mentioning(done.stderr, "No room")] == [
        "No room given, leaving"
    ]
    assert messages == []
