"""The messages between ``create`` (the parent), the intermediate and the init.

::

  parent (pyruntime create)       intermediate (host pid ns)     init (PID 1)
  -------------------------       --------------------------     ------------
  fork ────────────────────────▶  (waits, if the container has a cgroup)
  write its pid to the cgroup
              ─── IN_CGROUP ───▶  oom_score_adj, non-dumpable
                                  setns(user) or unshare(NEWUSER)
              ◀──── USERNS ─────  (only for a new user namespace)
  write uid_map, gid_map
              ───── MAPPED ────▶  setresuid/gid(0) in the new namespace
                                  setns(joined), unshare(the others)
                                  lo up in a new network namespace
              ◀─── NETNS_READY ─  (only with linux.netDevices)
  move the devices into
  /proc/<intermediate>/ns/net
              ── NET_DEVICES_MOVED ▶
                                  fork ────────────────────────▶ (same pipes)
              ◀──── INIT_PID ───  _exit(0)
  reap the intermediate                                          mounts, /dev
              ◀──────────────────────────────── CREATE_HOOKS ──  (only with prestart or
  prestart, createRuntime hooks                                   createRuntime hooks)
              ───── HOOKS_DONE ──────────────────────────────▶
                                                                 createContainer hooks,
                                                                 pivot_root, hostname, limits,
                                                                 user, capabilities, ...
              ◀─────────────────────────────────────── READY ──
  write state.json, --pid-file;                                  read(exec.fifo) blocks
  exit 0 (the init now belongs
  to the caller's subreaper)

  Any stage, instead:  ◀── ERROR {stage, message} ──  and that child _exits(1).
  The parent sees EOF if every child died without a word.

  start                                               init
  -----                                               ----
  open exec.status to read; write "0" to exec.fifo ─▶ startContainer hooks
              ◀───────────────────────────── EXEC ──  execve: exec.status is close-on-exec
  read exec.status to EOF:
    EXEC then EOF: the process runs -> poststart hooks
    ERROR {stage, message}: a hook or the execve failed (the init _exits)
    EOF alone: the init died before it could exec

  ``exec`` (process/join.py) reads its pipe the same way.

Messages are single-line JSON objects on pipes, each write at most PIPE_BUF
bytes so that it is atomic; the set is closed: ``receive`` raises on
anything else.
"""

from __future__ import annotations

import os

from pyruntime import jsonio
from pyruntime.errors import ChildError, HookError, PyRuntimeError

USERNS = "userns"
MAPPED = "mapped"
INIT_PID = "init_pid"
CREATE_HOOKS = "create_hooks"
HOOKS_DONE = "hooks_done"
READY = "ready"
EXEC = "exec"
ERROR = "error"
IN_CGROUP = "in_cgroup"
NETNS_READY = "netns_ready"  # linux.netDevices: the parent moves them while the intermediate
NET_DEVICES_MOVED = "net_devices_moved"  # waits in the container's network namespace
MESSAGES = frozenset({USERNS, MAPPED, INIT_PID, CREATE_HOOKS, HOOKS_DONE, READY, EXEC, ERROR,
                      IN_CGROUP, NETNS_READY, NET_DEVICES_MOVED})
PIPE_BUF = 4096

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Channel:
    """One direction of the protocol: a pipe we read or a pipe we write."""

    __slots__ = ("read_fd", "write_fd", "_buffer")

    def __init__(self, read_fd: int = -1, write_fd: int = -1) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = b""

    def send(self, kind: str, **fields: Any) -> None:
        assert kind in MESSAGES, kind
        line = encode_message(kind, fields)
        os.write(self.write_fd, line)

    def receive(self) -> dict[str, Any] | None:
        """The next message, or ``None`` at EOF (every writer is gone)."""
        while b"\n" not in self._buffer:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = jsonio.loads(line)
        except jsonio.JSONError as exc:
            raise ChildError("sync", f"malformed message {line[:80]!r}") from exc
        if not isinstance(message, dict) or message.get("type") not in MESSAGES:
            raise ChildError("sync", f"unexpected message {line[:80]!r}")
        return message

    def expect(self, kind: str) -> dict[str, Any]:
        """The next message, which must be ``kind``; an ERROR becomes ChildError."""
        message = self.receive()
        if message is None:
            raise ChildError("sync", f"expected {kind}, but the other side is gone")
        if message["type"] == ERROR:
            raise error_from(message)
        if message["type"] != kind:
            raise ChildError("sync", f"expected {kind}, got {message['type']}")
        return message

    def redirect(self, write_fd: int) -> None:
        """Send from now on to ``write_fd`` (the init's reports go to exec.status after READY)."""
        self.close()
        self.write_fd = write_fd

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1


def error_from(message: dict[str, Any]) -> PyRuntimeError:
    """An ERROR message as the exception the child raised: a failed hook stays a
    HookError, which the lifecycle answers differently (runtime.md: on to poststop)."""
    stage, text = str(message.get("stage", "")), str(message.get("message", ""))
    return HookError(f"{stage}: {text}") if message.get("hook") else ChildError(stage, text)


def wait_for_exec(channel: Channel) -> None:
    """EXEC then EOF: the process runs.  See the diagram above for the rest."""
    message = channel.receive()
    if message is not None and message["type"] == EXEC:
        message = channel.receive()
        if message is None:
            return
    if message is None:
        raise ChildError("start", "the container init exited before it could exec the process")
    if message["type"] == ERROR:
        raise error_from(message)
    raise ChildError("sync", f"unexpected {message['type']} while waiting for the exec")


def encode_message(kind: str, fields: dict[str, Any]) -> bytes:
    """One line, cut to fit PIPE_BUF: a long error message loses its tail, not its atomicity."""
    line = jsonio.dumps({"type": kind, **fields}).encode() + b"\n"
    while len(line) > PIPE_BUF and isinstance(fields.get("message"), str):
        fields = {**fields, "message": fields["message"][: len(fields["message"]) // 2] + "..."}
        line = jsonio.dumps({"type": kind, **fields}).encode() + b"\n"
    return line


def pipe_pair() -> tuple[Channel, Channel, Channel, Channel]:
    """(parent reads, child writes, parent writes, child reads), all close-on-exec."""
    up_read, up_write = os.pipe2(os.O_CLOEXEC)
    down_read, down_write = os.pipe2(os.O_CLOEXEC)
    return Channel(read_fd=up_read), Channel(write_fd=up_write), \
        Channel(write_fd=down_write), Channel(read_fd=down_read)
