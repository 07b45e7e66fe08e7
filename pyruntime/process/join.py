"""``exec``: a new process inside a running container (runc's setns path).

::

  pyruntime exec (parent)        joiner (host pid ns)              process
  -----------------------        --------------------              -------
  open /proc/INIT/ns/* ;
  fork ───────────────────────▶  (waits, if the container has a cgroup)
  write its pid to the cgroup
              ── IN_CGROUP ───▶  non-dumpable; setns(user),
                                 setns(the others)
                                 fork ──────────────────────────▶ (in the container's
              ◀── INIT_PID ────  _exit(0)                           pid namespace)
                                                                  limits, cwd, user, caps,
                                                                  no_new_privs, fds, exec
              ◀────────────────────────────── ERROR {stage, message} ── only on failure
              ◀────────────────────────────────────────────── EXEC ──  execve
  INIT_PID and EXEC (in either order), then EOF: exec'd (the pipe is close-on-exec).  Then wait for it
  (or, with --detach, write --pid-file and leave it to our caller's subreaper).
"""

from __future__ import annotations

import os

from pyruntime import credentials
from pyruntime.errors import ChildError, SyscallError
from pyruntime.plan.namespaces import NAMESPACES
from pyruntime.process.child import close_all_but, run_steps
from pyruntime.process.finish import exec_steps, identity_steps, set_cpu_affinity
from pyruntime.process.sync import ERROR, EXEC, IN_CGROUP, INIT_PID, Channel, error_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from pyruntime.cgroups import Manager
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
          parent_only_fds: list[int], initial_cpus: set[int] | None = None,
          cgroup: Manager | None = None) -> int:
    """Start the process in the container; return its pid once it has exec'd."""
    up_read, up_write = os.pipe2(os.O_CLOEXEC)
    down_read, down_write = os.pipe2(os.O_CLOEXEC)
    report = Channel(write_fd=up_write)
    tail.report = report
    sys.prctl(PR_SET_CHILD_SUBREAPER, 1, label="become subreaper")
    joiner = os.fork()
    if joiner == 0:
        os.close(up_read)
        os.close(down_write)
        _run_joiner(sys, tail, namespace_fds, [*parent_only_fds], report,
                    Channel(read_fd=down_read), initial_cpus, cgroup is not None)
    os.close(up_write)
    os.close(down_read)
    channel, to_joiner = Channel(read_fd=up_read), Channel(write_fd=down_write)
    pid = 0
    try:
        if cgroup is not None:  # before the joiner forks: the process starts inside it
            cgroup.add_pid(joiner)
            to_joiner.send(IN_CGROUP)
        to_joiner.close()
        pid = _follow(channel)
        os.waitpid(joiner, 0)
        joiner = 0
    except BaseException:
        for child in (joiner, pid):
            if child:
                _kill_and_reap(child)
        raise
    finally:
        channel.close()
        to_joiner.close()
    return pid


def _follow(channel: Channel) -> int:
    """The joiner's INIT_PID and the process's EXEC may come in either order; EOF
    (every writer gone: the joiner exited, the process exec'd) ends it."""
    pid, exec_seen, failure = 0, False, None
    while (message := channel.receive()) is not None:
        if message["type"] == INIT_PID:
            pid = int(message["pid"])
        elif message["type"] == EXEC:
            exec_seen = True
        elif message["type"] == ERROR and failure is None:
            failure = error_from(message)
    if failure is not None:
        raise failure
    if not pid or not exec_seen:
        raise ChildError("exec", "the process exited before it could exec")
    return pid


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _run_joiner(sys: LinuxSyscalls, tail: ProcessTail, namespace_fds: dict[str, int],
                parent_only_fds: list[int], report: Channel, from_parent: Channel,
                initial_cpus: set[int] | None, in_cgroup: bool) -> NoReturn:
    def fork_process() -> None:
        pid = os.fork()
        if pid == 0:
            run_steps([*identity_steps(tail), *exec_steps(tail)], report)
        report.send(INIT_PID, pid=pid)

    def close_parent_fds() -> None:
        for fd in parent_only_fds:
            os.close(fd)
        keep = [report.write_fd, from_parent.read_fd, *namespace_fds.values(),
                *range(3, 3 + tail.preserved_fds)]
        if tail.console_socket is not None:
            keep.append(tail.console_socket.fileno())
        close_all_but(keep)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("drop parent descriptors", close_parent_fds),
        ("wait to be in the cgroup", lambda: _wait_for_cgroup(from_parent, in_cgroup)),
        ("set non-dumpable", lambda: credentials.set_dumpable(sys, False)),
        ("set initial cpu affinity", lambda: set_cpu_affinity(initial_cpus)),
        ("join namespaces", lambda: _join(sys, namespace_fds)),
        ("fork process", fork_process),
    ]
    run_steps(steps, report)


def _wait_for_cgroup(from_parent: Channel, in_cgroup: bool) -> None:
    if in_cgroup:
        from_parent.expect(IN_CGROUP)
    from_parent.close()


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
