"""Waiting for a container process in the foreground (``run``, ``exec``), as runc does:
the signals a terminal sends are passed on, and the exit status is the process's
(128+N if signal N killed it).  The process must be our child (we are its subreaper)."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` costs 10 ms (enums)
import os

FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def wait_forwarding_signals(pid: int) -> int:
    for number in FORWARDED:
        _signal.signal(number, lambda signum, frame: _forward(pid, signum))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:  # reaped by someone else: nothing more to tell
            return 0
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
