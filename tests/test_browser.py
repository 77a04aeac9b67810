"""The built client in Debian's Chromium, headless, against the real stack.

Chromium's fake microphone plays an espeak-ng WAV laid out on a timeline (silence while
the greeting plays, then the question, ...), the page talks to the session server that
serves it, the bot joins through the real livekit-server, and the engine stand-ins answer.
Each test saves a screenshot under artifacts/browser/.
"""

import asyncio
import shutil
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from bot.settings import Settings
from tests.conftest import ADMIN_TOKEN, STANDIN_BOT, server_settings
from tests.session_server import SessionServer
from tests.stack import ARTIFACTS, GREETING, Stack, start_stack

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIST = ROOT / "client" / "dist"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ARTIFACTS / "browser"
RATE = 16000
PHASE = "document.querySelector('#status').dataset.phase"
LAST_AGENT_LINE = "document.querySelector('#conversation li.agent:last-child .text')"
FIRST_AGENT_LINE = "document.querySelector('#conversation li.agent .text')"
# The probe's flags for this machine's closed network, plus the fake media devices.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
]


def timeline_wav(folder: Path, name: str, parts: list[bytes | float]) -> Path:
    """A 16 kHz WAV of speech (PCM) and silences (seconds), in order."""
    path = folder / f"{name}.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        for part in parts:
            wav.writeframes(part if isinstance(part, bytes) else bytes(int(part * RATE) * 2))
    return path


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["process", "dispatch"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The page's stack, with bots as server processes or dispatched to a worker host."""
    if not (CLIENT_DIST / "index.html").exists():
        pytest.fail("client/dist is missing: scripts/install builds it")
    folder = tmp_path_factory.mktemp(f"browser-{request.param}")
    # One STT commit per utterance: the isolation test routes transcripts by utterance
    # length, which early commits at every short pause would cut into short pieces.
    async for running in start_stack(
        folder,
        session_backend=request.param,
        client_dist_dir=str(CLIENT_DIST),
        vad_pause_secs=Settings.model_fields["vad_stop_secs"].default,
    ):
        yield running


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def playwright_driver() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: scripts/install --test installs Debian's chromium")
    async with async_playwright() as playwright:
        yield playwright


@pytest_asyncio.fixture(loop_scope="module")
async def chromium(playwright_driver: Any) -> AsyncIterator[Callable[..., Any]]:
    """Launch Chromium with a given fake microphone file; closed when the test ends."""
    launched: list[Browser] = []

    async def launch(wav: Path | None, grant_mic: bool = True) -> Browser:
        args = list(CHROMIUM_ARGS)
        if grant_mic:
            args.append("--use-fake-ui-for-media-stream")
        if wav is not None:
            args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        browser = await playwright_driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        launched.append(browser)
        return browser

    yield launch
    for browser in launched:
        await browser.close()


async def open_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 420, "height": 900})
    await page.goto(url)
    return page


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def until(page: Page, expression: str, timeout: float, what: str) -> Any:
    """Poll a page expression until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            await screenshot(page, f"timeout-{what.replace(' ', '-')}")
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def connect(page: Page) -> str:
    room = await page.input_value("#room")
    await page.click("#connect")
    return room


async def test_a_conversation_in_the_page(
    stack: Stack, chromium: Callable[..., Any], speak: Callable[[str], bytes], tmp_path: Path
) -> None:
    transcript = "what is the weather like in paris"
    reply = "Paris looks sunny and mild this afternoon."
    stack.transcriber.script[:] = [transcript]
    stack.reply_queue[:] = [reply]
    wav = timeline_wav(
        tmp_path, "question", [3.0, speak("What is the weather like in Paris?"), 12.0]
    )
    page = await open_page(await chromium(wav), stack.server.url)
    await connect(page)

    await until(
        page, "document.querySelector('#status').dataset.phase === 'listening'", 30, "connected"
    )
    # The greeting plays in the page: its level is measured from the audio element's track.
    await until(
        page,
        "Number(document.querySelector('#agent-level').dataset.peak) > 0.05",
        20,
        "greeting audio",
    )
    await until(
        page,
        f"{FIRST_AGENT_LINE}?.textContent === {GREETING!r}",
        20,
        "the greeting's text",
    )
    # The page said it plays the bot's audio (client-ready): no greeting waited that out.
    assert not [r for r in stack.records() if "did not say it plays" in r["message"]]
    await until(
        page,
        f"{LAST_AGENT_LINE}?.textContent.includes({reply!r})",
        40,
        "the agent's reply text",
    )
    transcripts = await page.evaluate("window.voiceAgentTimeline.userTranscripts")
    interim = [text for _, text, final in transcripts if not final]
    final = [text for _, text, final in transcripts if final]
    assert interim and transcript.startswith(interim[0]), transcripts
    assert final == [transcript]
    lines = await page.locator("#conversation li").evaluate_all(
        "items => items.map(li => [li.className, li.querySelector('.text').textContent])"
    )
    assert lines == [["agent", GREETING], ["user", transcript], ["agent", reply]], lines
    assert not await page.locator("#conversation li.user.interim").count()

    # The greeting's record (no user turn, so no endpointing) may come in after the reply's
    # text: wait for the question's turn.
    await until(
        page,
        "document.querySelector('#waterfall [data-metric=endpointer_latency_ms]')"
        "?.textContent.endsWith(' ms')",
        20,
        "the waterfall",
    )
    shown = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#waterfall [data-metric]')]"
        ".map(e => [e.dataset.metric, e.textContent]))"
    )
    for metric in (
        "endpointer_latency_ms",
        "llm_ttft_ms",
        "tts_first_audio_latency_ms",
        "e2e_first_audio_ms",
    ):
        assert shown[metric].endswith(" ms"), shown
    assert shown["barge_in_cutoff_ms"] == "—"
    peak = float(await page.get_attribute("#agent-level", "data-peak") or 0)
    print(f"\npage: agent audio peak level {peak:.2f}; waterfall {shown}")
    await screenshot(page, "conversation")
    await page.click("#disconnect")
    await until(
        page, "document.querySelector('#status').dataset.phase === 'idle'", 10, "disconnected"
    )


async def test_speaking_over_the_agent_stops_its_audio(
    stack: Stack, chromium: Callable[..., Any], speak: Callable[[str], bytes], tmp_path: Path
) -> None:
    long_reply = " ".join(
        "amber basil cedar dahlia ember fennel garnet hazel indigo juniper".split() * 4
    )
    stack.transcriber.script[:] = ["tell me a long story", "please stop"]
    stack.reply_queue[:] = [long_reply, "Okay stopping now."]
    stack.engines.chatterbox.backend.realtime_factor = 1.0
    # Greeting, the question, about three seconds of the long reply, then "please stop".
    wav = timeline_wav(
        tmp_path,
        "barge-in",
        [3.0, speak("Tell me a long story."), 4.0, speak("Please stop."), 8.0],
    )
    try:
        page = await open_page(await chromium(wav), stack.server.url)
        await connect(page)
        await until(
            page,
            "window.voiceAgentTimeline.phases.filter(([, p]) => p === 'user-speaking').length >= 2",
            45,
            "the interruption",
        )
        await until(
            page,
            f"{LAST_AGENT_LINE}?.textContent.includes('stopping')",
            30,
            "the new reply",
        )
    finally:
        stack.engines.chatterbox.backend.realtime_factor = 0.0
    timeline = await page.evaluate("window.voiceAgentTimeline")
    interrupted_at = [t for t, p in timeline["phases"] if p == "user-speaking"][1]
    loud_before = [t for t, level in timeline["agentLevels"] if t < interrupted_at and level > 0.05]
    assert loud_before and interrupted_at - loud_before[-1] < 1000, "the agent was talking"
    # The first quiet moment after the interruption, and it stays quiet until the new reply.
    quiet_at = next(
        t for t, level in timeline["agentLevels"] if t >= interrupted_at and level < 0.02
    )
    cutoff_ms = quiet_at - interrupted_at
    assert cutoff_ms < 1500, f"agent audio went on {cutoff_ms:.0f} ms after the interruption"
    print(f"\npage: agent audio silent {cutoff_ms:.0f} ms after the page saw the user speak")
    await screenshot(page, "barge-in")


async def test_two_pages_in_two_rooms_stay_isolated(
    stack: Stack, chromium: Callable[..., Any], speak: Callable[[str], bytes], tmp_path: Path
) -> None:
    short_reply, long_reply = "Falcon harbor.", "Glacier meadow lantern."
    # Chromium's noise suppression may split a long sentence: keep the short one very short.
    stack.transcriber.by_length = (1.8, "falcon query", "glacier query")
    stack.replies.update({"falcon": short_reply, "glacier": long_reply})
    try:
        # Two bots start at once beside two browsers: give them time to join first.
        short_wav = timeline_wav(tmp_path, "short", [8.0, speak("Hi."), 12.0])
        long_wav = timeline_wav(
            tmp_path,
            "long",
            [
                3.0,
                speak("Could you please tell me a long story about the sea and the mountains?"),
                12.0,
            ],
        )
        pages = [
            await open_page(await chromium(short_wav), stack.server.url),
            await open_page(await chromium(long_wav), stack.server.url),
        ]
        rooms = [await connect(page) for page in pages]
        assert rooms[0] != rooms[1]
        for page, reply in zip(pages, (short_reply, long_reply), strict=True):
            await until(
                page,
                f"document.querySelector('#conversation').textContent.includes({reply!r})",
                45,
                "its own reply",
            )
    finally:
        stack.transcriber.by_length = None
        stack.replies.clear()
    texts = [await page.inner_text("#conversation") for page in pages]
    assert long_reply not in texts[0] and short_reply not in texts[1]
    for i, page in enumerate(pages):
        await screenshot(page, f"isolated-{i}")


async def test_capacity_full_message(chromium: Callable[..., Any], tmp_path: Path) -> None:
    settings = server_settings(
        bot_command=STANDIN_BOT, max_concurrent_sessions=1, client_dist_dir=str(CLIENT_DIST)
    )
    variables = {name: getattr(settings, name) for name in type(settings).model_fields}
    server = await SessionServer.start(
        tmp_path, {k: v for k, v in variables.items() if v is not None}, ADMIN_TOKEN
    )
    try:
        status, _ = await server.post("/connect", {})
        assert status == 200
        page = await open_page(await chromium(None), server.url)
        await connect(page)
        await until(page, "!document.querySelector('#error').hidden", 20, "the error")
        text = await page.inner_text("#error-text")
        assert "busy" in text and "10s" in text, text
        assert await page.inner_text("#error-action") == "Try again"
        assert await page.get_attribute("#status", "data-phase") == "idle"
        await screenshot(page, "capacity-full")
    finally:
        server.stop()


async def test_unreachable_server_and_denied_microphone(
    stack: Stack, chromium: Callable[..., Any]
) -> None:
    page = await open_page(await chromium(None), stack.server.url)
    await page.route("**/connect", lambda route: route.abort())
    await connect(page)
    await until(page, "!document.querySelector('#error').hidden", 20, "the error")
    assert "cannot be reached" in await page.inner_text("#error-text")
    await screenshot(page, "unreachable")

    denied = await open_page(await chromium(None, grant_mic=False), stack.server.url)
    await connect(denied)
    await until(denied, "!document.querySelector('#error').hidden", 20, "the error")
    assert "Microphone access was denied" in await denied.inner_text("#error-text")
    await screenshot(denied, "microphone-denied")


async def test_connection_loss_is_shown_with_a_way_back(
    chromium: Callable[..., Any], tmp_path: Path
) -> None:
    async for own in start_stack(tmp_path, client_dist_dir=str(CLIENT_DIST)):
        silence = timeline_wav(tmp_path, "silence", [30.0])
        page = await open_page(await chromium(silence), own.server.url)
        await connect(page)
        await until(page, f"{PHASE} === 'listening'", 30, "connected")
        own.livekit.kill()
        killed = time.monotonic()
        # LiveKit may try to resume first ("reconnecting"); with no server it gives up.
        await until(page, f"{PHASE} === 'lost'", 60, "the connection-lost state")
        print(f"\npage: connection loss shown {time.monotonic() - killed:.1f}s after the SFU died")
        assert "lost" in await page.inner_text("#error-text")
        assert await page.inner_text("#error-action") == "Reconnect"
        assert await page.is_enabled("#connect")
        await screenshot(page, "connection-lost")
