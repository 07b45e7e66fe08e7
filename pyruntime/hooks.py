"""Lifecycle hooks: run one hook kind, state JSON on stdin, with its timeout.

Where and when each kind runs (runtime.md "Lifecycle", config.md "Hooks"):

  prestart, createRuntime  create, in the parent (runtime namespace), after the
                           init has built the mounts and before its pivot_root
  createContainer          create, in the init (container namespaces), before pivot_root
  startContainer           start, in the init after pivot_root, before the exec
  poststart                start, in the ``start`` process, after the exec
  poststop                 delete, after the container is destroyed

A failing hook raises ``HookError`` naming the kind and the path; the callers
decide what a failure means (poststop failures are only warnings).
"""

from __future__ import annotations

import os
import time

from pyruntime import jsonio
from pyruntime.errors import HookError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

SIGKILL = 9


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.path: str = raw["path"]
        self.args: list[str] = list(raw.get("args") or [raw["path"]])
        self.env: list[str] = list(raw.get("env", ()))
        self.timeout: int | None = raw.get("timeout")


def hooks_of(raw_hooks: dict[str, Any] | None, kind: str) -> list[Hook]:
    return [Hook(entry) for entry in (raw_hooks or {}).get(kind, ())]


def run_hooks(kind: str, hooks: Sequence[Hook], state: dict[str, object]) -> None:
    """Run ``hooks`` in order; the first failure raises."""
    if not hooks:
        return
    state_json = jsonio.dumps(state).encode()
    for hook in hooks:
        run_hook(kind, hook, state_json)


def run_poststop(hooks: Sequence[Hook], state: dict[str, object]) -> list[str]:
    """Every poststop hook runs; failures come back as warnings."""
    warnings = []
    state_json = jsonio.dumps(state).encode()
    for hook in hooks:
        try:
            run_hook("poststop", hook, state_json)
        except HookError as exc:
            warnings.append(str(exc))
    return warnings


def run_hook(kind: str, hook: Hook, state_json: bytes) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        env = dict(entry.split("=", 1) for entry in hook.env if "=" in entry)
        closes = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds() if fd != read_end]
        try:
            pid = os.posix_spawn(hook.path, hook.args, env,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0), *closes])
        except OSError as exc:
            raise HookError(f"{kind} hook {hook.path}: "
                            f"{os.strerror(exc.errno or 0).lower()}") from exc
        os.close(read_end)
        read_end = -1
        os.set_blocking(write_end, False)
        status = _feed_and_wait(pid, write_end, state_json, hook.timeout)
        write_end = -1  # closed by _feed_and_wait
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    if status is None:
        raise HookError(f"{kind} hook {hook.path}: timed out after {hook.timeout}s")
    if status != 0:
        raise HookError(f"{kind} hook {hook.path}: exited with status {status}")


def _inherited_fds() -> list[int]:
    """Descriptors above 2 that an exec would pass on: ours are all close-on-exec, so
    these are what our caller leaked, and a hook must not get them either."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                fds.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return fds


def _feed_and_wait(pid: int, stdin_fd: int, data: bytes, timeout: int | None) -> int | None:
    """Write ``data`` to the hook's stdin as it reads, until it exits: the exit code
    (negative for a signal), or None if it ran past ``timeout`` (it is killed then).
    The timeout counts while we write too: a hook that never reads cannot stall us."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = memoryview(data)
    delay = 0.0005
    try:
        while True:
            if pending:
                try:
                    pending = pending[os.write(stdin_fd, pending):]
                except BlockingIOError:
                    pass
                except BrokenPipeError:  # a hook need not read its stdin
                    pending = pending[:0]
                if not pending:
                    os.close(stdin_fd)
                    stdin_fd = -1
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, SIGKILL)
                os.waitpid(pid, 0)
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
    finally:
        if stdin_fd >= 0:
            os.close(stdin_fd)
