"""`python -m server`: the session server under uvicorn on TOKEN_SERVER_PORT.

On SIGTERM/SIGINT it refuses new sessions (503 with Retry-After) and lets live
conversations end within DRAIN_TIMEOUT_S, then stops the rest; a second signal stops
them at once.

Exit codes: 0 after a clean shutdown (no bot is left running), 2 on bad configuration.
"""

import argparse
import sys

import uvicorn

from bot.logging import setup_logging
from bot.settings import SettingsError, load_settings
from bot.tracing import setup_tracing, shutdown_tracing
from server.draining_server import DrainingServer
from server.main import create_app


def main(argv: list[str] | None = None) -> int:
    """Run the server until a signal; return the exit code."""
    argparse.ArgumentParser(
        prog="python -m server",
        description=(
            "Serve /token, /connect and the operator endpoints, and run one voice agent "
            "per room. Configuration comes from the environment and .env (see .env.example)."
        ),
    ).parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as e:
        sys.stderr.write(f"{e}\n")
        return 2
    setup_logging(
        **settings.logging_options(),
        service="server",
    )
    setup_tracing(settings, "server")
    app = create_app(settings)
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=settings.server_host,
            port=settings.token_server_port,
            log_config=None,
            timeout_graceful_shutdown=5,
        ),
        drain=lambda: app.state.sessions.shutdown(settings.drain_timeout_s),
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        shutdown_tracing()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
