"""``linux.sysctl``: written into the container's own /proc/sys after pivot_root.

Only sysctls that one of the container's namespaces isolates may be set
(``plan/sysctls.py``, checked at create): anything else would change the host.
Each file is opened without following symlinks and checked with fstatfs to be
on procfs, so an image cannot point the write at something else.
"""

from __future__ import annotations

from pyruntime.procfs import write_on_procfs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.syscalls.linux import LinuxSyscalls


def write_sysctls(sys: LinuxSyscalls, sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        write_on_procfs("/proc/sys/" + key.replace(".", "/"), value, sys.fstatfs_type)
