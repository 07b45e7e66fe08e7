"""The host's cgroup hierarchies as a container's ``cgroup`` mount must show them.

Read in the parent, before any namespace changes, because a new cgroup
namespace hides the host paths that a bind mount needs.
"""

from __future__ import annotations

import os

from pyruntime.procfs import ProcFS, read_cgroup_paths, read_mountinfo

CGROUP_ROOT = "/sys/fs/cgroup"
_NOT_CONTROLLERS = {"rw", "ro", "clone_children", "noprefix", "xattr", "cpuset_v2_mode",
                    "nsdelegate", "memory_recursiveprot", "memory_localevents",
                    "favordynmods", "memory_hugetlb_accounting"}


class Hierarchy:
    """One cgroup mount of the host: where it is, and our cgroup's path in it."""

    __slots__ = ("name", "fstype", "controllers", "host_path")

    def __init__(self, name: str, fstype: str, controllers: str, host_path: str) -> None:
        self.name = name  # "" for a unified (v2-only) host, else e.g. "memory", "unified"
        self.fstype = fstype
        self.controllers = controllers  # the data for mount(2), e.g. "memory", "name=systemd"
        self.host_path = host_path  # our own cgroup's folder on the host

    def __repr__(self) -> str:
        return f"Hierarchy({self.name!r}, {self.fstype}, {self.controllers!r}, {self.host_path!r})"


def _controllers(super_options: str) -> str:
    names = [option for option in super_options.split(",")
             if option not in _NOT_CONTROLLERS and not option.startswith("release_agent=")]
    return ",".join(names)


def host_hierarchies(procfs: ProcFS | None = None) -> list[Hierarchy]:
    """Every cgroup/cgroup2 mount directly under /sys/fs/cgroup (or that mount itself)."""
    procfs = procfs or ProcFS()
    own_paths = read_cgroup_paths(procfs)
    own_by_set = {frozenset(key.split(",")): path for key, path in own_paths.items()}
    result = []
    for mount in read_mountinfo(procfs):
        if mount.fstype not in ("cgroup", "cgroup2"):
            continue
        if mount.mount_point == CGROUP_ROOT:
            name = ""
        elif os.path.dirname(mount.mount_point) == CGROUP_ROOT:
            name = os.path.basename(mount.mount_point)
        else:
            continue
        controllers = _controllers(mount.super_options) if mount.fstype == "cgroup" else ""
        key = frozenset(controllers.split(",")) if controllers else frozenset({""})
        own = own_by_set.get(key, "/")
        inside = own == mount.root or own.startswith(mount.root.rstrip("/") + "/")
        relative = os.path.relpath(own, mount.root) if inside else "."
        host_path = os.path.normpath(os.path.join(mount.mount_point, relative))
        result.append(Hierarchy(name, mount.fstype, controllers, host_path))
    return result
