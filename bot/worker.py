"""`python -m bot worker`: a worker host that LiveKit's agent dispatch sends rooms to.

livekit-agents' `AgentServer` is used only as the scheduler: it registers with the SFU
under `AGENT_NAME` (explicit dispatch: only rooms the session server dispatches come
here), reports this host's load, keeps `WORKER_IDLE_PROCESSES` job processes warm and
runs each room in one of them. The job runs our Pipecat pipeline (`bot.room.run_room`);
it never calls `ctx.connect()`, since the transport joins with the identity the job was
accepted with, and a second connection under that identity would make the SFU drop
one. SIGTERM or SIGINT drains: no new rooms, the conversations in progress go on for up
to `DRAIN_TIMEOUT_S` (a second signal cuts that short), then the host exits 0. The
bots still running then are stopped (`HANDOVER_SIGNAL` to a job process, a request
through `RoomStops` to a job thread): each saves its conversation and reports
`worker_stopped`, and the session server dispatches the room again.

`WORKER_JOB_EXECUTOR=thread` runs each room in a thread of the host instead of a
process of its own: the rooms then share one LiveKit runtime, its audio thread and the
Python interpreter, which costs less per room; a crash of the process costs all of
them, and their Python work shares one core.
"""

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
import tempfile
import time

import aiohttp
from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess, JobRequest
from loguru import logger

from bot.control import NoControl
from bot.control_socket import ControlAddress, SocketControl
from bot.job_slots import JobSlots
from bot.launch import Assignment
from bot.logging import setup_logging
from bot.native_logs import native_client
from bot.room_stops import RoomStops
from bot.settings import Settings, load_settings
from processors.redaction import Redactor

# livekit-server offers a job only to workers below its agents.target_load (0.7 by
# default), so a full worker must report less than that.
LOAD_CEILING = 0.65
# What the host sends its job processes to stop their bots for another worker to take
# over. Not SIGTERM: a supervisor may send that to the whole process group (systemd
# does), and every conversation must then drain, not move.
HANDOVER_SIGNAL = signal.SIGUSR2


def worker_load(active_jobs: int, max_jobs: int) -> float:
    """This host's load as reported to the SFU: `LOAD_CEILING` with `max_jobs` running."""
    return LOAD_CEILING * active_jobs / max_jobs


def load_threshold(max_jobs: int) -> float:
    """The load from which the host refuses jobs: half a job short of `max_jobs`.

    The half keeps float rounding from letting one job too many in. A request being
    answered counts as one more job, so concurrent requests cannot overfill the host.
    """
    return worker_load(max_jobs, max_jobs) * (max_jobs - 0.5) / max_jobs


# Imported once in the worker's fork server, so each job process starts with them loaded.
# The openai and anyio modules are otherwise imported lazily on a room's first LLM
# request, blocking its loop (0.1-2.6 s each, measured with six rooms starting at once).
PRELOADED_MODULES = [
    "bot.room",
    "bot.redis_context_store",
    "onnxruntime",
    "anyio._backends._asyncio",
    "openai.pagination",
    "openai.resources.models",
    "openai.lib.streaming.chat",
]


# The logging set up in this process, once (`_logging`).
_process_redactor: Redactor | None = None
# The rooms this process runs in job threads, so the host can hand them over.
_threaded_rooms = RoomStops()


def _not_about_ctx_connect(record: logging.LogRecord) -> bool:
    # livekit-agents warns when a job never calls ctx.connect(); ours never does, on purpose.
    return "job_ctx.connect()" not in record.getMessage()


def _logging(settings: Settings) -> Redactor:
    """Set up this process's logging; the host's serves the rooms it runs in threads."""
    global _process_redactor
    _process_redactor = setup_logging(**settings.logging_options())
    logging.getLogger("livekit.agents").addFilter(_not_about_ctx_connect)
    return _process_redactor


def prewarm(proc: JobProcess) -> None:
    """Load settings and logging in a job process (or thread) before a room arrives."""
    settings = load_settings()
    proc.userdata["settings"] = settings
    redactor = _process_redactor
    if proc.executor_type is not JobExecutorType.THREAD or redactor is None:
        redactor = _logging(settings)
    proc.userdata["redactor"] = redactor


