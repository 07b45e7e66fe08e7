"""Facts about processes, read from a procfs whose root is a parameter.

Tests point ``ProcFS`` at a folder of fixture files; the runtime uses /proc.
"""

from __future__ import annotations

import os

from pyruntime.errors import SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PROC_SUPER_MAGIC = 0x9FA0


class ProcessInfo:
    """What /proc/PID/stat says: run state and start time (clock ticks since boot)."""

    __slots__ = ("pid", "state", "start_time", "ppid")

    def __init__(self, pid: int, state: str, ppid: int, start_time: int) -> None:
        self.pid = pid
        self.state = state
        self.ppid = ppid
        self.start_time = start_time

    @property
    def is_zombie(self) -> bool:
        return self.state in ("Z", "X")


def parse_stat(pid: int, text: str) -> ProcessInfo:
    """Fields after the command name, which is in parentheses and may hold anything."""
    fields = text[text.rindex(")") + 2:].split()
    return ProcessInfo(pid, fields[0], int(fields[1]), int(fields[19]))


class ProcFS:
    __slots__ = ("root",)

    def __init__(self, root: str = "/proc") -> None:
        self.root = root

    def path(self, pid: int | str, *parts: str) -> str:
        return os.path.join(self.root, str(pid), *parts)

    def process(self, pid: int) -> ProcessInfo | None:
        """``None`` if no such process (or it vanished while we read)."""
        if pid <= 0:
            return None
        try:
            with open(self.path(pid, "stat"), encoding="utf-8", errors="replace") as handle:
                return parse_stat(pid, handle.read())
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            return None

    def is_alive(self, pid: int, start_time: int) -> bool:
        """True if ``pid`` still names the process that started at ``start_time``."""
        info = self.process(pid)
        return info is not None and info.start_time == start_time and not info.is_zombie

    def namespace_inode(self, pid: int | str, kind: str) -> int | None:
        try:
            return os.stat(self.path(pid, "ns", kind)).st_ino
        except OSError:
            return None

    def pids(self) -> list[int]:
        return [int(name) for name in os.listdir(self.root) if name.isdigit()]

    def pids_in_namespace(self, kind: str, inode: int) -> list[int]:
        """Every process whose ``kind`` namespace is ``inode`` (for ``kill --all``)."""
        return [pid for pid in self.pids() if self.namespace_inode(pid, kind) == inode]


class MountInfo:
    """One line of /proc/PID/mountinfo."""

    __slots__ = ("mount_id", "parent_id", "root", "mount_point", "options", "fstype",
                 "source", "super_options")

    def __init__(self, line: str) -> None:
        left, _, right = line.partition(" - ")
        fields = left.split()
        self.mount_id = int(fields[0])
        self.parent_id = int(fields[1])
        self.root = _unescape(fields[3])
        self.mount_point = _unescape(fields[4])
        self.options = fields[5]
        fstype, source, super_options = (right.split() + ["", "", ""])[:3]
        self.fstype = fstype
        self.source = _unescape(source)
        self.super_options = super_options


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def read_mountinfo(procfs: ProcFS, pid: int | str = "self") -> list[MountInfo]:
    with open(procfs.path(pid, "mountinfo"), encoding="utf-8") as handle:
        return [MountInfo(line) for line in handle if line.strip()]


def read_cgroup_paths(procfs: ProcFS, pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/cgroup as {controllers: path}; the v2 line's key is ``""``."""
    paths: dict[str, str] = {}
    with open(procfs.path(pid, "cgroup"), encoding="utf-8") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            paths[controllers] = path
    return paths


def write_on_procfs(path: str, text: str, filesystem_of: Callable[[int, str], int]) -> None:
    """Write ``text`` to ``path`` if, and only if, the file really is on procfs: an image
    with a fake /proc (a folder, a symlink, a tmpfs) must not swallow a security write."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise SyscallError("open", path, exc.errno or 0) from exc
    try:
        if filesystem_of(fd, path) != PROC_SUPER_MAGIC:
            raise SyscallError("write", f"{path} (not on procfs)", 1)
        os.write(fd, text.encode())
    except OSError as exc:
        raise SyscallError("write", path, exc.errno or 0) from exc
    finally:
        os.close(fd)
