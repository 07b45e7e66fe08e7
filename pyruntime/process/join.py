"""``exec``: a new process inside a running container (runc's setns path).

::

  pyruntime exec (parent)        joiner (host pid ns)              process
  -----------------------        --------------------              -------
  open /proc/INIT/ns/* ;
  fork ───────────────────────▶  non-dumpable; setns(user),
                                 setns(the others)
                                 fork ──────────────────────────▶ (in the container's
              ◀── INIT_PID ────  _exit(0)                           pid namespace)
                                                                  limits, cwd, user, caps,
                                                                  no_new_privs, fds, exec
              ◀────────────────────────────── ERROR {stage, message} ── only on failure
              ◀────────────────────────────────────────────── EXEC ──  execve
  EXEC then EOF on the pipe: exec'd (the pipe is close-on-exec).  Then wait for it
  (or, with --detach, write --pid-file and leave it to our caller's subreaper).
"""

from __future__ import annotations

import os

from pyruntime import credentials
from pyruntime.errors import SyscallError
from pyruntime.plan.namespaces import NAMESPACES
from pyruntime.process.child import run_steps
from pyruntime.process.finish import exec_steps, identity_steps, set_cpu_affinity
from pyruntime.process.sync import INIT_PID, Channel, wait_for_exec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from pyruntime.process.finish import ProcessTail
    from pyruntime.procfs import ProcFS
    from pyruntime.syscalls.linux import LinuxSyscalls

PR_SET_CHILD_SUBREAPER = 36
SIGKILL = 9


def open_namespaces(procfs: ProcFS, init_pid: int) -> dict[str, int]:
    """The init's namespaces that differ from ours, opened close-on-exec."""
    opened: dict[str, int] = {}
    for kind, (_, name) in NAMESPACES.items():
        theirs = procfs.namespace_inode(init_pid, name)
        if theirs is None or theirs == procfs.namespace_inode("self", name):
            continue
        try:
            opened[kind] = os.open(procfs.path(init_pid, "ns", name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            for fd in opened.values():
                os.close(fd)
            raise SyscallError("open", f"{name} namespace of process {init_pid}",
                               exc.errno or 0) from exc
    return opened


def spawn(sys: LinuxSyscalls, tail: ProcessTail, namespace_fds: dict[str, int],
          parent_only_fds: list[int], initial_cpus: set[int] | None = None) -> int:
    """Start the process in the container; return its pid once it has exec'd."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    report = Channel(write_fd=write_fd)
    tail.report = report
    sys.prctl(PR_SET_CHILD_SUBREAPER, 1, label="become subreaper")
    joiner = os.fork()
    if joiner == 0:
        os.close(read_fd)
        _run_joiner(sys, tail, namespace_fds, parent_only_fds, report, initial_cpus)
    os.close(write_fd)
    channel = Channel(read_fd=read_fd)
    pid = 0
    try:
        pid = int(channel.expect(INIT_PID)["pid"])
        os.waitpid(joiner, 0)
        joiner = 0
        wait_for_exec(channel)
    except BaseException:
        for child in (joiner, pid):
            if child:
                _kill_and_reap(child)
        raise
    finally:
        channel.close()
    return pid


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _run_joiner(sys: LinuxSyscalls, tail: ProcessTail, namespace_fds: dict[str, int],
                parent_only_fds: list[int], report: Channel,
                initial_cpus: set[int] | None) -> NoReturn:
    def fork_process() -> None:
        pid = os.fork()
        if pid == 0:
            run_steps([*identity_steps(tail), *exec_steps(tail)], report)
        report.send(INIT_PID, pid=pid)

    def close_parent_fds() -> None:
        for fd in parent_only_fds:
            os.close(fd)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("drop parent descriptors", close_parent_fds),
        ("set non-dumpable", lambda: credentials.set_dumpable(sys, False)),
        ("set initial cpu affinity", lambda: set_cpu_affinity(initial_cpus)),
        ("join namespaces", lambda: _join(sys, namespace_fds)),
        ("fork process", fork_process),
    ]
    run_steps(steps, report)


def _join(sys: LinuxSyscalls, namespace_fds: dict[str, int]) -> None:
    """User first (it grants the rights to join the rest), mount last but for pid/time,
    which apply to the child we fork next."""
    for kind in NAMESPACES:
        fd = namespace_fds.get(kind)
        if fd is not None:
            sys.setns(fd, NAMESPACES[kind][0], f"{kind} namespace")
            os.close(fd)
    if "user" in namespace_fds:
        sys.setresgid(0)
        sys.setresuid(0)
