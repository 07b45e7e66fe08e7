"""The last steps before ``process.args`` runs, shared by ``create``'s init and ``exec``.

Whoever forked us has already entered the container (its namespaces and
root); these steps give the process its limits, identity, capabilities and
descriptors, then exec it.  ``identity_steps`` and ``exec_steps`` are lists
of named steps for ``child.run_steps``.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` costs 10 ms (enums)
import os

from pyruntime import credentials, lsm, scheduling
from pyruntime.errors import PyRuntimeError, SyscallError
from pyruntime.plan.scheduling import plan_io_priority, plan_scheduler
from pyruntime.procfs import write_on_procfs
from pyruntime.process.sync import EXEC

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    import socket

    from pyruntime.plan.capabilities import CapabilityPlan
    from pyruntime.plan.seccomp import SeccompPlan
    from pyruntime.process.sync import Channel
    from pyruntime.spec.model import Process
    from pyruntime.syscalls.linux import LinuxSyscalls

    Steps = list[tuple[str, Callable[[], object]]]

MS_BIND = 0x1000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SIGPIPE, SIGXFSZ = 13, 25
CAUGHT_SIGNALS = (1, 2, 3, 10, 12, 14, 15)  # those the init handles while it waits


class ProcessTail:
    """The process to become, and what the parent decided about it."""

    __slots__ = ("sys", "process", "capabilities", "preserved_fds", "extra_env", "executable",
                 "report", "final_cpus", "seccomp", "listener", "notify_state",
                 "console_socket", "bind_console")

    def __init__(self, sys: LinuxSyscalls, process: Process, capabilities: CapabilityPlan | None,
                 preserved_fds: int, extra_env: list[str], report: Channel | None = None) -> None:
        self.sys = sys
        self.process = process
        self.capabilities = capabilities
        self.preserved_fds = preserved_fds  # fds 3 .. 3+N-1 reach the process
        self.extra_env = extra_env  # LISTEN_FDS/LISTEN_PID when passed through
        self.executable = ""
        self.report = report  # where the EXEC message goes (exec.status, or exec's pipe)
        self.final_cpus: set[int] | None = None  # execCPUAffinity.final, for exec only
        self.seccomp: SeccompPlan | None = None
        self.listener: socket.socket | None = None  # to the seccomp agent, made before pivot
        self.notify_state: dict[str, object] = {}  # the state the agent gets with the fd
        self.console_socket: socket.socket | None = None  # connected by the parent
        self.bind_console = False  # the init binds its pty onto /dev/console

    def set_up_terminal(self) -> None:
        """process.terminal: a pty of the container's devpts becomes our stdio."""
        if not self.process.terminal or self.console_socket is None:
            return
        from pyruntime.tty import Console

        console = Console()
        console.resize(self.process.raw.get("consoleSize"))
        os.fchown(console.peer_fd, self.process.user.uid, self.process.user.gid)
        if self.bind_console:
            bind_onto_dev_console(self.sys, console.peer_fd)
        console.send_master(self.console_socket)
        self.console_socket = None
        console.become_stdio()

    def preload(self) -> None:
        """Import now what later steps need: after pivot_root (or setns into the mount
        namespace) our own files and libseccomp are out of sight."""
        if self.seccomp is not None:
            from pyruntime import seccomp

            seccomp.preload(self.seccomp)
        if self.console_socket is not None:
            import pyruntime.tty  # noqa: F401

    def connect_seccomp_listener(self, state: dict[str, object]) -> None:
        """Before pivot_root, while the host's listenerPath resolves; the state's pid is
        our pid on the host, which the host's /proc (still mounted here) tells."""
        plan = self.seccomp
        if plan is None or not plan.uses_notify or not plan.listener_path:
            return
        from pyruntime.seccomp import connect_listener

        self.listener = connect_listener(plan.listener_path)
        self.notify_state = {**state, "pid": int(os.readlink("/proc/self"))}

    def load_seccomp(self) -> None:
        from pyruntime.seccomp import load_filter, send_notify_fd

        assert self.seccomp is not None
        notify_fd = load_filter(self.seccomp)
        if notify_fd is None:
            return
        try:
            if self.listener is not None and self.seccomp.listener_path:
                send_notify_fd(self.seccomp.listener_path, notify_fd, self.notify_state,
                               self.seccomp.listener_metadata, self.listener)
        finally:
            os.close(notify_fd)

    def set_final_affinity(self) -> None:
        set_cpu_affinity(self.final_cpus)

    def find_executable(self) -> None:
        self.executable = find_executable(self.process.args[0], self.process.env)

    def drop_bounding_set(self) -> None:
        if self.capabilities is not None:
            credentials.drop_bounding_set(self.sys, self.capabilities)

    def set_capabilities(self) -> None:
        if self.capabilities is not None:
            credentials.set_capabilities(self.sys, self.capabilities)

    def set_no_new_privileges(self) -> None:
        if self.process.no_new_privileges:
            credentials.set_no_new_privileges(self.sys)

    def close_descriptors(self) -> None:
        """Nothing the config did not ask for may reach the process (CVE-2024-21626)."""
        first_closed = 3 + self.preserved_fds
        self.sys.close_range_cloexec(first_closed)
        for fd in range(3, first_closed):
            os.set_inheritable(fd, True)

    def set_exec_labels(self) -> None:
        """The last change before the exec: the profile applies from the exec on."""
        for path, text in lsm.exec_attributes(self.process.raw):
            write_on_procfs(path, text, self.sys.fstatfs_type)

    def exec(self) -> None:
        """The report channel learns we are about to exec: its close-on-exec EOF then
        means success, and an ERROR after EXEC means the execve itself failed."""
        if self.report is not None:
            self.report.send(EXEC)
        for number in (*CAUGHT_SIGNALS, SIGPIPE, SIGXFSZ):  # Python ignores SIGPIPE, SIGXFSZ
            _signal.signal(number, _signal.SIG_DFL)
        env = dict(entry.split("=", 1) for entry in [*self.process.env, *self.extra_env])
        if "HOME" not in env:
            env["HOME"] = home_of(self.process.user.uid)
        self.sys.execve(self.executable, self.process.args, env)


