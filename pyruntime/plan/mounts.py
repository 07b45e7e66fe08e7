"""From ``mounts[]`` to mount operations: pure tables, no system calls.

runc's option vocabulary is split four ways, each a table below:
flags that ``mount(2)`` sets or clears, propagation changes (each its own
``mount(2)`` call after the mount), recursive attributes (``mount_setattr(2)``
with AT_RECURSIVE), and everything else, which is filesystem data (``size=``,
``mode=``...).  ``rootfs.py`` performs the operations; tests read them.
"""

from __future__ import annotations

from pyruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyruntime.spec.model import Mount

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_POSIXACL = 0x10000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

# Flags a bind remount must keep: the kernel locks them on mounts that a user
# namespace inherited, and refuses a remount that would drop them.
MS_LOCKABLE = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000

# option -> (clear?, MS_ flag), as mount(8) and runc read them
FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "acl": (False, MS_POSIXACL), "noacl": (True, MS_POSIXACL),
    "async": (True, MS_SYNCHRONOUS), "sync": (False, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME), "noatime": (False, MS_NOATIME),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV), "nodev": (False, MS_NODEV),
    "diratime": (True, MS_NODIRATIME), "nodiratime": (False, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC), "noexec": (False, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION), "noiversion": (True, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME), "nolazytime": (True, MS_LAZYTIME),
    "loud": (True, MS_SILENT), "silent": (False, MS_SILENT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "suid": (True, MS_NOSUID), "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "symfollow": (True, MS_NOSYMFOLLOW),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# option -> (clear?, MOUNT_ATTR_ bit), applied recursively with mount_setattr(2)
RECURSIVE_OPTIONS: dict[str, tuple[bool, int]] = {
    "rro": (False, MOUNT_ATTR_RDONLY), "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID), "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV), "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC), "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME), "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME), "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME), "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME), "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}
_ATIME_MODES = {MOUNT_ATTR_RELATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME}

# runc extensions that we recognise but do not implement yet: refused, not ignored
UNSUPPORTED_OPTIONS = {"tmpcopyup", "idmap", "ridmap"}


class MountOp:
    """One entry of ``mounts[]``, decided: what to call and with which bits."""

    __slots__ = ("index", "destination", "source", "fstype", "flags", "data",
                 "propagation", "attr_set", "attr_clr", "is_bind")

    def __init__(self, index: int, destination: str, source: str | None, fstype: str | None,
                 flags: int, data: str, propagation: list[int], attr_set: int,
                 attr_clr: int) -> None:
        self.index = index
        self.destination = destination
        self.source = source
        self.fstype = fstype
        self.flags = flags
        self.data = data
        self.propagation = propagation
        self.attr_set = attr_set
        self.attr_clr = attr_clr
        self.is_bind = bool(flags & MS_BIND)

    @property
    def field(self) -> str:
        return f"mounts[{self.index}]"

    @property
    def needs_remount(self) -> bool:
        """A bind mount ignores all flags but MS_REC: they need a second, remount call."""
        return self.is_bind and bool(self.flags & ~(MS_BIND | MS_REC | MS_REMOUNT))

    def __repr__(self) -> str:
        return (f"MountOp({self.destination!r}, type={self.fstype!r}, source={self.source!r}, "
                f"flags={self.flags:#x}, data={self.data!r}, propagation={self.propagation}, "
                f"attr_set={self.attr_set:#x}, attr_clr={self.attr_clr:#x})")


def parse_options(options: Sequence[str], field: str) -> tuple[int, str, list[int], int, int]:
    """Split mount options into (flags, data, propagation, attr_set, attr_clr)."""
    flags = 0
    data: list[str] = []
    propagation: list[int] = []
    attr_set = attr_clr = 0
    for position, option in enumerate(options):
        if option in FLAG_OPTIONS:
            clear, bit = FLAG_OPTIONS[option]
            flags = flags & ~bit if clear else flags | bit
        elif option in PROPAGATION_OPTIONS:
            propagation.append(PROPAGATION_OPTIONS[option])
        elif option in RECURSIVE_OPTIONS:
            clear, bit = RECURSIVE_OPTIONS[option]
            is_atime = bit in _ATIME_MODES
            if clear:  # an atime "clear" leaves relatime (0), the kernel's default mode
                attr_set &= ~(MOUNT_ATTR__ATIME if is_atime else bit)
                attr_clr |= MOUNT_ATTR__ATIME if is_atime else bit
            elif is_atime:  # the atime modes are one field: setting one replaces the others
                attr_set = (attr_set & ~MOUNT_ATTR__ATIME) | bit
                attr_clr |= MOUNT_ATTR__ATIME
            else:
                attr_set |= bit
                attr_clr &= ~bit
        elif option in UNSUPPORTED_OPTIONS:
            raise ConfigError(f"{field}.options[{position}]", f"{option!r} is not supported yet")
        else:
            data.append(option)
    return flags, ",".join(data), propagation, attr_set, attr_clr


def plan_mounts(mounts: Sequence[Mount]) -> list[MountOp]:
    """Turn config mounts into operations, in config order (the spec requires it)."""
    operations = []
    for index, mount in enumerate(mounts):
        field = f"mounts[{index}]"
        flags, data, propagation, attr_set, attr_clr = parse_options(mount.options, field)
        if mount.type == "bind":
            flags |= MS_BIND
        operations.append(MountOp(index, mount.destination, mount.source, mount.type, flags,
                                  data, propagation, attr_set, attr_clr))
    return operations
