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
MAX_SYMLINK_HOPS = 40  # the kernel's own limit


def fd_path(fd: int) -> str:
    """The name through which mount(2) and friends reach an O_PATH descriptor."""
    return f"/proc/self/fd/{fd}"


def open_in_root(sys: LinuxSyscalls, root_fd: int, path: str, flags: int = O_PATH) -> int:
    """Symlinks are followed, the last one too, but never out of the root."""
    return sys.openat2(root_fd, path.lstrip("/") or ".", flags, IN_ROOT, path)


def _normalise(parts: list[str]) -> list[str]:
    """Drop ``.`` and empty parts; ``..`` goes up, but never above the root."""
    result: list[str] = []
    for part in parts:
        if part == "..":
            if result:
                result.pop()
        elif part and part != ".":
            result.append(part)
    return result


def ensure_in_root(sys: LinuxSyscalls, root_fd: int, path: str, directory: bool,
                   mode: int = 0o755) -> int:
    """Open ``path`` below the root, creating what is missing: folders, and a file at
    the end if ``directory`` is false.  A dangling symlink on the way is followed
    inside the root and its target created there, as runc does.  Returns an O_PATH
    descriptor."""
    try:
        return open_in_root(sys, root_fd, path)
    except SyscallError as exc:
        if exc.errno != errno.ENOENT:
            raise
    parts = _normalise(path.split("/"))
    index = hops = 0
    while index < len(parts):
        prefix = "/".join(parts[:index + 1])
        try:
            os.close(open_in_root(sys, root_fd, prefix))
            index += 1
            continue
        except SyscallError as exc:
            if exc.errno != errno.ENOENT:
                raise
        parent_fd = open_in_root(sys, root_fd, "/".join(parts[:index]))
        try:
            target = _dangling_link(parent_fd, parts[index])
            if target is None:
                last = index == len(parts) - 1
                _create(parent_fd, parts[index], directory or not last, mode, "/" + prefix)
                continue
        finally:
            os.close(parent_fd)
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise SyscallError("resolve", path, errno.ELOOP)
        base = [] if target.startswith("/") else parts[:index]
        parts = _normalise([*base, *target.split("/"), *parts[index + 1:]])
        index = 0
    return open_in_root(sys, root_fd, "/".join(parts))


def _dangling_link(parent_fd: int, name: str) -> str | None:
    """The target of ``name`` if it is a symlink (whose target must be missing, since
    the resolution of ``name`` failed); None if nothing is there."""
    try:
        return os.readlink(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # there, and not a symlink: let create say why
            return None
        raise


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
