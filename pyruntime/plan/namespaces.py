"""Which namespaces to create and which to join, in the order runc uses.

The user namespace comes first: every other namespace is owned by the user
namespace that is current when it is made, and joining one needs the
capabilities that only the container's user namespace grants.  The pid and
time namespaces apply to children, so they take effect in the init that the
intermediate process forks.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyruntime.spec.model import Namespace

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# spec type -> (clone flag, name under /proc/PID/ns), in the order they are entered
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "network": (CLONE_NEWNET, "net"),
    "pid": (CLONE_NEWPID, "pid"),
    "mount": (CLONE_NEWNS, "mnt"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}


class NamespacePlan:
    """``joins`` are (type, path) to setns into; ``unshare_flags`` are made anew."""

    __slots__ = ("new_user", "joins", "unshare_flags", "new_types")

    def __init__(self, new_user: bool, joins: list[tuple[str, str]], unshare_flags: int,
                 new_types: set[str]) -> None:
        self.new_user = new_user
        self.joins = joins
        self.unshare_flags = unshare_flags
        self.new_types = new_types

    def creates(self, kind: str) -> bool:
        return kind in self.new_types

    def has(self, kind: str) -> bool:
        """The container has its own namespace of ``kind``, new or joined."""
        return kind in self.new_types or any(kind == joined for joined, _ in self.joins)


def plan_namespaces(namespaces: Sequence[Namespace]) -> NamespacePlan:
    by_type = {namespace.type: namespace for namespace in namespaces}
    joins: list[tuple[str, str]] = []
    new_types: set[str] = set()
    flags = 0
    for kind, (flag, _) in NAMESPACES.items():
        namespace = by_type.get(kind)
        if namespace is None:
            continue
        if namespace.path:
            joins.append((kind, namespace.path))
        else:
            new_types.add(kind)
            if kind != "user":
                flags |= flag
    return NamespacePlan("user" in new_types, joins, flags, new_types)
