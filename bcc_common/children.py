"""Child processes that cannot outlive their parent: Linux PR_SET_PDEATHSIG, set in the child before exec.

A demo or test killed with SIGKILL runs no cleanup at all; without this its mosquitto and influxd kept
running (orphaned, holding ports and temporary directories). The kernel sends the signal when the
thread that forked the child ends, so spawn from the event loop's thread (asyncio subprocesses do),
never from a worker thread. Elsewhere than Linux nothing is set and the callers' try/finally remain.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# Loaded in the parent: the child between fork and exec only makes the one system call.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def die_with_parent() -> Callable[[], None] | None:
    """``preexec_fn`` for subprocess/asyncio: the child gets SIGKILL when this process dies."""
    libc, parent = _LIBC, os.getpid()
    if libc is None:
        return None

    def set_pdeathsig() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: nobody will signal us
            os._exit(1)

    return set_pdeathsig
