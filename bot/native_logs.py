"""LiveKit's native log records, held back from Python while a room connects.

livekit-rtc hands every record of its native side to Python, debug and trace included,
one callback each, and Python drops all but a handful. Joining a room makes ~1,400 of
them: ~55 ms of CPU in a bot start of ~300 ms, paid ten times over by a burst of ten
rooms on the same cores. While a connect runs the native side keeps its records, and
its own logger prints what `RUST_LOG` asks for (nothing, unless set: its lines would
bypass our redacting JSON sink). A connect that fails still says why, as the exception
it raises; what the native side logs after the connect (a reconnect, a disconnect) is
forwarded to Python as before.
"""

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# livekit-rtc 1.1 offers no public handle on its native client or log forwarding.
from livekit.rtc._ffi_client import FfiClient, ffi_event_callback
from livekit.rtc.version import __version__


def native_client() -> FfiClient:
    """livekit-rtc's native client, made with native printing off unless `RUST_LOG` is set.

    The native logger reads `RUST_LOG` once, when the client is made.
    """
    os.environ.setdefault("RUST_LOG", "off")
    return FfiClient.instance


def forward_native_logs(on: bool) -> None:
    """Switch the forwarding of native records to Python on or off.

    The native side takes a second initialisation as a new configuration: the same
    callback, with or without its records.
    """
    native_client()._ffi_lib.livekit_ffi_initialize(
        ffi_event_callback, on, b"python", __version__.encode("ascii")
    )


class NativeLogHold:
    """Forwarding stays off while any connect runs.

    Rooms in threads share one native client, so a room's native records go unforwarded
    while another room in its process joins.
    """

    def __init__(self, forward: Callable[[bool], None] = forward_native_logs) -> None:
        self._forward = forward
        self._lock = threading.Lock()
        self._connecting = 0

    @contextmanager
    def connecting(self) -> Iterator[None]:
        """Hold native records back for the block: a room connecting."""
        with self._lock:
            self._connecting += 1
            if self._connecting == 1:
                self._forward(False)
        try:
            yield
        finally:
            with self._lock:
                self._connecting -= 1
                if self._connecting == 0:
                    self._forward(True)


NATIVE_LOG_HOLD = NativeLogHold()
