"""The intermediate process: enters the namespaces, forks the init, exits.

It exists because a process cannot move itself into a new pid (or time)
namespace, only its children; and because a new user namespace's id maps must
be written from outside it, by the parent, while it waits.  See sync.py for
the message diagram.
"""

from __future__ import annotations

import os

from pyruntime import credentials, namespaces
from pyruntime.errors import SyscallError
from pyruntime.plan.namespaces import CLONE_NEWUSER
from pyruntime.process import init
from pyruntime.process.child import close_all_but, run_steps
from pyruntime.process.sync import (IN_CGROUP, INIT_PID, MAPPED, NET_DEVICES_MOVED, NETNS_READY,
                                   USERNS)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from pyruntime.process.context import LaunchContext


def run(context: LaunchContext) -> NoReturn:
    run_steps(steps(context), context.to_parent)


def steps(context: LaunchContext) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("drop parent descriptors", lambda: _close_parent_fds(context)),
        ("wait to be in the cgroup", lambda: _wait_for_cgroup(context)),
        ("set non-dumpable", lambda: credentials.set_dumpable(context.sys, False)),
        ("set oom_score_adj", lambda: _set_oom_score_adj(context)),
        ("enter user namespace", lambda: _enter_user_namespace(context)),
        ("join namespaces", lambda: namespaces.join(context.sys, context.joined_fds,
                                                    exclude=("user",))),
        ("create namespaces", lambda: namespaces.unshare(context.sys,
                                                         context.namespaces.unshare_flags)),
        ("bring up loopback", lambda: _loopback_up(context)),
        ("wait for the network devices", lambda: _wait_for_net_devices(context)),
        ("fork init", lambda: _fork_init(context)),
    ]


def _close_parent_fds(context: LaunchContext) -> None:
    """Keep only what the launch needs, and the descriptors --preserve-fds passes on."""
    for fd in context.parent_only_fds:
        os.close(fd)
    keep = [context.to_parent.write_fd, context.from_parent.read_fd, context.fifo_fd,
            context.status_fd, *context.joined_fds.values(),
            *range(3, 3 + context.preserved_fds)]
    if context.console_socket is not None:
        keep.append(context.console_socket.fileno())
    close_all_but(keep)


def _wait_for_cgroup(context: LaunchContext) -> None:
    """Every process of the container, from its very first, is in the container's cgroup
    (and a new cgroup namespace is rooted there)."""
    if context.cgroup is not None:
        context.from_parent.expect(IN_CGROUP)


def _set_oom_score_adj(context: LaunchContext) -> None:
    """Written here, on the host's /proc and credentials; inherited by the init."""
    process = context.spec.process
    if process is None or process.oom_score_adj is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w", encoding="ascii") as handle:
            handle.write(str(process.oom_score_adj))
    except OSError as exc:
        raise SyscallError("write oom_score_adj", str(process.oom_score_adj),
                           exc.errno or 0) from exc


def _enter_user_namespace(context: LaunchContext) -> None:
    sys = context.sys
    if "user" in context.joined_fds:
        namespaces.join(sys, context.joined_fds, ("user",))
    elif context.namespaces.new_user:
        sys.unshare(CLONE_NEWUSER)
        context.to_parent.send(USERNS)
        context.from_parent.expect(MAPPED)
    else:
        return
    sys.setresgid(0)
    sys.setresuid(0)


def _loopback_up(context: LaunchContext) -> None:
    """runc brings ``lo`` up in every network namespace it creates."""
    if context.namespaces.creates("network"):
        context.sys.loopback_up()


def _wait_for_net_devices(context: LaunchContext) -> None:
    """linux.netDevices: the parent moves them into our network namespace, found as
    /proc/<our pid>/ns/net, before the init exists (pyruntime/netdevices.py)."""
    if context.net_devices:
        context.to_parent.send(NETNS_READY)
        context.from_parent.expect(NET_DEVICES_MOVED)


def _fork_init(context: LaunchContext) -> None:
    """The init waits until INIT_PID is sent: the pipe is shared, and the parent must
    know the init's pid before anything the init says (and to kill it on failure)."""
    go_read, go_write = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(go_write)
        released = os.read(go_read, 1)
        os.close(go_read)
        if not released:  # the intermediate died before it could report us
            os._exit(1)
        init.run(context)
    os.close(go_read)
    context.from_parent.close()  # the init's now, for HOOKS_DONE
    context.to_parent.send(INIT_PID, pid=pid)
    os.write(go_write, b"1")
    os.close(go_write)
