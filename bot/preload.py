"""What the bot's fork server imports before it forks: everything heavy a room needs.

Imported once, these modules' code and objects are shared copy-on-write by every bot
forked afterwards, instead of being imported again (1-2 s of CPU) and held privately
(most of a bot's memory) by each. onnxruntime starts a thread when its Python module
initialises, and a process with a second thread must not fork; so its native library
is only mapped here, and the module itself initialises in each bot on first use.
"""

import ctypes
import importlib
import importlib.util
import os
import platform
import sys
import types
from pathlib import Path

MODULES = [
    "bot.room",
    "bot.logging",
    "bot.tracing",
    "bot.redis_context_store",
    "livekit.rtc",
    "numpy",
    "anyio._backends._asyncio",
    "openai.pagination",
    "openai.resources.models",
    "openai.lib.streaming.chat",
    "httpcore2",  # httpx2 imports it on a client's first use
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
]
_LAZY = "onnxruntime"


def preload() -> None:
    """Import `MODULES`, with onnxruntime mapped but initialised lazily."""
    _defer(_LAZY)
    for name in MODULES:
        importlib.import_module(name)
    from services.cerebras_llm import tls_context

    tls_context()
    # The OpenAI client names the platform in its first request's headers; finding the
    # processor runs `uname -p` in a subprocess, ~17 ms of each bot's start unless cached here.
    platform.platform()


def finish() -> None:
    """Initialise what `preload` deferred: a forked standby does it before its room comes."""
    module = sys.modules.get(_LAZY)
    if isinstance(module, _Deferred):
        getattr(module, "__version__")  # noqa: B009 (the read is what imports it)


def _defer(name: str) -> None:
    """Map a package's native extensions now; run its Python code on first attribute use."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.origin is None:
        return
    for extension in sorted(Path(spec.origin).parent.glob("capi/*.cpython-*.so")):
        ctypes.CDLL(str(extension), mode=os.RTLD_LOCAL)
    deferred = _Deferred(name)
    deferred.__spec__ = spec
    sys.modules[name] = deferred


class _Deferred(types.ModuleType):
    """Stands in for a module until an attribute it lacks is read, then imports it.

    Not `importlib.util.LazyLoader`: on Python 3.11 an `import` statement reads the
    module's `__spec__`, which makes that one load at once.
    """

    def __getattr__(self, attr: str) -> object:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)
