"""One bot in one LiveKit room: join, greet, converse, leave when the room empties."""

import asyncio
import signal
import time
from collections.abc import Mapping
from datetime import timedelta

from livekit import rtc
from loguru import logger
from pipecat.frames.frames import ErrorFrame, TTSSpeakFrame
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.workers.runner import WorkerRunner

from bot.control import EndReason, NoControl
from bot.launch import Assignment
from bot.livekit_transport import PausableLiveKitTransport
from bot.pipeline import AUDIO_IN_SAMPLE_RATE, build_worker
from bot.saved_conversation import SavedConversation
from bot.settings import Settings
from bot.tokens import mint_token
from bot.tracing import start_conversation
from processors.pausing_vad import PausingSileroVADAnalyzer
from processors.redaction import Redactor
from services.keepalive import engine_http_session

AGENT_TOKEN_TTL = timedelta(hours=6)
# How long the greeting waits for the participant to subscribe to the bot's audio.
LISTENER_WAIT_S = 3.0


class LiveKitUnreachable(Exception):
    """The bot could not get into its room within LIVEKIT_CONNECT_TIMEOUT_S; safe to print."""


# Sessions that ended this way are over for good: nothing to resume.
FINISHED: frozenset[EndReason] = frozenset({"room_empty", "nobody_came"})
# A bot run on its own ends its session on these signals.
STOP_SIGNALS: Mapping[signal.Signals, EndReason] = {
    signal.SIGINT: "signal",
    signal.SIGTERM: "signal",
}


def mint_agent_token(
    settings: Settings, room: str, attributes: dict[str, str] | None = None
) -> str:
    """A token that lets this bot join, publish and subscribe in one room only."""
    return mint_token(
        api_key=settings.livekit_api_key.get_secret_value(),
        api_secret=settings.livekit_api_secret.get_secret_value(),
        room=room,
        identity=settings.bot_identity,
        participant_type="agent",
        ttl=AGENT_TOKEN_TTL,
        attributes=attributes,
    ).jwt


