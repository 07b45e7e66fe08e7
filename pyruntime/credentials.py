"""Who the container's process is: groups, ids, umask, capabilities, limits.

Order matters and follows runc: the bounding set is trimmed while we still
hold CAP_SETPCAP; PR_SET_KEEPCAPS carries the permitted set across the switch
to a non-root uid; capset(2) then sets effective/permitted/inheritable, and
ambient capabilities are raised last (they need to be permitted and
inheritable already).
"""

from __future__ import annotations

import os

from pyruntime.errors import ConfigError, SyscallError
from pyruntime.plan.capabilities import CAPABILITIES, names_of
from pyruntime.plan.rlimits import RLIMITS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.plan.capabilities import CapabilityPlan
    from pyruntime.spec.model import Process
    from pyruntime.syscalls.linux import LinuxSyscalls

PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
LAST_CAPABILITY = max(CAPABILITIES.values())


def set_dumpable(sys: LinuxSyscalls, dumpable: bool) -> None:
    """Non-dumpable: no ptrace, no /proc/PID/{mem,fd,exe} for the container (CVE-2019-5736)."""
    sys.prctl(PR_SET_DUMPABLE, int(dumpable), label="set dumpable")


def apply_rlimits(sys: LinuxSyscalls, process: Process) -> None:
    for limit in process.rlimits:
        sys.setrlimit(RLIMITS[limit.type], limit.soft, limit.hard, limit.type)


def host_bounding_set(sys: LinuxSyscalls) -> int:
    mask = 0
    for number in range(LAST_CAPABILITY + 1):
        try:
            if sys.prctl(PR_CAPBSET_READ, number, label="read bounding set"):
                mask |= 1 << number
        except SyscallError:
            break  # the kernel knows fewer capabilities than we do
    return mask


def check_capabilities_available(plan: CapabilityPlan, available: int) -> None:
    """A capability the host cannot give is an error, never a silent drop."""
    for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        missing = getattr(plan, kind) & ~available
        if missing:
            raise ConfigError(f"process.capabilities.{kind}",
                              f"{', '.join(names_of(missing))} not available on this host")


def drop_bounding_set(sys: LinuxSyscalls, plan: CapabilityPlan) -> None:
    available = host_bounding_set(sys)
    check_capabilities_available(plan, available)
    for number in range(LAST_CAPABILITY + 1):
        if available >> number & 1 and not plan.bounding >> number & 1:
            sys.prctl(PR_CAPBSET_DROP, number, label=f"drop {names_of(1 << number)[0]}")


def switch_user(sys: LinuxSyscalls, process: Process, keep_capabilities: bool) -> None:
    user = process.user
    if keep_capabilities:
        sys.prctl(PR_SET_KEEPCAPS, 1, label="keep capabilities")
    sys.setgroups(user.additional_gids)
    sys.setresgid(user.gid)
    sys.setresuid(user.uid)
    if keep_capabilities:
        sys.prctl(PR_SET_KEEPCAPS, 0, label="keep capabilities")
    if user.umask is not None:
        os.umask(user.umask)


def set_capabilities(sys: LinuxSyscalls, plan: CapabilityPlan) -> None:
    """The kernel only lets an ambient capability be raised if it is permitted and
    inheritable; others are skipped, as runc does (it logs and goes on)."""
    sys.capset(plan.effective, plan.permitted, plan.inheritable)
    sys.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, label="clear ambient capabilities")
    raisable = plan.ambient & plan.permitted & plan.inheritable
    for number in range(LAST_CAPABILITY + 1):
        if raisable >> number & 1:
            sys.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number,
                      label=f"raise ambient {names_of(1 << number)[0]}")


def set_no_new_privileges(sys: LinuxSyscalls) -> None:
    sys.prctl(PR_SET_NO_NEW_PRIVS, 1, label="no_new_privs")
