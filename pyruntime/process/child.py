"""The only way pyruntime runs code in a forked child.

A child must never return into the code that forked it (the CLI would carry
on as a second copy of itself), and every failure must reach the parent as
data.  ``run_child`` runs the named steps, reports the first failure as an
ERROR message naming its step, and always ends in ``os._exit``.
"""

from __future__ import annotations

import os

from pyruntime.errors import HookError, PyRuntimeError
from pyruntime.process.sync import ERROR

MAX_FD = 1 << 20  # above any RLIMIT_NOFILE this runtime allows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import NoReturn

    from pyruntime.process.sync import Channel


def run_steps(steps: Sequence[tuple[str, Callable[[], object]]], report: Channel) -> NoReturn:
    """Run ``steps`` in order; exit 0 after the last, or 1 after reporting a failure."""
    stage = "start"
    status = 1
    try:
        for stage, step in steps:
            step()
        status = 0
    except PyRuntimeError as exc:
        _report(report, stage, str(exc), hook=isinstance(exc, HookError))
    except OSError as exc:  # a plain file operation of a step
        where = f" {exc.filename}" if exc.filename else ""
        _report(report, stage, f"{os.strerror(exc.errno or 0).lower()}{where}")
    except BaseException as exc:  # a bug: still data for the parent, never a traceback here
        _report(report, stage, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        os._exit(status)


def _report(report: Channel, stage: str, message: str, hook: bool = False) -> None:
    try:
        report.send(ERROR, stage=stage, message=message[:3000], hook=hook)
    except OSError:
        try:  # nobody listens any more (after READY): the container's stderr is all we have
            os.write(2, f"pyruntime: {stage}: {message}\n".encode())
        except OSError:
            pass


def close_all_but(keep: Iterable[int], first: int = 3) -> None:
    """Close every descriptor from ``first`` up except ``keep``: what our caller left
    open must not reach the container, not even for a moment (a ``cwd`` of
    /proc/self/fd/N would follow it out of the rootfs: CVE-2024-21626)."""
    low = first
    for fd in sorted(fd for fd in set(keep) if fd >= first):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, MAX_FD)
