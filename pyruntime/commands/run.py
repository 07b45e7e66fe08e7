"""``run``: create, start, wait; the exit status is the process's (128+N if killed by N).

The launch made us the init's subreaper, so after ``create`` the init is our
child: we wait for it, forward the signals a terminal sends, then delete the
container (unless ``--keep``).  ``--detach`` returns right after ``start``.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` costs 10 ms (enums)
import os

from pyruntime.commands.create import options_from
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed

FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def run(parsed: Parsed, root: str) -> int:
    runtime = Runtime(root)
    container_id = parsed.args[0]
    created = runtime.create(container_id, options_from(parsed))
    try:
        runtime.start(container_id)
    except BaseException:
        runtime.delete(container_id, force=True)
        raise
    if parsed.flag("detach"):
        return 0
    for number in FORWARDED:
        _signal.signal(number, lambda signum, frame: _forward(created.pid, signum))
    status = _wait_for(created.pid)
    if not parsed.flag("keep"):
        for warning in runtime.delete(container_id, force=True):
            parsed.warn(warning)
    return status


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_for(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)
