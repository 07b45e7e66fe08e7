"""Everything the forked processes need, decided by the parent before it forks.

Policy lives in the parent (CPython's subprocess rule): the children only
carry out this plan, so a child never has to parse, look up or decide.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from pyruntime.cgroups.detect import CgroupMountSource
    from pyruntime.cgroups import Manager
    from pyruntime.plan.capabilities import CapabilityPlan
    from pyruntime.plan.mounts import MountOp
    from pyruntime.plan.netdevices import NetDevicePlan
    from pyruntime.plan.namespaces import NamespacePlan
    from pyruntime.plan.seccomp import SeccompPlan
    from pyruntime.process.sync import Channel
    from pyruntime.spec.model import Spec
    from pyruntime.syscalls.linux import LinuxSyscalls


class LaunchContext:
    __slots__ = ("spec", "sys", "mounts", "namespaces", "joined_fds", "capabilities",
                 "hierarchies", "fifo_fd", "status_fd", "no_pivot", "new_keyring", "preserved_fds",
                 "extra_env", "to_parent", "from_parent", "parent_only_fds", "state",
                 "seccomp", "cgroup", "console_socket", "net_devices")

    def __init__(self, spec: Spec, sys: LinuxSyscalls, mounts: list[MountOp],
                 namespaces: NamespacePlan, joined_fds: dict[str, int],
                 capabilities: CapabilityPlan | None, hierarchies: list[CgroupMountSource],
                 fifo_fd: int, status_fd: int, no_pivot: bool, new_keyring: bool,
                 preserved_fds: int,
                 extra_env: list[str], to_parent: Channel, from_parent: Channel,
                 parent_only_fds: list[int], state: dict[str, object]) -> None:
        self.spec = spec
        self.sys = sys
        self.mounts = mounts
        self.namespaces = namespaces
        self.joined_fds = joined_fds
        self.capabilities = capabilities
        self.hierarchies = hierarchies
        self.fifo_fd = fifo_fd  # exec.fifo, opened O_RDWR: init reads one byte from it
        self.status_fd = status_fd  # exec.status, O_RDWR: closes at exec, or carries an ERROR
        self.no_pivot = no_pivot
        self.new_keyring = new_keyring  # runc's default; --no-new-keyring keeps the caller's
        self.preserved_fds = preserved_fds  # fds 3 .. 3+N-1 reach the process
        self.extra_env = extra_env  # LISTEN_FDS/LISTEN_PID when passed through
        self.to_parent = to_parent
        self.from_parent = from_parent
        self.parent_only_fds = parent_only_fds  # e.g. the state lock: a child must drop it
        self.state = state  # the OCI state for hooks, without pid and status
        self.seccomp: SeccompPlan | None = None
        self.cgroup: Manager | None = None  # the parent puts the intermediate in it
        self.console_socket: socket.socket | None = None  # for process.terminal
        self.net_devices: list[NetDevicePlan] = []  # linux.netDevices, moved by the parent

    def hook_state(self, pid: int, status: str) -> dict[str, object]:
        return {**self.state, "pid": pid, "status": status}

    @property
    def has_create_runtime_hooks(self) -> bool:
        hooks = self.spec.raw.get("hooks") or {}
        return bool(hooks.get("prestart") or hooks.get("createRuntime"))

    @property
    def in_user_namespace(self) -> bool:
        return self.namespaces.has("user")
