"""A ``LinuxSyscalls`` that records instead of calling the kernel, for unit tests.

Every method of ``LinuxSyscalls`` is here with the same signature (a unit
test compares them, so the fake cannot drift from the real seam).  Each call
is appended to ``calls`` as ``Call(name, args)``, ``args`` being every
parameter in signature order with defaults filled in, so tests can assert on
the exact recipe a function runs.

The fake keeps just enough kernel state to answer plausibly:

* ``prctl(PR_CAPBSET_READ, n)`` answers from ``bounding`` (the host's bounding
  set, ``host_capabilities`` at start); a capability above ``last_capability``
  is EINVAL, as on a kernel that does not know it.  ``PR_CAPBSET_DROP`` clears
  the bit, ``PR_CAP_AMBIENT_RAISE`` refuses (EPERM) a capability that the last
  ``capset`` did not make permitted and inheritable, as the kernel does.
* ``openat2`` returns a real O_PATH descriptor of a scratch folder (or of a
  regular file in it, for the paths in ``files``), so callers can ``os.close``
  and ``os.fstat`` what they get; ``outstanding_fds()`` finds leaks.
* ``execve`` records and returns (the real one never returns on success).

Failures are programmed with ``fail_on(name, errno, match=...)``: the call is
recorded, then raises ``SyscallError`` with the operation and target the real
method would use, so error messages read the same as in production.
"""

from __future__ import annotations

import errno as _errno
import os
import shutil
import tempfile
import weakref
from typing import TYPE_CHECKING, NamedTuple

from pyruntime.errors import SyscallError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

LAST_CAPABILITY = 40  # CAP_CHECKPOINT_RESTORE, the last one pyruntime knows
ALL_CAPABILITIES = (1 << (LAST_CAPABILITY + 1)) - 1
EXT4_SUPER_MAGIC = 0xEF53


class Call(NamedTuple):
    """One recorded call: the method name and all its arguments, in signature order."""

    name: str
    args: tuple[object, ...]


def _label(*candidates: object) -> str:
    for candidate in candidates:
        if candidate:
            return str(candidate)
    return ""


# method -> (operation, target from args): the words LinuxSyscalls puts in SyscallError
_ERROR_WORDS: dict[str, tuple[str, Callable[[tuple[object, ...]], str]]] = {
    "mount": ("mount", lambda a: _label(a[5], a[1])),
    "umount": ("umount", lambda a: str(a[0])),
    "mount_setattr": ("mount_setattr", lambda a: str(a[6])),
    "pivot_root": ("pivot_root", lambda a: str(a[0])),
    "openat2": ("open", lambda a: str(a[4])),
    "fstatfs_type": ("statfs", lambda a: str(a[1])),
    "mknod": ("mknod", lambda a: str(a[3])),
    "unshare": ("unshare", lambda a: hex(int(a[0]))),  # type: ignore[call-overload]
    "setns": ("setns", lambda a: str(a[2])),
    "sethostname": ("sethostname", lambda a: str(a[0])),
    "setdomainname": ("setdomainname", lambda a: str(a[0])),
    "setgroups": ("setgroups", lambda a: str(list(a[0]))),  # type: ignore[call-overload]
    "setresgid": ("setresgid", lambda a: str(a[0])),
    "setresuid": ("setresuid", lambda a: str(a[0])),
    "prctl": ("prctl", lambda a: _label(a[3], a[0])),
    "capset": ("capset", lambda a: ""),
    "sched_setattr": ("sched_setattr", lambda a: f"policy {a[0]}"),
    "ioprio_set": ("ioprio_set", lambda a: str(a[2])),
    "join_session_keyring": ("join session keyring", lambda a: str(a[0])),
    "personality": ("personality", lambda a: hex(int(a[0]))),  # type: ignore[call-overload]
    "setrlimit": ("setrlimit", lambda a: str(a[3])),
    "close_range_cloexec": ("close_range", lambda a: str(a[0])),
    "pidfd_send_signal": ("kill", lambda a: str(a[2])),
    "loopback_up": ("set link up", lambda a: "lo"),
    "execve": ("exec", lambda a: str(a[1][0]) if a[1] else ""),  # type: ignore[index]
}
METHOD_NAMES = frozenset(_ERROR_WORDS)


