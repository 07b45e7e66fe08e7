"""Capability names and the bit masks of the five sets.

A set is an int with bit N for capability N, which is how capset(2),
PR_CAPBSET_DROP and /proc/PID/status (CapEff...) all speak.
"""

from __future__ import annotations

from pyruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

CAPABILITIES: dict[str, int] = {name: number for number, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"))}
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


class CapabilityPlan:
    """The five masks; ``None`` for ``process.capabilities`` absent (keep as is)."""

    __slots__ = CAPABILITY_SETS

    def __init__(self, bounding: int, effective: int, inheritable: int, permitted: int,
                 ambient: int) -> None:
        self.bounding = bounding
        self.effective = effective
        self.inheritable = inheritable
        self.permitted = permitted
        self.ambient = ambient


def capability_mask(names: Iterable[str], field: str) -> int:
    mask = 0
    for position, name in enumerate(names):
        number = CAPABILITIES.get(name)
        if number is None:
            raise ConfigError(f"{field}[{position}]", f"unknown capability {name!r}")
        mask |= 1 << number
    return mask


def plan_capabilities(capabilities: dict[str, list[str]] | None) -> CapabilityPlan | None:
    if capabilities is None:
        return None
    masks = [capability_mask(capabilities.get(kind, ()), f"process.capabilities.{kind}")
             for kind in CAPABILITY_SETS]
    return CapabilityPlan(*masks)


def names_of(mask: int) -> list[str]:
    return [name for name, number in CAPABILITIES.items() if mask >> number & 1]