async def until_someone_listens(
    transport: LiveKitTransport, client_ready: asyncio.Event, client_ready_wait_s: float
) -> None:
    """Wait until someone can hear the bot: subscribed, and playing.

    The subscription is waited for at most `LISTENER_WAIT_S`, `client_ready` at most
    `client_ready_wait_s` more. The SFU forwards nothing before the subscription
    exists, so a greeting spoken the moment the participant appears would lose its
    first words. Nor is the audio heard the moment the SFU forwards it: a busy client
    starts playing a new track later, and what came before is lost. Our client says
    `client-ready` once it plays.
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
    if not client_ready_wait_s:
        return
    try:
        await asyncio.wait_for(client_ready.wait(), client_ready_wait_s)
    except TimeoutError:
        logger.info(f"The client did not say it plays audio within {client_ready_wait_s:.1f}s")


async def run_room(
    settings: Settings,
    assignment: Assignment,
    redactor: Redactor,
    control: NoControl,
    *,
    stop_signals: Mapping[signal.Signals, EndReason] = STOP_SIGNALS,
    stop_requests: asyncio.Queue[EndReason] | None = None,
    attributes: dict[str, str] | None = None,
    vad_analyzer: PausingSileroVADAnalyzer | None = None,
) -> EndReason:
    """Serve one room until it empties, nobody comes, the SFU goes away, or a signal.

    A conversation an earlier bot saved for this room (`bot/context_store.py`) is
    resumed, opening with RESUME_LINE instead of the greeting. Every resource the
    session holds (HTTP sessions, sockets, the pipeline's buffers) is released before
    this returns.

    Args:
        settings: The bot's configuration.
        assignment: The room to serve and the trace the session belongs to.
        redactor: The log redactor, told about conversation text.
        control: Where "joined" is reported (the caller reports the end).
        stop_signals: The signals that end the session, each with its reason; a worker
            host's job leaves SIGTERM/SIGINT to the host, which drains instead.
        stop_requests: Where a reason to stop arrives for a room that cannot take signals
            (one in a worker host's job thread).
        attributes: Participant attributes for the bot (a worker host's job ids).
        vad_analyzer: Silero, loaded before the room came (a standby bot).

    Returns:
        Why the session ended.

    Raises:
        LiveKitUnreachable: the bot was not in the room within LIVEKIT_CONNECT_TIMEOUT_S.
            Pipecat's transport retries connecting on its own and would otherwise keep
            the process waiting for as long as the SFU stays away.
    """
    conversation = await SavedConversation.open(settings, assignment.room)
    try:
        reason = await _serve(
            settings,
            assignment,
            redactor,
            control,
            conversation,
            stop_signals,
            stop_requests,
            attributes,
            vad_analyzer,
        )
        if reason in FINISHED:
            await conversation.forget()
        return reason
    finally:
        await conversation.close()


async def _serve(
    settings: Settings,
    assignment: Assignment,
    redactor: Redactor,
    control: NoControl,
    conversation: SavedConversation,
    stop_signals: Mapping[signal.Signals, EndReason],
    stop_requests: asyncio.Queue[EndReason] | None,
    attributes: dict[str, str] | None,
    vad_analyzer: PausingSileroVADAnalyzer | None,
) -> EndReason:
    room = assignment.room
    started = time.monotonic()
    opening_line = settings.resume_line if conversation.resumed else settings.greeting
    async with engine_http_session() as http:
        transport = PausableLiveKitTransport(
            url=settings.livekit_url,
            token=mint_agent_token(settings, room, attributes),
            room_name=room,
            params=LiveKitParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_in_user_tracks=False,
            ),
            sample_rate=AUDIO_IN_SAMPLE_RATE,
            frame_ms=settings.audio_in_frame_ms,
        )
        worker = build_worker(
            transport=transport,
            settings=settings,
            http=http,
            room=room,
            redactor=redactor,
            context=conversation.context,
            on_context_changed=conversation.save,
            vad_analyzer=vad_analyzer,
            opening_line=opening_line,
        )
        start_conversation(worker, assignment.trace_context)
        # Signals are ours to handle, so every end of the session has a known reason.
        runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
        connected = asyncio.Event()
        someone_joined = asyncio.Event()
        ended: list[EndReason] = []

        async def end(reason: EndReason, why: str) -> None:
            if not ended:
                ended.append(reason)
                logger.info(f"{why}, ending the session")
                await worker.cancel()

        async def give_up_if_unreachable() -> None:
            timeout = settings.livekit_connect_timeout_s
            try:
                await asyncio.wait_for(connected.wait(), timeout)
            except TimeoutError:
                await end("failed", f"Not connected to LiveKit within {timeout:.0f}s")

        async def leave_if_nobody_comes() -> None:
            await connected.wait()
            try:
                await asyncio.wait_for(someone_joined.wait(), settings.bot_idle_timeout_s)
            except TimeoutError:
                await end("nobody_came", f"Nobody joined within {settings.bot_idle_timeout_s:.0f}s")

        watches: list[asyncio.Task[None]] = [
            asyncio.create_task(give_up_if_unreachable()),
            asyncio.create_task(leave_if_nobody_comes()),
        ]
        loop = asyncio.get_running_loop()
        requested: set[EndReason] = set()

        def stop(reason: EndReason) -> None:
            requested.add(reason)
            watches.append(asyncio.create_task(end(reason, "Stop requested")))

        for sig, reason in stop_signals.items():
            loop.add_signal_handler(sig, stop, reason)

        async def stop_on_request(requests: asyncio.Queue[EndReason]) -> None:
            stop(await requests.get())

        if stop_requests is not None:
            watches.append(asyncio.create_task(stop_on_request(stop_requests)))

        @worker.event_handler("on_pipeline_error")
        async def transport_gave_up(_: object, error: ErrorFrame) -> None:
            # Pipecat's transport retries (three times, each a few tries of the SDK's
            # own) and then only marks itself unusable; the pipeline would idle on.
            failed = error.processor
            ours = failed is not None and failed in (transport.input(), transport.output())
            if ours and failed is not None and not failed.is_usable and not connected.is_set():
                await end("failed", "The LiveKit transport gave up connecting")

        @transport.event_handler("on_connected")
        async def joined(_: LiveKitTransport) -> None:
            connected.set()
            logger.info("Joined the room")
            control.joined()

        client_ready = asyncio.Event()

        @worker.rtvi.event_handler("on_client_ready")
        async def client_plays(_: object) -> None:
            client_ready.set()

        @transport.event_handler("on_first_participant_joined")
        async def greet(_: LiveKitTransport, participant_id: str) -> None:
            someone_joined.set()
            logger.info("First participant joined")
            # A resumed conversation's client has been listening since before this bot.
            wait_s = 0.0 if conversation.resumed else settings.greeting_client_ready_wait_s
            await until_someone_listens(transport, client_ready, wait_s)
            if conversation.resumed:
                logger.info("Resuming the conversation an earlier bot saved")
            await worker.queue_frame(TTSSpeakFrame(opening_line))

        @transport.event_handler("on_participant_left")
        async def maybe_leave(t: LiveKitTransport, participant_id: str, reason: str) -> None:
            if not [p for p in t.get_participants() if p != settings.bot_identity]:
                await end("room_empty", "Last participant left")

        @transport.event_handler("on_disconnected")
        async def sfu_gone(_: LiveKitTransport) -> None:
            if not ended:
                logger.warning("Lost the connection to LiveKit")
            await end("sfu_disconnected", "Disconnected from LiveKit")

        await runner.add_workers(worker)
        try:
            await runner.run()
        finally:
            for sig in stop_signals:
                loop.remove_signal_handler(sig)
            for watch in watches:
                watch.cancel()
    if not connected.is_set() and not set(ended) & requested:
        # Pipecat's transport connects while the pipeline sets up; a session that ended
        # before it was ever in the room (our deadline or its own retries) never got in.
        raise LiveKitUnreachable(
            f"Could not reach LiveKit at {settings.livekit_url}; gave up after "
            f"{time.monotonic() - started:.1f}s "
            f"(LIVEKIT_CONNECT_TIMEOUT_S={settings.livekit_connect_timeout_s:g})"
        )
    return ended[0] if ended else "pipeline_ended"
