"""Which cgroup layout the host has, and its hierarchies, from /proc/self/mountinfo.

* ``unified``: a cgroup2 mount at /sys/fs/cgroup itself;
* ``hybrid``: v1 hierarchies under /sys/fs/cgroup plus a cgroup2 at
  /sys/fs/cgroup/unified (systemd's hybrid layout; that cgroup2 usually has no
  controllers and only tracks processes);
* ``legacy``: v1 hierarchies only.

Read from mountinfo rather than statfs so that tests can feed fixtures, and
because it also gives each hierarchy's controllers and mount root.
"""

from __future__ import annotations

import os

from pyruntime.errors import PyRuntimeError
from pyruntime.procfs import ProcFS, read_cgroup_paths, read_mountinfo

CGROUP_ROOT = "/sys/fs/cgroup"
UNIFIED, HYBRID, LEGACY = "unified", "hybrid", "legacy"
_NOT_CONTROLLERS = frozenset({
    "rw", "ro", "clone_children", "noprefix", "xattr", "cpuset_v2_mode", "nsdelegate",
    "memory_recursiveprot", "memory_localevents", "favordynmods",
    "memory_hugetlb_accounting", "nosuid", "nodev", "noexec", "relatime"})


class Mount:
    """One cgroup hierarchy: its folder under /sys/fs/cgroup ("" for unified mode),
    its controllers, and our own cgroup in it (from /proc/self/cgroup)."""

    __slots__ = ("name", "version", "controllers", "own_path")

    def __init__(self, name: str, version: int, controllers: tuple[str, ...],
                 own_path: str) -> None:
        self.name = name
        self.version = version
        self.controllers = controllers
        self.own_path = own_path  # relative to the mount, no leading "/" ("" = its root)

    def __repr__(self) -> str:
        return f"Mount({self.name!r}, v{self.version}, {self.controllers}, {self.own_path!r})"


class NoCgroupsError(PyRuntimeError):
    """No cgroup hierarchy is mounted under /sys/fs/cgroup."""


def _controllers(super_options: str) -> tuple[str, ...]:
    return tuple(option for option in super_options.split(",")
                 if option not in _NOT_CONTROLLERS and not option.startswith("release_agent="))


def _own_path(own: str | None, mount_root: str) -> str:
    """Our cgroup relative to what the mount shows (a cgroup namespace may hide the top)."""
    if own is None:
        return ""
    root = mount_root.rstrip("/")
    if own == mount_root or own.startswith(root + "/"):
        relative = os.path.relpath(own, mount_root)
        return "" if relative == "." else relative
    return ""


def host_mounts(procfs: ProcFS) -> list[Mount]:
    """Every cgroup/cgroup2 mount at /sys/fs/cgroup or directly under it."""
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
        if mount.fstype == "cgroup2":
            controllers: tuple[str, ...] = ()
            own = own_paths.get("")
        else:
            controllers = _controllers(mount.super_options)
            own = own_by_set.get(frozenset(controllers))
        result.append(Mount(name, 2 if mount.fstype == "cgroup2" else 1, controllers,
                            _own_path(own, mount.root)))
    return result


def mode_of(mounts: list[Mount]) -> str:
    if any(m.version == 2 and m.name == "" for m in mounts):
        return UNIFIED
    if not any(m.version == 1 for m in mounts):
        raise NoCgroupsError("no cgroup hierarchy is mounted under /sys/fs/cgroup")
    if any(m.version == 2 and m.name == "unified" for m in mounts):
        return HYBRID
    return LEGACY


def detect_mode(procfs: ProcFS | None = None) -> str:
    """``"unified"``, ``"hybrid"`` or ``"legacy"``; NoCgroupsError if none is mounted."""
    return mode_of(host_mounts(procfs or ProcFS()))


class CgroupMountSource:
    """What a container's ``type: cgroup`` mount needs of one hierarchy (rootfs.py)."""

    __slots__ = ("name", "fstype", "controllers", "host_path")

    def __init__(self, name: str, fstype: str, controllers: str, host_path: str) -> None:
        self.name = name  # "" for a unified (v2-only) host, else e.g. "memory", "unified"
        self.fstype = fstype
        self.controllers = controllers  # the data for mount(2), e.g. "memory", "name=systemd"
        self.host_path = host_path  # our own cgroup's folder on the host

    def __repr__(self) -> str:
        return (f"CgroupMountSource({self.name!r}, {self.fstype}, {self.controllers!r}, "
                f"{self.host_path!r})")


def mount_sources(procfs: ProcFS | None = None) -> list[CgroupMountSource]:
    """Read in the parent, before any namespace changes: a new cgroup namespace
    hides the host paths that a bind mount needs."""
    return [CgroupMountSource(m.name, "cgroup2" if m.version == 2 else "cgroup",
                              ",".join(m.controllers),
                              os.path.normpath(os.path.join(CGROUP_ROOT, m.name, m.own_path)))
            for m in host_mounts(procfs or ProcFS())]