def identity_steps(tail: ProcessTail) -> Steps:
    """Without no_new_privs the kernel loads a filter only for CAP_SYS_ADMIN: then the
    filter goes in before the user switch (runc's order), else in ``exec_steps``."""
    sys, process = tail.sys, tail.process
    privileged_seccomp: Steps = ([("load seccomp", tail.load_seccomp)]
                                 if tail.seccomp is not None and not process.no_new_privileges
                                 else [])
    return [
        ("set rlimits", lambda: credentials.apply_rlimits(sys, process)),
        ("change directory", lambda: change_directory(process.cwd)),
        ("find executable", tail.find_executable),  # after chdir: "./app" is relative to cwd
        ("set scheduler", lambda: scheduling.apply_scheduler(
            sys, plan_scheduler(process.raw.get("scheduler")))),
        ("set io priority", lambda: scheduling.apply_io_priority(
            sys, plan_io_priority(process.raw.get("ioPriority")))),
        ("set up terminal", tail.set_up_terminal),
        ("drop bounding set", tail.drop_bounding_set),
        *privileged_seccomp,
        ("switch user", lambda: credentials.switch_user(sys, process,
                                                        tail.capabilities is not None)),
        ("set capabilities", tail.set_capabilities),
        ("set no_new_privs", tail.set_no_new_privileges),
        ("close descriptors", tail.close_descriptors),
    ]


def exec_steps(tail: ProcessTail) -> Steps:
    """With no_new_privs the filter is loaded as late as it can be: the runtime's own
    steps (hooks, the fifo) are not filtered."""
    late_seccomp: Steps = ([("load seccomp", tail.load_seccomp)]
                           if tail.seccomp is not None and tail.process.no_new_privileges
                           else [])
    return [
        *late_seccomp,
        ("set cpu affinity", tail.set_final_affinity),
        ("set security labels", tail.set_exec_labels),
        ("exec", tail.exec),
    ]


def find_executable(name: str, env: list[str]) -> str:
    """``process.args[0]`` through the container's PATH, as execvp would, checked before
    READY so that ``create`` (not a later ``start``) reports a missing binary."""
    if "/" in name:
        candidates = [name]
    else:
        path = next((entry[5:] for entry in reversed(env) if entry.startswith("PATH=")),
                    DEFAULT_PATH)
        candidates = [os.path.join(folder or ".", name) for folder in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if "/" in name:
        raise PyRuntimeError(f"{name}: no such file or not executable")
    raise PyRuntimeError(f'"{name}": executable file not found in $PATH')


def bind_onto_dev_console(sys: LinuxSyscalls, peer_fd: int) -> None:
    """config-linux.md: /dev/console is the pty, bind-mounted (after pivot_root: "/" is
    the container's root, so the path cannot lead out of it)."""
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600))
    except OSError as exc:
        raise SyscallError("create", "/dev/console", exc.errno or 0) from exc
    sys.mount(f"/proc/self/fd/{peer_fd}", "/dev/console", None, MS_BIND, None, "/dev/console")


def set_cpu_affinity(cpus: set[int] | None) -> None:
    """execCPUAffinity: ``initial`` for the joiner, ``final`` for the process itself."""
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            raise SyscallError("sched_setaffinity", str(sorted(cpus)), exc.errno or 0) from exc


def change_directory(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise SyscallError("chdir", cwd, exc.errno or 0) from exc


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """HOME for ``uid`` from the container's passwd, as runc sets it when env has none."""
    try:
        with open(passwd, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"
