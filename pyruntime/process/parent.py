"""The parent's side of the launch: fork the intermediate and see it through.

Runs in the ``create`` process.  It becomes a child subreaper first, so that
the init, orphaned when the intermediate exits, is ours to kill and reap if
anything fails; on success we exit and the kernel hands the init on to the
caller's subreaper, as with runc.
"""

from __future__ import annotations

import os

from pyruntime.errors import ChildError, PyRuntimeError, SyscallError
from pyruntime.process import intermediate
from pyruntime.process.sync import (CREATE_HOOKS, HOOKS_DONE, IN_CGROUP, INIT_PID, MAPPED,
                                   NET_DEVICES_MOVED, NETNS_READY, READY, USERNS)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.netdevices import MovedDevices
    from pyruntime.process.context import LaunchContext
    from pyruntime.process.sync import Channel

PR_SET_CHILD_SUBREAPER = 36
SIGKILL = 9


class Launch:
    """The running launch; ``init_pid`` is known once the intermediate reports it."""

    __slots__ = ("context", "intermediate_pid", "init_pid", "_from_children", "_to_children",
                 "net_devices")

    def __init__(self, context: LaunchContext, from_children: Channel,
                 to_children: Channel) -> None:
        self.context = context
        self.intermediate_pid = 0
        self.init_pid = 0
        self._from_children = from_children
        self._to_children = to_children
        self.net_devices: MovedDevices | None = None  # undone by abort until create is done

    def start(self) -> None:
        self.context.sys.prctl(PR_SET_CHILD_SUBREAPER, 1, label="become subreaper")
        pid = os.fork()
        if pid == 0:
            self._from_children.close()
            self._to_children.close()
            intermediate.run(self.context)
        self.intermediate_pid = pid
        self.context.to_parent.close()
        self.context.from_parent.close()

    def wait_ready(self) -> int:
        """Answer the children until the init is ready; return its pid."""
        channel = self._from_children
        if self.context.cgroup is not None:
            self.context.cgroup.add_pid(self.intermediate_pid)
            self._to_children.send(IN_CGROUP)
        if self.context.namespaces.new_user:
            channel.expect(USERNS)
            write_id_maps(self.context, self.intermediate_pid)
            self._to_children.send(MAPPED)
        if self.context.net_devices:
            self._move_net_devices()
        if not self.context.has_create_runtime_hooks:
            self._to_children.close()
        self.init_pid = int(channel.expect(INIT_PID)["pid"])
        self._reap_intermediate()
        if self.context.has_create_runtime_hooks:
            channel.expect(CREATE_HOOKS)
            run_create_runtime_hooks(self.context, self.init_pid)
            self._to_children.send(HOOKS_DONE)
            self._to_children.close()
        channel.expect(READY)
        channel.close()
        return self.init_pid

    def _move_net_devices(self) -> None:
        """linux.netDevices, into the namespace the intermediate waits in (see sync.py)."""
        from pyruntime.netdevices import move_devices

        self._from_children.expect(NETNS_READY)
        self.net_devices = move_devices(self.context.sys, self.context.net_devices,
                                        self.intermediate_pid)
        self._to_children.send(NET_DEVICES_MOVED)

    def release_net_devices(self) -> None:
        """create has succeeded: the devices stay, and the sockets that could move them
        back (and that keep the namespace alive) go."""
        if self.net_devices is not None:
            self.net_devices.close()
            self.net_devices = None

    def _reap_intermediate(self) -> None:
        if self.intermediate_pid:
            _, status = os.waitpid(self.intermediate_pid, 0)
            self.intermediate_pid = 0
            if os.waitstatus_to_exitcode(status) != 0:
                raise ChildError("intermediate", f"exited with status {status}")

    def abort(self) -> None:
        """Kill and reap whatever this launch started.  Never raises.

        Moved network devices go back first: a veth would die with the namespace."""
        if self.net_devices is not None:
            self.net_devices.undo()
            self.release_net_devices()
        for pid in (self.init_pid, self.intermediate_pid):
            if pid:
                try:
                    os.kill(pid, SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        self.init_pid = self.intermediate_pid = 0
        self._from_children.close()
        self._to_children.close()


def run_create_runtime_hooks(context: LaunchContext, init_pid: int) -> None:
    """prestart then createRuntime: in our (the runtime's) namespaces, before pivot_root."""
    from pyruntime.hooks import hooks_of, run_hooks

    state = context.hook_state(init_pid, "creating")
    for kind in ("prestart", "createRuntime"):
        run_hooks(kind, hooks_of(context.spec.raw.get("hooks"), kind), state)


def write_id_maps(context: LaunchContext, pid: int) -> None:
    """uid_map and gid_map of the intermediate's new user namespace, from outside."""
    linux = context.spec.linux
    for name, mappings in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
        path = f"/proc/{pid}/{name}"
        text = "".join(mapping.line() for mapping in mappings)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise SyscallError("write", f"{name} of the user namespace", exc.errno or 0) from exc


def launch(context: LaunchContext, from_children: Channel, to_children: Channel) -> Launch:
    """Fork and follow the launch; on failure everything it started is gone."""
    running = Launch(context, from_children, to_children)
    try:
        running.start()
        running.wait_ready()
    except BaseException as exc:
        running.abort()
        if isinstance(exc, PyRuntimeError):
            raise
        if isinstance(exc, OSError):
            raise SyscallError("launch", "", exc.errno or 0) from exc
        raise
    return running
