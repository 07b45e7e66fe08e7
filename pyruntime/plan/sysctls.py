"""Which kernel namespace isolates which sysctl (runc's table)."""

from __future__ import annotations

IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                         "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                         "kernel.shm_rmid_forced"})
UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})
KEY_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def namespace_of(key: str) -> str | None:
    """The namespace that isolates ``key``, or None if none does."""
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key in UTS_SYSCTLS:
        return "uts"
    return None
