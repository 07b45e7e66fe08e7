"""The container's init: PID 1 of its pid namespace, until it becomes process.args.

Its whole life is the flat list in ``steps``: each line one named step, each
step a function elsewhere (rootfs, credentials...).  Whatever fails is
reported to ``create`` as "<step>: <reason>".  After READY it blocks on
exec.fifo until ``start``, then execs; the descriptors it used are all
close-on-exec, so the user's process gets only 0-2 and the preserved ones.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` costs 10 ms (enums)
import os

from pyruntime import credentials, lsm, rootfs, scheduling, sysctl
from pyruntime.errors import ChildError, SyscallError
from pyruntime.process.child import run_steps
from pyruntime.plan.scheduling import plan_io_priority, plan_personality, plan_scheduler
from pyruntime.process.sync import CREATE_HOOKS, HOOKS_DONE, READY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from pyruntime.process.context import LaunchContext
    from pyruntime.rootfs import RootfsContext

# Signals that end a container still waiting for ``start`` (as a Go init would);
# PID 1 ignores signals it has no handler for.
_ENDING_SIGNALS = (1, 2, 3, 10, 12, 14, 15)
SIGPIPE, SIGXFSZ = 13, 25
ENOSYS = 38
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(context: LaunchContext) -> NoReturn:
    from pyruntime.rootfs import RootfsContext

    root = RootfsContext(context.spec, context.sys, context.mounts,
                         context.in_user_namespace, context.namespaces.creates("cgroup"),
                         context.hierarchies)
    run_steps(steps(context, root), context.to_parent)


def steps(context: LaunchContext, root: RootfsContext) -> list[tuple[str, Callable[[], object]]]:
    spec, sys = context.spec, context.sys
    process = spec.process
    assert process is not None
    executable: list[str] = []
    return [
        ("handle signals", _exit_on_signals),
        ("make / private", lambda: rootfs.make_root_private(root)),
        ("bind rootfs", lambda: rootfs.bind_rootfs(root)),
        ("mount", lambda: rootfs.mount_all(root)),
        ("create devices", lambda: rootfs.create_devices(root)),
        ("create /dev links", lambda: rootfs.create_dev_links(root)),
        ("createRuntime hooks", lambda: _wait_for_create_runtime_hooks(context)),
        ("createContainer hooks", lambda: _run_hooks(context, "createContainer", "creating")),
        ("pivot_root", lambda: (rootfs.move_root if context.no_pivot else rootfs.pivot_root)(root)),
        ("set sysctls", lambda: sysctl.write_sysctls(sys, spec.linux.sysctl)),
        ("readonly paths", lambda: rootfs.make_readonly_paths(root)),
        ("mask paths", lambda: rootfs.mask_paths(root)),
        ("readonly root", lambda: rootfs.make_root_readonly(root)),
        ("close root", lambda: rootfs.close_root(root)),
        ("set hostname", lambda: _set_names(context)),
        ("set rlimits", lambda: credentials.apply_rlimits(sys, process)),
        ("find executable", lambda: executable.append(find_executable(process.args[0],
                                                                      process.env))),
        ("change directory", lambda: _change_directory(process.cwd)),
        ("join session keyring", lambda: _join_session_keyring(context)),
        ("set scheduler", lambda: scheduling.apply_scheduler(
            sys, plan_scheduler(process.raw.get("scheduler")))),
        ("set io priority", lambda: scheduling.apply_io_priority(
            sys, plan_io_priority(process.raw.get("ioPriority")))),
        ("set personality", lambda: scheduling.apply_personality(
            sys, plan_personality(spec.linux.raw.get("personality")))),
        ("drop bounding set", lambda: _drop_bounding_set(context)),
        ("switch user", lambda: credentials.switch_user(sys, process,
                                                        context.capabilities is not None)),
        ("set capabilities", lambda: _set_capabilities(context)),
        ("set no_new_privs", lambda: _set_no_new_privileges(context)),
        ("close descriptors", lambda: _close_descriptors(context)),
        ("report ready", lambda: _report_ready(context)),
        ("wait for start", lambda: _wait_for_start(context)),
        ("startContainer hooks", lambda: _run_hooks(context, "startContainer", "created")),
        ("set security labels", lambda: _set_exec_labels(context)),
        ("exec", lambda: _exec(context, executable[0])),
    ]


def _exit_on_signals() -> None:
    for number in _ENDING_SIGNALS:
        _signal.signal(number, lambda signum, frame: os._exit(128 + signum))


def _set_names(context: LaunchContext) -> None:
    if context.spec.hostname is not None:
        context.sys.sethostname(context.spec.hostname)
    if context.spec.domainname is not None:
        context.sys.setdomainname(context.spec.domainname)


def find_executable(name: str, env: list[str]) -> str:
    """``process.args[0]`` through the container's PATH, as execvp would, checked now
    so that ``create`` (not a later ``start``) reports a missing binary."""
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
        raise ChildError("exec", f"{name}: no such file or not executable")
    raise ChildError("exec", f'"{name}": executable file not found in $PATH')


def _change_directory(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise SyscallError("chdir", cwd, exc.errno or 0) from exc


def _drop_bounding_set(context: LaunchContext) -> None:
    if context.capabilities is not None:
        credentials.drop_bounding_set(context.sys, context.capabilities)


def _set_capabilities(context: LaunchContext) -> None:
    if context.capabilities is not None:
        credentials.set_capabilities(context.sys, context.capabilities)


def _set_no_new_privileges(context: LaunchContext) -> None:
    process = context.spec.process
    if process is not None and process.no_new_privileges:
        credentials.set_no_new_privileges(context.sys)


def _close_descriptors(context: LaunchContext) -> None:
    """Nothing the config did not ask for may reach the process (CVE-2024-21626)."""
    first_closed = 3 + context.preserved_fds
    context.sys.close_range_cloexec(first_closed)
    for fd in range(3, first_closed):
        os.set_inheritable(fd, True)


def _wait_for_create_runtime_hooks(context: LaunchContext) -> None:
    """The parent runs prestart and createRuntime now: mounts done, no pivot yet."""
    if context.has_create_runtime_hooks:
        context.to_parent.send(CREATE_HOOKS)
        context.from_parent.expect(HOOKS_DONE)
    context.from_parent.close()


def _run_hooks(context: LaunchContext, kind: str, status: str) -> None:
    """In the container's namespaces; the state's pid is ours as the container sees it."""
    from pyruntime.hooks import hooks_of, run_hooks

    hooks = hooks_of(context.spec.raw.get("hooks"), kind)
    if hooks:
        run_hooks(kind, hooks, context.hook_state(os.getpid(), status))


def _report_ready(context: LaunchContext) -> None:
    """After READY nobody reads the sync pipe: failures go to exec.status, for ``start``."""
    context.to_parent.send(READY)
    context.to_parent.redirect(context.status_fd)


def _wait_for_start(context: LaunchContext) -> None:
    """``start`` writes one byte to exec.fifo; until then, block."""
    while True:
        try:
            if os.read(context.fifo_fd, 1):
                break
        except InterruptedError:
            continue
    os.close(context.fifo_fd)


def _join_session_keyring(context: LaunchContext) -> None:
    """A keyring of its own, named as runc names it, so keys do not leak between containers."""
    if not context.new_keyring:
        return
    try:
        context.sys.join_session_keyring(f"_ses.{context.state['id']}")
    except SyscallError as exc:
        if exc.errno != ENOSYS:  # a kernel without keyrings: nothing to isolate
            raise


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


def _set_exec_labels(context: LaunchContext) -> None:
    """The last change before the exec: the profile applies from the exec on."""
    for path, text in lsm.exec_attributes(context.spec):
        lsm.write_attribute(path, text, context.sys.fstatfs_type)


def _exec(context: LaunchContext, executable: str) -> None:
    process = context.spec.process
    assert process is not None
    for number in (*_ENDING_SIGNALS, SIGPIPE, SIGXFSZ):  # Python ignores SIGPIPE, SIGXFSZ
        _signal.signal(number, _signal.SIG_DFL)
    env = dict(entry.split("=", 1) for entry in [*process.env, *context.extra_env])
    if "HOME" not in env:
        env["HOME"] = home_of(process.user.uid)
    context.sys.execve(executable, process.args, env)