class _Failure:
    __slots__ = ("name", "errno", "match", "remaining")

    def __init__(self, name: str, errno: int, match: Callable[[tuple[object, ...]], bool] | None,
                 times: int | None) -> None:
        self.name = name
        self.errno = errno
        self.match = match
        self.remaining = times


class RecordingSyscalls:
    """Records every call; see the module docstring for what it answers."""

    def __init__(self, host_capabilities: int = ALL_CAPABILITIES,
                 last_capability: int = LAST_CAPABILITY, statfs_type: int = EXT4_SUPER_MAGIC,
                 files: Iterable[str] = ()) -> None:
        self.calls: list[Call] = []
        self.bounding = host_capabilities
        self.last_capability = last_capability
        self.statfs_type = statfs_type
        self.files = set(files)
        self.effective = self.permitted = self.inheritable = host_capabilities
        self.ambient = 0
        self.keepcaps = False
        self.no_new_privs = False
        self.dumpable = True
        self.uid = self.gid = 0
        self.groups: list[int] = []
        self.rlimits: dict[int, tuple[int, int]] = {}
        self.hostname = self.domainname = ""
        self._failures: list[_Failure] = []
        self._returned_fds: set[int] = set()
        self._scratch = ""
        self._finalizer: Callable[[], object] | None = None

    # --- test helpers --------------------------------------------------------------
    def fail_on(self, name: str, errno: int,
                match: Callable[[tuple[object, ...]], bool] | None = None,
                times: int | None = None) -> RecordingSyscalls:
        """Make ``name`` raise SyscallError(errno) when ``match(args)`` (every call if
        ``match`` is None), at most ``times`` times.  The first matching rule wins."""
        if name not in METHOD_NAMES:
            raise ValueError(f"LinuxSyscalls has no method {name!r}")
        self._failures.append(_Failure(name, errno, match, times))
        return self

    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def named(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]

    def outstanding_fds(self) -> list[int]:
        """Descriptors returned by ``openat2`` that are still open (a leak, after a step)."""
        if not self._scratch:
            return []
        scratch = os.stat(self._scratch)
        inside = {(scratch.st_dev, scratch.st_ino)}
        for name in os.listdir(self._scratch):
            info = os.stat(os.path.join(self._scratch, name))
            inside.add((info.st_dev, info.st_ino))
        result = []
        for fd in sorted(self._returned_fds):
            try:
                info = os.fstat(fd)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in inside:
                result.append(fd)
        return result

    def close(self) -> None:
        """Remove the scratch folder (also done when the fake is garbage-collected)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> RecordingSyscalls:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _record(self, name: str, *args: object) -> None:
        self.calls.append(Call(name, args))
        for failure in self._failures:
            if failure.name != name or failure.remaining == 0:
                continue
            if failure.match is not None and not failure.match(args):
                continue
            if failure.remaining is not None:
                failure.remaining -= 1
            operation, target = _ERROR_WORDS[name]
            raise SyscallError(operation, target(args), failure.errno)

    def _einval(self, name: str, args: tuple[object, ...], code: int = _errno.EINVAL) -> None:
        operation, target = _ERROR_WORDS[name]
        raise SyscallError(operation, target(args), code)

    def _scratch_dir(self) -> str:
        if not self._scratch:
            self._scratch = tempfile.mkdtemp(prefix="pyruntime-fake-")
            with open(os.path.join(self._scratch, "file"), "w", encoding="ascii"):
                pass
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._scratch, True)
        return self._scratch

    # --- mounts --------------------------------------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None, label: str | None = None) -> None:
        self._record("mount", source, target, fstype, flags, data, label)

    def umount(self, target: str, flags: int = 0) -> None:
        self._record("umount", target, flags)

    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int,
                      attr_clr: int, propagation: int, label: str) -> None:
        self._record("mount_setattr", dirfd, path, flags, attr_set, attr_clr, propagation, label)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, label: str,
                mode: int = 0) -> int:
        self._record("openat2", dirfd, path, flags, resolve, label, mode)
        scratch = self._scratch_dir()
        if path in self.files or label in self.files:
            fd = os.open(os.path.join(scratch, "file"), os.O_PATH | os.O_CLOEXEC)
        else:
            fd = os.open(scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._returned_fds.add(fd)
        return fd

    def fstatfs_type(self, fd: int, label: str) -> int:
        self._record("fstatfs_type", fd, label)
        return self.statfs_type

    def mknod(self, path: str, mode: int, device: int, label: str) -> None:
        self._record("mknod", path, mode, device, label)

    # --- namespaces and identity -----------------------------------------------------
    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int, label: str) -> None:
        self._record("setns", fd, nstype, label)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)
        self.hostname = name

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", name)
        self.domainname = name

    def setgroups(self, groups: Sequence[int]) -> None:
        self._record("setgroups", list(groups))
        self.groups = list(groups)

    def setresgid(self, gid: int) -> None:
        self._record("setresgid", gid)
        self.gid = gid

    def setresuid(self, uid: int) -> None:
        self._record("setresuid", uid)
        self.uid = uid

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, label: str = "") -> int:
        args = (option, arg2, arg3, label)
        self._record("prctl", *args)
        if option in (PR_CAPBSET_READ, PR_CAPBSET_DROP):
            if not 0 <= arg2 <= self.last_capability:
                self._einval("prctl", args)
            if option == PR_CAPBSET_READ:
                return self.bounding >> arg2 & 1
            self.bounding &= ~(1 << arg2)
        elif option == PR_CAP_AMBIENT:
            if arg2 == PR_CAP_AMBIENT_CLEAR_ALL:
                self.ambient = 0
            elif arg2 in (PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_LOWER):
                if not 0 <= arg3 <= self.last_capability:
                    self._einval("prctl", args)
                bit = 1 << arg3
                if arg2 == PR_CAP_AMBIENT_LOWER:
                    self.ambient &= ~bit
                elif not self.permitted & self.inheritable & bit:
                    self._einval("prctl", args, _errno.EPERM)
                else:
                    self.ambient |= bit
        elif option == PR_SET_KEEPCAPS:
            self.keepcaps = bool(arg2)
        elif option == PR_SET_NO_NEW_PRIVS:
            self.no_new_privs = bool(arg2)
        elif option == PR_SET_DUMPABLE:
            self.dumpable = bool(arg2)
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", effective, permitted, inheritable)
        if effective & ~permitted:  # the kernel's rule: effective must be a subset
            self._einval("capset", (effective, permitted, inheritable), _errno.EPERM)
        self.effective, self.permitted, self.inheritable = effective, permitted, inheritable
        self.ambient &= permitted & inheritable

    def sched_setattr(self, policy: int, flags: int, nice: int, priority: int, runtime: int,
                      deadline: int, period: int) -> None:
        self._record("sched_setattr", policy, flags, nice, priority, runtime, deadline, period)

    def ioprio_set(self, which: int, who: int, priority: int) -> None:
        self._record("ioprio_set", which, who, priority)

    def join_session_keyring(self, name: str) -> None:
        self._record("join_session_keyring", name)

    def personality(self, persona: int) -> None:
        self._record("personality", persona)

    def setrlimit(self, kind: int, soft: int, hard: int, label: str) -> None:
        self._record("setrlimit", kind, soft, hard, label)
        if soft > hard:
            self._einval("setrlimit", (kind, soft, hard, label))
        self.rlimits[kind] = (soft, hard)

    # --- descriptors and processes -----------------------------------------------------
    def close_range_cloexec(self, first: int) -> None:
        self._record("close_range_cloexec", first)

    def pidfd_send_signal(self, pidfd: int, signal_number: int, label: str) -> None:
        self._record("pidfd_send_signal", pidfd, signal_number, label)

    def loopback_up(self) -> None:
        self._record("loopback_up")

    def execve(self, path: str, args: Sequence[str], env: dict[str, str]) -> None:
        self._record("execve", path, list(args), dict(env))
