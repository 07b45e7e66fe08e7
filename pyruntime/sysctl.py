"""``linux.sysctl``: written into the container's own /proc/sys after pivot_root.

Only sysctls that one of the container's namespaces isolates may be set
(``plan/sysctls.py``, checked at create): anything else would change the host.
Each file is opened
without following symlinks and checked with fstatfs to be on procfs, so an
image cannot point the write at something else.
"""

from __future__ import annotations

import os

from pyruntime.errors import SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.syscalls.linux import LinuxSyscalls

PROC_SUPER_MAGIC = 0x9FA0
def write_sysctls(sys: LinuxSyscalls, sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise SyscallError("open", path, exc.errno or 0) from exc
        try:
            if sys.fstatfs_type(fd, path) != PROC_SUPER_MAGIC:
                raise SyscallError("write sysctl", f"{path} (not on procfs)", 1)
            os.write(fd, value.encode())
        except OSError as exc:
            raise SyscallError("write", path, exc.errno or 0) from exc
        finally:
            os.close(fd)
