"""Child processes that end with their parent, however the parent ends (SIGKILL included).

A parent's ``finally`` that stops its children runs on SIGTERM and SIGINT, but nothing of the parent runs
on SIGKILL, an OOM kill or a crash of the interpreter. Left alone, a simulator child would then go on
sending MAVLink to the service's ports, and a PX4 instance would go on flying, for nobody. So every child
dfr starts (the simulator of `dfr demo` and of the tests, the PX4 instances of `dfr sitl run`) is started
with `die_with_parent()` as its ``preexec_fn``: on Linux the kernel sends the child SIGTERM the moment
its parent dies (``prctl(PR_SET_PDEATHSIG)``), so the child still stops in its own orderly way.

The kernel ties the signal to the *thread* that forked the child: start children from the thread that
lives as long as they should (dfr starts them from the event loop's thread). On other systems this is a
no-op and the parent's own shutdown is the only guarantee.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["PDEATHSIG_SUPPORTED", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved once, in the parent: between fork and exec the child must only call it, never load anything.
_PRCTL = _load_prctl()
PDEATHSIG_SUPPORTED = _PRCTL is not None


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive `sig` when this process dies (None where unsupported).

    The parent may die between the fork and the ``prctl``; the child then already belongs to another
    parent, would never get the signal, and so ends itself at once.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec
