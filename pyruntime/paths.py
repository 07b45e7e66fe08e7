"""Opening paths inside a root filesystem without ever leaving it.

Every path in a config that points into the container (mount destinations,
devices, masked paths) is resolved with openat2(2) and RESOLVE_IN_ROOT: the
kernel treats the rootfs as ``/`` for every component, so an absolute,
relative or ``..``-laden symlink in the image stays inside it, and magic links
(/proc/self/root...) are refused.  The result is an O_PATH descriptor; the
caller mounts onto ``/proc/self/fd/N``, so nothing can swap the path between
the check and the use (CVE-2021-30465).
"""

from __future__ import annotations

import errno
import os
import stat

from pyruntime.errors import SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.syscalls.linux import LinuxSyscalls

O_PATH = 0o10000000
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS


def fd_path(fd: int) -> str:
    """The name through which mount(2) and friends reach an O_PATH descriptor."""
    return f"/proc/self/fd/{fd}"


def open_in_root(sys: LinuxSyscalls, root_fd: int, path: str, flags: int = O_PATH) -> int:
    return sys.openat2(root_fd, path.lstrip("/") or ".", flags | os.O_NOFOLLOW, IN_ROOT, path)


def ensure_in_root(sys: LinuxSyscalls, root_fd: int, path: str, directory: bool,
                   mode: int = 0o755) -> int:
    """Open ``path`` below the root, creating what is missing: folders, and a
    file at the end if ``directory`` is false.  Returns an O_PATH descriptor."""
    parts = [part for part in path.split("/") if part and part != "."]
    try:
        return open_in_root(sys, root_fd, path)
    except SyscallError as exc:
        if exc.errno != errno.ENOENT:
            raise
    parent_fd = os.dup(root_fd)
    try:
        for index, name in enumerate(parts):
            prefix = "/".join(parts[:index + 1])
            try:
                next_fd = open_in_root(sys, root_fd, prefix)
            except SyscallError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                last = index == len(parts) - 1
                _create(parent_fd, name, directory or not last, mode, "/" + prefix)
                next_fd = open_in_root(sys, root_fd, prefix)
            os.close(parent_fd)
            parent_fd = next_fd
        result, parent_fd = parent_fd, -1
        return result
    finally:
        if parent_fd >= 0:
            os.close(parent_fd)


def _create(parent_fd: int, name: str, directory: bool, mode: int, label: str) -> None:
    try:
        if directory:
            os.mkdir(name, mode, dir_fd=parent_fd)
        else:
            flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(name, flags, 0o644, dir_fd=parent_fd))
    except FileExistsError:
        pass  # made by someone else meanwhile: the caller resolves it again, in the root
    except OSError as exc:
        raise SyscallError("mkdir" if directory else "create", label, exc.errno or 0) from exc


def is_directory(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)
