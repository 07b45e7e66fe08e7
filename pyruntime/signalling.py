"""Sending signals to a container's processes without hitting anyone else.

A pid in state.json may have been reused.  We open a pidfd first, then check
that the pid still names the process we mean (its start time, or its pid
namespace): if so, the pidfd is pinned to that process and the signal cannot
reach a newcomer.  ``--all`` and ``delete --force`` signal every process in
the init's pid namespace, and never anything in ours.
"""

from __future__ import annotations

import os
import time

from pyruntime.errors import StateError, SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyruntime.procfs import ProcFS
    from pyruntime.syscalls.linux import LinuxSyscalls

ESRCH = 3


def _signal_if(sys: LinuxSyscalls, pid: int, still_ours: Callable[[], bool],
               signal_number: int) -> bool:
    """Signal ``pid`` if, with a pidfd held, ``still_ours()``; False if it is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError as exc:
        raise SyscallError("pidfd_open", str(pid), exc.errno or 0) from exc
    try:
        if not still_ours():
            return False
        sys.pidfd_send_signal(pidfd, signal_number, f"process {pid}")
        return True
    except SyscallError as exc:
        if exc.errno == ESRCH:
            return False
        raise
    finally:
        os.close(pidfd)


def send_signal(sys: LinuxSyscalls, procfs: ProcFS, pid: int, start_time: int,
                signal_number: int) -> None:
    if not _signal_if(sys, pid, lambda: procfs.is_alive(pid, start_time), signal_number):
        raise StateError("container not running")


def signal_namespace(sys: LinuxSyscalls, procfs: ProcFS, pid: int, start_time: int,
                     signal_number: int) -> None:
    """Signal the init and, if it has a pid namespace of its own, everyone in it."""
    if not procfs.is_alive(pid, start_time):
        return
    own = procfs.namespace_inode("self", "pid")
    theirs = procfs.namespace_inode(pid, "pid")
    send_signal(sys, procfs, pid, start_time, signal_number)
    if theirs is None or theirs == own:
        return
    for member in procfs.pids_in_namespace("pid", theirs):
        if member != pid:
            _signal_if(sys, member, lambda: procfs.namespace_inode(member, "pid") == theirs,
                       signal_number)


def wait_gone(procfs: ProcFS, pid: int, start_time: int, timeout: float = 10.0) -> None:
    """Until the init is dead (a zombie counts: its parent reaps it, not us)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while procfs.is_alive(pid, start_time):
        if time.monotonic() > deadline:
            raise StateError(f"process {pid} did not exit after SIGKILL")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
