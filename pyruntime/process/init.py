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

from pyruntime import rootfs, scheduling, sysctl
from pyruntime.errors import SyscallError
from pyruntime.process.child import run_steps
from pyruntime.plan.scheduling import plan_personality
from pyruntime.process.finish import CAUGHT_SIGNALS, ProcessTail, exec_steps, identity_steps
from pyruntime.process.sync import CREATE_HOOKS, HOOKS_DONE, READY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from pyruntime.process.context import LaunchContext
    from pyruntime.rootfs import RootfsContext

ENOSYS = 38


def run(context: LaunchContext) -> NoReturn:
    from pyruntime.rootfs import RootfsContext

    root = RootfsContext(context.spec, context.sys, context.mounts,
                         context.in_user_namespace, context.namespaces.creates("cgroup"),
                         context.hierarchies)
    run_steps(steps(context, root), context.to_parent)


def steps(context: LaunchContext, root: RootfsContext) -> list[tuple[str, Callable[[], object]]]:
    spec, sys = context.spec, context.sys
    assert spec.process is not None
    tail = ProcessTail(sys, spec.process, context.capabilities, context.preserved_fds,
                       context.extra_env, context.to_parent)
    tail.seccomp = context.seccomp
    tail.console_socket = context.console_socket
    tail.bind_console = True
    return [
        ("handle signals", _exit_on_signals),
        ("preload", lambda: _preload(context, tail)),
        ("make / private", lambda: rootfs.make_root_private(root)),
        ("bind rootfs", lambda: rootfs.bind_rootfs(root)),
        ("mount", lambda: rootfs.mount_all(root)),
        ("create devices", lambda: rootfs.create_devices(root)),
        ("create /dev links", lambda: rootfs.create_dev_links(root)),
        ("createRuntime hooks", lambda: _wait_for_create_runtime_hooks(context)),
        ("createContainer hooks", lambda: _run_hooks(context, "createContainer", "creating")),
        ("connect seccomp listener", lambda: tail.connect_seccomp_listener(
            context.hook_state(0, "creating"))),
        ("pivot_root", lambda: (rootfs.move_root if context.no_pivot else rootfs.pivot_root)(root)),
        ("set sysctls", lambda: sysctl.write_sysctls(sys, spec.linux.sysctl)),
        ("readonly paths", lambda: rootfs.make_readonly_paths(root)),
        ("mask paths", lambda: rootfs.mask_paths(root)),
        ("readonly root", lambda: rootfs.make_root_readonly(root)),
        ("close root", lambda: rootfs.close_root(root)),
        ("set hostname", lambda: _set_names(context)),
        ("join session keyring", lambda: _join_session_keyring(context)),
        ("set personality", lambda: scheduling.apply_personality(
            sys, plan_personality(spec.linux.raw.get("personality")))),
        *identity_steps(tail),
        ("report ready", lambda: _report_ready(context)),
        ("wait for start", lambda: _wait_for_start(context)),
        ("startContainer hooks", lambda: _run_hooks(context, "startContainer", "created")),
        *exec_steps(tail),
    ]


def _preload(context: LaunchContext, tail: ProcessTail) -> None:
    """Nothing may be imported after pivot_root: pyruntime's files are not in the rootfs."""
    if context.spec.raw.get("hooks"):
        import pyruntime.hooks  # noqa: F401
    tail.preload()


def _exit_on_signals() -> None:
    """Signals end a container still waiting for ``start``, as a Go init would:
    PID 1 ignores the signals it has no handler for.  ``exec`` restores them."""
    for number in CAUGHT_SIGNALS:
        _signal.signal(number, lambda signum, frame: os._exit(128 + signum))


def _set_names(context: LaunchContext) -> None:
    if context.spec.hostname is not None:
        context.sys.sethostname(context.spec.hostname)
    if context.spec.domainname is not None:
        context.sys.setdomainname(context.spec.domainname)


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


