"""File operations shared by both drivers: one place for errors and retries.

cgroupfs files are written with one write(2) each (the kernel parses a
write, not a file), failures become ``SyscallError`` naming the file, and
rmdir retries EBUSY briefly as runc does, because a cgroup stays busy for a
moment after its last process has exited.
"""

from __future__ import annotations

import errno
import os
import time

from pyruntime.errors import PyRuntimeError, SyscallError
from pyruntime.plan.cgroups import PER_LINE_FILES, is_optional

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cgroups.v1 import CgroupV1
    from pyruntime.cgroups.v2 import CgroupV2
    from collections.abc import Callable, Iterable

POLL_INTERVAL = 0.01


def write_file(folder: str, name: str, content: str) -> None:
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as exc:
        raise SyscallError("open", path, exc.errno or 0) from exc
    try:
        os.write(fd, content.encode())
    except OSError as exc:
        raise SyscallError("write", f"{content!r} to {path}", exc.errno or 0) from exc
    finally:
        os.close(fd)


def read_file(folder: str, name: str) -> str:
    path = os.path.join(folder, name)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise SyscallError("read", path, exc.errno or 0) from exc


def read_optional(folder: str, name: str) -> str | None:
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def apply_files(folder: str, files: dict[str, str]) -> None:
    """Write ``files`` in order: per-line files one line a write, optional ones skipped
    when the kernel lacks them (see ``pyruntime.plan.cgroups``)."""
    for name, content in files.items():
        if is_optional(name, content) and not os.path.exists(os.path.join(folder, name)):
            continue
        lines = content.split("\n") if name in PER_LINE_FILES else [content]
        for line in lines:
            if line:
                write_file(folder, name, line)


def read_pids(folder: str, name: str = "cgroup.procs") -> list[int]:
    text = read_optional(folder, name)
    if text is None:
        return []
    return [int(word) for word in text.split() if word.isdigit()]


def signal_pids(pids: Iterable[int], signal_number: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal_number)
        except ProcessLookupError:
            pass
        except OSError as exc:
            raise SyscallError("kill", str(pid), exc.errno or 0) from exc


def make_dir(path: str) -> bool:
    """True if we made it, False if it was there already."""
    try:
        os.mkdir(path, 0o755)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise SyscallError("mkdir", path, exc.errno or 0) from exc


def rmdir(path: str, retry: bool = True) -> None:
    """runc's rmdir: gone already is fine; EBUSY retried ~1 s (1 ms, doubling, 10 times)."""
    delay, tries = 0.001, 10
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno == errno.EBUSY and retry and tries > 0:
                time.sleep(delay)
                delay, tries = delay * 2, tries - 1
                continue
            raise SyscallError("rmdir", path, exc.errno or 0) from exc


def remove_tree(path: str, remove: Callable[[str], None] = rmdir) -> None:
    """runc's RemovePath: a container may have made sub-cgroups; they go first."""
    try:
        remove(path)
        return
    except SyscallError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EBUSY, errno.EEXIST):
            raise
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SyscallError("read directory", path, exc.errno or 0) from exc
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path, remove)
    remove(path)


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)


def components(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def signal_all_frozen(manager: CgroupV1 | CgroupV2, signal_number: int,
                      can_freeze: bool = True) -> None:
    """As runc's signalAllProcesses: freeze (no fork escapes the list), signal every
    pid, thaw (a frozen task only acts on the signal once thawed)."""
    frozen = False
    if can_freeze:
        try:
            manager.freeze()
            frozen = True
        except PyRuntimeError:
            pass
    try:
        signal_pids(manager.pids(), signal_number)
    finally:
        if frozen:
            manager.thaw()


def remove_made(root: str, made: list[str], leaves: set[str],
                rmdir_one: Callable[[str], None]) -> None:
    """rmdir the folders in ``made`` (relative to ``root``), deepest first; a container's
    own folder (a leaf) loses its sub-cgroups first, as runc's RemovePath does.  All are
    tried; the first failure is raised after."""
    first_error: PyRuntimeError | None = None
    for relative in sorted(made, key=lambda p: p.count("/"), reverse=True):
        path = os.path.join(root, relative)
        try:
            if relative in leaves:
                remove_tree(path, rmdir_one)
            else:
                rmdir_one(path)
            made.remove(relative)
        except PyRuntimeError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


def undo_made(root: str, made: list[str], made_now: list[str],
              rmdir_one: Callable[[str], None]) -> None:
    """After a failed ``create``: remove what it made (newest first).  Never raises: the
    failure being handled is the one to report."""
    for relative in reversed(made_now):
        made.remove(relative)
        try:
            rmdir_one(os.path.join(root, relative))
        except PyRuntimeError:
            pass
