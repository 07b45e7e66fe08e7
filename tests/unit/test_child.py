"""pyruntime.process.child.run_steps, in a real forked child.

The contract: a forked child never returns into the code that forked it (a
second copy of the CLI would carry on), it exits 0 after its last step or 1
after reporting the first failure as an ERROR message naming the step.  Only
a real fork shows all three, so each test forks; a sentinel file written
after ``run_steps`` proves that it never returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pyruntime.errors import PyRuntimeError, SyscallError
from pyruntime.process.child import run_steps
from pyruntime.process.sync import Channel

RETURNED = 99  # the child's status if run_steps ever returned


def run_in_child(tmp_path: Path, steps: Sequence[tuple[str, Callable[[], object]]],
                 close_reader_first: bool = False) -> tuple[int, list[dict[str, object]], bool]:
    """Fork, run ``steps`` with run_steps; (exit status, messages, sentinel written)."""
    sentinel = tmp_path / "returned"
    read_fd, write_fd = os.pipe()
    if close_reader_first:
        os.close(read_fd)
    stderr_path = tmp_path / "stderr"
    pid = os.fork()
    if pid == 0:  # the child: never leaves this block
        try:
            if not close_reader_first:
                os.close(read_fd)
            err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.dup2(err, 2)
            run_steps(steps, Channel(write_fd=write_fd))
            sentinel.write_text("run_steps returned")
        finally:
            os._exit(RETURNED)
    os.close(write_fd)
    messages = []
    if not close_reader_first:
        reader = Channel(read_fd=read_fd)
        while (message := reader.receive()) is not None:
            messages.append(message)
        reader.close()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), messages, sentinel.exists()


def _marker(tmp_path: Path, name: str) -> Callable[[], object]:
    return lambda: (tmp_path / name).write_text(name)


def test_all_steps_succeed(tmp_path: Path) -> None:
    status, messages, returned = run_in_child(
        tmp_path, [("one", _marker(tmp_path, "1")), ("two", _marker(tmp_path, "2"))])
    assert (status, messages, returned) == (0, [], False)
    assert (tmp_path / "1").exists() and (tmp_path / "2").exists()


def test_no_steps(tmp_path: Path) -> None:
    assert run_in_child(tmp_path, []) == (0, [], False)


def _raise(exc: BaseException) -> Callable[[], None]:
    def step() -> None:
        raise exc
    return step


@pytest.mark.parametrize(("exc", "message"), [
    (PyRuntimeError("something broke"), "something broke"),
    (SyscallError("mount", "/proc", 1), "mount /proc: operation not permitted"),
    (FileNotFoundError(2, "No such file", "/etc/x"), "no such file or directory /etc/x"),
    (PermissionError(13, "Permission denied"), "permission denied"),
    (KeyError("k"), "internal error: KeyError: 'k'"),
    (ZeroDivisionError("division by zero"), "internal error: ZeroDivisionError: division by zero"),
    (SystemExit(3), "internal error: SystemExit: 3"),
    (KeyboardInterrupt(), "internal error: KeyboardInterrupt: "),
])
def test_failure_is_reported_with_its_step(tmp_path: Path, exc: BaseException, message: str) -> None:
    steps = [("first", _marker(tmp_path, "1")), ("second", _raise(exc)),
             ("third", _marker(tmp_path, "3"))]
    status, messages, returned = run_in_child(tmp_path, steps)
    assert status == 1
    assert not returned
    assert messages == [{"type": "error", "stage": "second", "message": message, "hook": False}]
    assert (tmp_path / "1").exists()
    assert not (tmp_path / "3").exists(), "no step runs after a failure"


def test_long_messages_are_truncated(tmp_path: Path) -> None:
    status, messages, _ = run_in_child(tmp_path, [("s", _raise(PyRuntimeError("y" * 10_000)))])
    assert status == 1
    assert messages[0]["message"] == "y" * 3000


def test_nobody_listening_falls_back_to_stderr(tmp_path: Path) -> None:
    """After READY the parent is gone; a failure must still be visible somewhere."""
    status, _, returned = run_in_child(tmp_path, [("exec", _raise(PyRuntimeError("boom")))],
                                       close_reader_first=True)
    assert (status, returned) == (1, False)
    assert (tmp_path / "stderr").read_text() == "pyruntime: exec: boom\n"
