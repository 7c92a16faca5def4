"""SIGTERM and SIGINT as one orderly stop request, for `dfr serve`, `dfr demo` and `dfr sim`.

Why this exists: uvicorn's ``Server.serve`` installs its own SIGINT/SIGTERM handlers and, when it
returns, *re-raises* the signal it caught so that the previous handler sees it. For SIGTERM the previous
handler is the default one, which ends the process on the spot: `running_service`'s shutdown (closing
recordings, stopping the dispatcher, closing the database) never ran, and `dfr demo` left its simulator
child behind. For SIGINT, asyncio's own handler then cancelled `dfr serve`'s main task in the middle of
that shutdown, so how far it got depended on which ``await`` the cancellation happened to hit.

So dfr owns the signals: `StopSignals` turns the first SIGTERM or SIGINT into an `asyncio.Event` that
the command waits on before it shuts down in order, and the service's uvicorn server
(`dfr.service.QuietServer`) leaves signals alone (it stops when told through ``should_exit``). A second
signal while shutting down means "now": the process exits at once with 128 + the signal number.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import TracebackType

__all__ = ["STOP_SIGNALS", "StopSignals"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """``with StopSignals() as stop: ... await stop.wait()`` (inside the running event loop)."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.received: signal.Signals | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for sig in STOP_SIGNALS:
                self._loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.requested.is_set():
            log.warning("%s again during shutdown: exiting now", sig.name)
            os._exit(128 + int(sig))
        self.received = sig
        log.info("%s received: shutting down in order (again to exit at once)", sig.name)
        self.requested.set()

    async def wait(self) -> signal.Signals | None:
        await self.requested.wait()
        return self.received
