"""Waiting for a container process in the foreground (``run``, ``exec``), as runc does:
the signals a terminal sends are passed on, and the exit status is the process's
(128+N if signal N killed it).  The process must be our child (we are its subreaper).

The handlers go in before the process starts: a signal that arrives while we do
not know its pid yet is kept and delivered as soon as we do, instead of killing us.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` costs 10 ms (enums)
import os

FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


class SignalForwarder:
    __slots__ = ("pid", "pending")

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        for number in FORWARDED:
            _signal.signal(number, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.pid:
            _send(self.pid, signum)
        else:
            self.pending.append(signum)

    def forward_to(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            _send(pid, signum)
        self.pending.clear()

    def wait(self) -> int:
        """Until the process exits; its exit status as a shell reports it."""
        while True:
            try:
                _, status = os.waitpid(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:  # reaped by someone else: nothing more to tell
                return 0
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)


def _send(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