async def run_job(ctx: JobContext) -> None:
    """Serve the job's room, reporting to the session server, then end the job.

    Returning alone would not end it: livekit-agents waits for `ctx.shutdown()`.
    """
    fields = {"room": ctx.job.room.name, "job_id": ctx.job.id}
    if ctx.proc.executor_type is JobExecutorType.PROCESS:
        # The process is this room's alone: its every record, from any thread, is the room's.
        logger.configure(extra=fields)
    # Job threads share the process: their records carry the room by context.
    with logger.contextualize(**fields):
        try:
            await _serve_job(ctx)
        finally:
            ctx.shutdown("the conversation ended")
            if ctx.proc.executor_type is JobExecutorType.THREAD:
                _free_the_room()


def _free_the_room() -> None:
    """Free a finished room's reference cycles now, in a process other rooms go on in.

    Left to the automatic full collection, a threaded host's RSS rose ~6 MB a room
    until one ran (496 -> 693 MB over 36 rooms).
    """
    started = time.perf_counter()
    freed = gc.collect()
    logger.debug(f"Freed {freed} objects in {1000 * (time.perf_counter() - started):.0f} ms")


async def _serve_job(ctx: JobContext) -> None:
    from bot.room import LiveKitUnreachable, run_room

    settings: Settings = ctx.proc.userdata["settings"]
    redactor: Redactor = ctx.proc.userdata["redactor"]
    address, trace_context = ControlAddress.from_metadata(ctx.job.metadata)
    async with aiohttp.ClientSession() as http:
        control: NoControl | None = NoControl()
        if address is not None:
            ids = {"worker_id": ctx.worker_id, "pid": str(os.getpid())}
            control = await SocketControl.connect(http, address, **ids)
        if control is None:
            logger.info("The session server withdrew this dispatch; not joining")
            return
        threaded = ctx.proc.executor_type is JobExecutorType.THREAD
        try:
            reason = await run_room(
                settings,
                Assignment(ctx.job.room.name, trace_context),
                redactor,
                control,
                stop_signals={} if threaded else {HANDOVER_SIGNAL: "worker_stopped"},
                stop_requests=_threaded_rooms.add(ctx.job.id) if threaded else None,
                attributes={"worker_id": ctx.worker_id, "job_id": ctx.job.id},
            )
            control.ended(reason)
            logger.info("Session ended")
        except LiveKitUnreachable as e:
            logger.error(str(e))
            control.error("livekit_unreachable", str(e))
        except Exception:
            logger.exception("The bot failed")
            control.error("crashed", "the bot failed unexpectedly; its log has the traceback")
        finally:
            _threaded_rooms.discard(ctx.job.id)
            if isinstance(control, SocketControl):
                await control.close()


