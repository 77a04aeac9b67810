"""One bot in one LiveKit room: join, greet, converse, leave when the room empties."""

import asyncio
from datetime import timedelta

import aiohttp
from livekit import rtc
from loguru import logger
from pipecat.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.workers.runner import WorkerRunner

from bot.logging import BOT_JOINED_EVENT, Redactor
from bot.pipeline import build_worker
from bot.settings import Settings
from bot.tokens import mint_token

AGENT_TOKEN_TTL = timedelta(hours=6)
# How long the greeting waits for the participant to subscribe to the bot's audio.
LISTENER_WAIT_S = 3.0


def mint_agent_token(settings: Settings, room: str) -> str:
    """A token that lets this bot join, publish and subscribe in one room only."""
    return mint_token(
        api_key=settings.livekit_api_key.get_secret_value(),
        api_secret=settings.livekit_api_secret.get_secret_value(),
        room=room,
        identity=settings.bot_identity,
        participant_type="agent",
        ttl=AGENT_TOKEN_TTL,
    ).jwt


async def until_someone_listens(transport: LiveKitTransport) -> None:
    """Wait until a participant subscribes to the bot's audio (at most `LISTENER_WAIT_S`).

    The SFU forwards nothing before the subscription exists, so a greeting spoken
    the moment the participant appears would lose its first words.
    """
    room: rtc.Room = transport._client.room  # Pipecat 1.14 has no public handle on it.
    audio = [
        publication.wait_for_subscription()
        for publication in room.local_participant.track_publications.values()
        if publication.kind == rtc.TrackKind.KIND_AUDIO
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*audio), LISTENER_WAIT_S)
    except TimeoutError:
        logger.warning(f"Nobody subscribed to the bot's audio within {LISTENER_WAIT_S:.0f}s")


def quicker_uplink(transport: LiveKitTransport) -> None:
    """Resample the room's 48 kHz audio to the pipeline's 16 kHz with a shorter filter.

    Pipecat uses soxr's VHQ stream filter, which holds back 37.5 ms of audio; MQ holds
    back 15 ms and still passes everything below 8 kHz, all that 16 kHz can carry, so
    the VAD hears the user stop 22 ms sooner.
    """
    # Pipecat 1.14 offers no setting for it.
    transport.input()._mixed_resampler = SOXRStreamAudioResampler(quality="MQ")


async def run_room(settings: Settings, room: str, redactor: Redactor) -> None:
    """Serve one room until it empties, nobody comes, the SFU goes away, or a signal.

    Every resource the session holds (HTTP sessions, sockets, the pipeline's
    buffers) is released before this returns.
    """
    async with aiohttp.ClientSession() as http:
        transport = LiveKitTransport(
            url=settings.livekit_url,
            token=mint_agent_token(settings, room),
            room_name=room,
            params=LiveKitParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_in_user_tracks=False,
            ),
        )
        quicker_uplink(transport)
        worker = build_worker(
            transport=transport, settings=settings, http=http, room=room, redactor=redactor
        )
        runner = WorkerRunner(handle_sigint=True, handle_sigterm=True)
        someone_joined = asyncio.Event()
        ending = asyncio.Event()

        async def end(reason: str) -> None:
            if not ending.is_set():
                ending.set()
                logger.info(f"{reason}, ending the session")
                await worker.cancel()

        async def leave_if_nobody_comes() -> None:
            try:
                await asyncio.wait_for(someone_joined.wait(), settings.bot_idle_timeout_s)
            except TimeoutError:
                await end(f"Nobody joined within {settings.bot_idle_timeout_s:.0f}s")

        idle_watch = asyncio.create_task(leave_if_nobody_comes())

        @transport.event_handler("on_connected")
        async def joined(_: LiveKitTransport) -> None:
            # The session server watches for this record to know the bot made it in.
            logger.bind(event=BOT_JOINED_EVENT).info("Joined the room")

        @transport.event_handler("on_first_participant_joined")
        async def greet(_: LiveKitTransport, participant_id: str) -> None:
            someone_joined.set()
            logger.info("First participant joined")
            await until_someone_listens(transport)
            await worker.queue_frame(TTSSpeakFrame(settings.greeting))

        @transport.event_handler("on_participant_left")
        async def maybe_leave(t: LiveKitTransport, participant_id: str, reason: str) -> None:
            if not [p for p in t.get_participants() if p != settings.bot_identity]:
                await end("Last participant left")

        @transport.event_handler("on_disconnected")
        async def sfu_gone(_: LiveKitTransport) -> None:
            if not ending.is_set():
                logger.warning("Lost the connection to LiveKit")
            await end("Disconnected from LiveKit")

        await runner.add_workers(worker)
        try:
            await runner.run()
        finally:
            idle_watch.cancel()
