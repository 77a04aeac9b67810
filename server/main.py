"""Builds the FastAPI app: middleware, routers, the built client, the session lifecycle."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from loguru import logger

from bot.settings import Settings
from server.body_limit import BodySizeLimit
from server.bot_backend import BotBackend
from server.connect_outcomes import ConnectOutcomes
from server.cpu_busy import CpuBusy
from server.dispatch_backend import DispatchBackend
from server.errors import install_error_handlers
from server.process_backend import ProcessBackend
from server.rate_limiter import RateLimiter
from server.routes import agents, connect, health, metrics, sessions, token
from server.server_metrics import ServerMetrics
from server.session_manager import SessionManager
from server.telemetry import TELEMETRY

MAX_BODY_BYTES = 16 * 1024


def create_app(settings: Settings) -> FastAPI:
    """The session server for `settings`; its bots stop when the app shuts down."""
    server_metrics = ServerMetrics()
    backend: BotBackend
    cpu: CpuBusy | None = None
    if settings.session_backend == "dispatch":
        backend = dispatch = DispatchBackend(settings)
    else:
        backend, dispatch = ProcessBackend(settings, server_metrics), None
        if settings.max_cpu_busy > 0:
            # Only bots of its own run on this machine; worker hosts report their load.
            cpu = CpuBusy(settings.cpu_busy_window_s)
    session_manager = SessionManager(settings, backend, server_metrics, cpu)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await session_manager.start()
        sampling = asyncio.create_task(cpu.run()) if cpu else None
        yield
        if sampling:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        logger.info("Shutting down: stopping every bot")
        await session_manager.shutdown()
        server_metrics.close()
        logger.info("All bots stopped")

    app = FastAPI(
        title="Voice agent session server",
        summary="LiveKit tokens and one voice agent per room",
        lifespan=lifespan,
        telemetry=TELEMETRY,
    )
    app.state.settings = settings
    app.state.sessions = session_manager
    app.state.metrics = server_metrics
    app.state.dispatch = dispatch
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(ConnectOutcomes, counter=server_metrics.connect_responses)
    for module in (health, token, connect, sessions, metrics, agents):
        app.include_router(module.router)
    if settings.client_dist_dir.is_dir():
        # Production: the page and the API on one origin.
        app.mount("/", StaticFiles(directory=settings.client_dist_dir, html=True), name="client")
    return app