class WorkerHost:
    """One `AgentServer` configured from the settings, run until a signal drains it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._slots = JobSlots(settings.max_jobs_per_worker)
        if settings.worker_job_executor == "thread":
            # livekit-rtc makes its native client on first use, without a lock: two job
            # threads joining at once would each make one, and one room's connect would
            # wait forever for an answer that went to the other's. Make it here, once.
            native_client()
            # No fork server preloads them for threads: the first room would wait.
            for module in PRELOADED_MODULES:
                importlib.import_module(module)
            # Out of the collector's sight, as in the fork server: the full collection at
            # each room's end (`_free_the_room`) then walks the rooms' objects only, not
            # the ~200,000 the modules hold (~75 ms each).
            gc.collect()
            gc.freeze()
        # Job processes write their Prometheus metrics here (prometheus-client's
        # multiprocess mode); livekit-agents sums them on WORKER_METRICS_PORT. Job
        # threads count in the host's own registry, which it serves without one.
        self._metrics_dir = tempfile.TemporaryDirectory(prefix="voice-agent-worker-metrics-")
        in_processes = settings.worker_job_executor == "process"
        metrics = settings.worker_metrics_port is not None and in_processes
        self._server = AgentServer(
            ws_url=settings.livekit_url,
            api_key=settings.livekit_api_key.get_secret_value(),
            api_secret=settings.livekit_api_secret.get_secret_value(),
            host=settings.worker_health_host,
            port=settings.worker_health_port,
            num_idle_processes=settings.worker_idle_processes,
            load_fnc=self._load,
            load_threshold=load_threshold(settings.max_jobs_per_worker),
            shutdown_process_timeout=settings.bot_stop_grace_s,
            job_executor_type=JobExecutorType(settings.worker_job_executor),
            setup_fnc=prewarm,
            preload_modules=PRELOADED_MODULES,
            prometheus_port=settings.worker_metrics_port,
            prometheus_multiproc_dir=self._metrics_dir.name if metrics else None,
        )
        self._server.rtc_session(run_job, agent_name=settings.agent_name, on_request=self._accept)

    def _load(self, server: AgentServer) -> float:
        return worker_load(len(server.active_jobs), self._settings.max_jobs_per_worker)

    async def _accept(self, request: JobRequest) -> None:
        log = logger.bind(room=request.room.name, job_id=request.id)
        running = (job.job.id for job in self._server.active_jobs)
        if not self._slots.take(request.id, running):
            # Not terminal: the SFU offers the job to another worker.
            await request.reject(terminate=False)
            log.info(f"Turned a room away: {self._settings.max_jobs_per_worker} taken")
            return
        try:
            # The transport's token carries the same identity (`bot.room.mint_agent_token`).
            # This returns once the job runs in one of the host's processes.
            await request.accept(identity=self._settings.bot_identity, name="Voice agent")
            log.info("Accepted a room")
        finally:
            self._slots.release(request.id)

    def _hand_over(self) -> None:
        """Stop the bots still running, so the session server moves their rooms.

        livekit-agents' own shutdown would wait 15 s for a job to notice, then cancel it
        in a way a bot cannot tell from losing the SFU. (Its process pool is internal to
        the pinned livekit-agents 1.8.9; `active_jobs` reads it the same way.)
        """
        for process in self._server._proc_pool.processes:
            pid = getattr(process, "pid", None)
            if process.running_job is not None and pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, HANDOVER_SIGNAL)
        _threaded_rooms.stop_all("worker_stopped")

    async def serve(self) -> int:
        """Run until SIGTERM or SIGINT, then drain; 0 when drained, 1 if the server failed."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        running = asyncio.create_task(self._server.run(devmode=False))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            stopping.cancel()
            error = running.exception()
            logger.error(f"The worker stopped: {type(error).__name__ if error else 'closed'}")
            await self._server.aclose()
            return 1
        jobs = len(self._server.active_jobs)
        timeout = self._settings.drain_timeout_s
        logger.info(f"Draining: no new rooms; up to {timeout:.0f}s for {jobs} conversation(s)")
        # A zero timeout would mean "wait forever" to livekit-agents.
        drain = asyncio.create_task(self._server.drain(timeout=max(timeout, 0.001)))  # type: ignore[arg-type]
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, drain.cancel)  # a second signal skips the drain
        await asyncio.wait({drain})
        if drain.cancelled():
            logger.warning("Second stop signal: handing the conversations over now")
        elif isinstance(drain.exception(), TimeoutError):
            logger.warning(f"Conversations still running after {timeout:.0f}s; handing them over")
        else:
            logger.info("Drained")
        self._hand_over()
        await self._server.aclose()
        await asyncio.gather(running, return_exceptions=True)
        self._metrics_dir.cleanup()
        return 0


def main() -> int:
    """Run one worker host; return the process exit code."""
    import sys

    from bot.settings import SettingsError

    try:
        settings = load_settings()
    except SettingsError as e:
        sys.stderr.write(f"{e}\n")
        return 2
    _logging(settings)
    logger.bind(agent_name=settings.agent_name).info("Worker host starting")
    return asyncio.run(WorkerHost(settings).serve())
