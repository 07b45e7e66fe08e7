"""process.terminal: the pty comes from the container's devpts, its master reaches the
console socket (SCM_RIGHTS, as runc sends it), and the process has it as stdio."""

from __future__ import annotations

import os
import select
import socket
import threading
from pathlib import Path

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error

pytestmark = pytest.mark.root


class ConsoleReceiver:
    """An engine's side of --console-socket: take the master, read what the process writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.server.settimeout(20)
        self.name = ""
        self.fd_count = 0
        self.output = b""
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            message, fds, _, _ = socket.recv_fds(connection, 1024, 4)
        self.name, self.fd_count = message.decode(), len(fds)
        master = fds[0]
        try:
            while select.select([master], [], [], 10)[0]:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: every peer is closed, the process is gone
                    break
                if not data:
                    break
                self.output += data
        finally:
            for fd in fds:
                os.close(fd)

    def finish(self) -> str:
        self.thread.join(30)
        self.server.close()
        return self.output.decode(errors="replace").replace("\r\n", "\n")


def test_create_sends_the_master_and_the_process_has_the_pty(
        rt: Runtime, bundles: BundleFactory, cid: str, test_dir: Path) -> None:
    receiver = ConsoleReceiver(test_dir / "console.sock")
    script = ("tty; stty size; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; "
              "ls -l /dev/console | cut -c1; ls -ln /dev/pts/0 | awk '{print $3}'")
    bundle = bundles.make(["sh", "-c", script], process={
        "terminal": True, "consoleSize": {"height": 33, "width": 101},
        "user": {"uid": 1000, "gid": 1000}})
    rt.create(cid, bundle, "--console-socket", str(receiver.path)).ok()
    rt.start(cid).ok()
    lines = receiver.finish().splitlines()
    rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert receiver.name == "/dev/ptmx" and receiver.fd_count == 1
    assert lines[0] == "/dev/pts/0", "the pty of the container's own devpts instance"
    assert lines[1] == "33 101", "consoleSize applied"
    assert lines[2:5] == ["/dev/pts/0"] * 3, "stdin, stdout and stderr are the pty"
    assert lines[5] == "c", "/dev/console is the pty bound over a character device"
    assert lines[6] == "1000", "the pty belongs to the process's user"


def test_exec_with_tty(rt: Runtime, bundles: BundleFactory, cid: str, test_dir: Path) -> None:
    rt.create(cid, bundles.make(["sleep", "100"])).ok()
    rt.start(cid).ok()
    try:
        receiver = ConsoleReceiver(test_dir / "exec.sock")
        rt("exec", "-t", "--console-socket", str(receiver.path), cid,
           "sh", "-c", "tty; echo in-exec").ok()
        assert receiver.finish().splitlines() == ["/dev/pts/0", "in-exec"]
    finally:
        rt.delete(cid, force=True).ok()


def test_terminal_without_console_socket_is_refused(rt: Runtime, bundles: BundleFactory,
                                                    cid: str) -> None:
    result = rt.create(cid, bundles.make(["true"], process={"terminal": True}))
    assert_one_line_error(result, "process.terminal", "console-socket")
    assert not (rt.root / cid).exists()


def test_console_socket_nobody_listens_on(rt: Runtime, bundles: BundleFactory, cid: str,
                                          test_dir: Path) -> None:
    missing = test_dir / "nobody.sock"
    result = rt.create(cid, bundles.make(["true"], process={"terminal": True}),
                       "--console-socket", str(missing))
    assert_one_line_error(result, "console socket", str(missing))
    assert not (rt.root / cid).exists()
