"""The one seam between pyruntime and the kernel's privileged calls.

Every module that changes the kernel's view of a process (mounts, namespaces,
ids, capabilities, limits) calls through a ``LinuxSyscalls`` that it is handed,
never ``os`` or libc directly, so the recipes can be tested against
``fake.RecordingSyscalls``.  Each method does one call and turns a failure into
``SyscallError(operation, target, errno)``: the caller decides what it means.
Plain file reads and writes stay with ``os``: they need no seam.
"""

from __future__ import annotations

import ctypes
import os
import resource

from pyruntime.errors import SyscallError
from pyruntime.syscalls import _libc as c

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def _encode(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


class LinuxSyscalls:
    """The real thing: libc through ctypes where ``os`` has no wrapper."""

    def __init__(self) -> None:
        self._libc = c.load()

    def _check(self, result: int, operation: str, target: str) -> int:
        if result < 0:
            raise SyscallError(operation, target, ctypes.get_errno())
        return result

    def _syscall(self, number: int, *args: object) -> int:
        return int(self._libc.syscall(ctypes.c_long(number), *args))

    # --- mounts -----------------------------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None, label: str | None = None) -> None:
        """``label`` names the target in errors when ``target`` is a /proc/self/fd path."""
        result = self._libc.mount(_encode(source), _encode(target), _encode(fstype),
                                  flags, _encode(data))
        self._check(result, "mount", label or target)

    def umount(self, target: str, flags: int = 0) -> None:
        self._check(self._libc.umount2(_encode(target), flags), "umount", target)

    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int,
                      attr_clr: int, propagation: int, label: str) -> None:
        attr = c.MountAttr(attr_set, attr_clr, propagation, 0)
        result = self._syscall(c.SYS_mount_setattr, ctypes.c_int(dirfd), _encode(path),
                               ctypes.c_uint(flags), ctypes.byref(attr),
                               ctypes.c_size_t(ctypes.sizeof(attr)))
        self._check(result, "mount_setattr", label)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        result = self._syscall(c.SYS_pivot_root, _encode(new_root), _encode(put_old))
        self._check(result, "pivot_root", new_root)

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, label: str,
                mode: int = 0) -> int:
        """Open ``path`` below ``dirfd`` with ``resolve`` rules (RESOLVE_IN_ROOT...)."""
        how = c.OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        result = self._syscall(c.SYS_openat2, ctypes.c_int(dirfd), _encode(path),
                               ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        return self._check(result, "open", label)

    def fstatfs_type(self, fd: int, label: str) -> int:
        buffer = c.StatFs()
        self._check(self._libc.fstatfs(fd, ctypes.byref(buffer)), "statfs", label)
        return int(buffer.f_type)

    def mknod(self, path: str, mode: int, device: int, label: str) -> None:
        try:
            os.mknod(path, mode, device)
        except OSError as exc:
            raise SyscallError("mknod", label, exc.errno or 0) from exc

    # --- namespaces and identity -----------------------------------------
    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare", hex(flags))

    def setns(self, fd: int, nstype: int, label: str) -> None:
        self._check(self._libc.setns(fd, nstype), "setns", label)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._libc.sethostname(raw, len(raw)), "sethostname", name)

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._libc.setdomainname(raw, len(raw)), "setdomainname", name)

    def setgroups(self, groups: Sequence[int]) -> None:
        try:
            os.setgroups(list(groups))
        except OSError as exc:
            raise SyscallError("setgroups", str(list(groups)), exc.errno or 0) from exc

    def setresgid(self, gid: int) -> None:
        try:
            os.setresgid(gid, gid, gid)
        except OSError as exc:
            raise SyscallError("setresgid", str(gid), exc.errno or 0) from exc

    def setresuid(self, uid: int) -> None:
        try:
            os.setresuid(uid, uid, uid)
        except OSError as exc:
            raise SyscallError("setresuid", str(uid), exc.errno or 0) from exc

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, label: str = "") -> int:
        result = self._libc.prctl(option, arg2, arg3, 0, 0)
        return self._check(result, "prctl", label or str(option))

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = c.CapHeader(c.LINUX_CAPABILITY_VERSION_3, 0)
        low, high = 0xFFFFFFFF, 32
        data = (c.CapData * 2)(
            c.CapData(effective & low, permitted & low, inheritable & low),
            c.CapData(effective >> high, permitted >> high, inheritable >> high))
        result = self._syscall(c.SYS_capset, ctypes.byref(header), data)
        self._check(result, "capset", "")

    def sched_setattr(self, policy: int, flags: int, nice: int, priority: int, runtime: int,
                      deadline: int, period: int) -> None:
        attr = c.SchedAttr(ctypes.sizeof(c.SchedAttr), policy, flags, nice, priority, runtime,
                           deadline, period)
        result = self._syscall(c.SYS_sched_setattr, ctypes.c_int(0), ctypes.byref(attr),
                               ctypes.c_uint(0))
        self._check(result, "sched_setattr", f"policy {policy}")

    def ioprio_set(self, which: int, who: int, priority: int) -> None:
        result = self._syscall(c.SYS_ioprio_set, ctypes.c_int(which), ctypes.c_int(who),
                               ctypes.c_int(priority))
        self._check(result, "ioprio_set", str(priority))

    def join_session_keyring(self, name: str) -> None:
        """keyctl(KEYCTL_JOIN_SESSION_KEYRING): the container gets its own session keyring."""
        result = self._syscall(c.SYS_keyctl, ctypes.c_int(1), _encode(name))
        self._check(result, "join session keyring", name)

    def personality(self, persona: int) -> None:
        self._check(self._libc.personality(persona), "personality", hex(persona))

    def setrlimit(self, kind: int, soft: int, hard: int, label: str) -> None:
        try:
            resource.setrlimit(kind, (soft, hard))
        except (OSError, ValueError) as exc:
            raise SyscallError("setrlimit", label, getattr(exc, "errno", 0) or 1) from exc

    # --- descriptors and processes ----------------------------------------
    def close_range_cloexec(self, first: int) -> None:
        """Mark every fd from ``first`` up close-on-exec (kernel 5.11+)."""
        result = self._syscall(c.SYS_close_range, ctypes.c_uint(first),
                               ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(c.CLOSE_RANGE_CLOEXEC))
        self._check(result, "close_range", str(first))

    def pidfd_send_signal(self, pidfd: int, signal_number: int, label: str) -> None:
        result = self._syscall(c.SYS_pidfd_send_signal, ctypes.c_int(pidfd),
                               ctypes.c_int(signal_number), None, ctypes.c_uint(0))
        self._check(result, "kill", label)

    def loopback_up(self) -> None:
        """``ip link set lo up`` by ioctl: pyroute2 would cost 300 ms to import."""
        import fcntl

        fd = self._check(self._libc.socket(2, 2 | os.O_CLOEXEC, 0), "socket", "lo")
        try:
            request = bytearray(b"lo".ljust(16, b"\0") + bytes(24))
            fcntl.ioctl(fd, c.SIOCGIFFLAGS, request)
            flags = int.from_bytes(request[16:18], "little") | c.IFF_UP
            request[16:18] = flags.to_bytes(2, "little")
            fcntl.ioctl(fd, c.SIOCSIFFLAGS, request)
        except OSError as exc:
            raise SyscallError("set link up", "lo", exc.errno or 0) from exc
        finally:
            os.close(fd)

    def execve(self, path: str, args: Sequence[str], env: dict[str, str]) -> None:
        try:
            os.execve(path, list(args), env)
        except OSError as exc:
            raise SyscallError("exec", args[0], exc.errno or 0) from exc
