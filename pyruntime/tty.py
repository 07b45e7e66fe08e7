"""``process.terminal``: a pty from the container's own devpts, its master sent out.

The parent connects to ``--console-socket`` (a host path) before anything forks;
the process's last steps open ``/dev/ptmx`` inside the container, take the peer
with TIOCGPTPEER (never by a /dev/pts/N path the container could swap), size
it, send the master over the socket with SCM_RIGHTS as runc does (the message
is the pty's name), and make the peer the controlling terminal and fds 0-2.
The init also binds the peer onto /dev/console (config-linux.md).
"""

from __future__ import annotations

import fcntl
import os
import struct

from pyruntime.errors import SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def connect_console_socket(path: str) -> socket.socket:
    """In the parent, on the host's filesystem; the socket is inherited by the children."""
    import socket

    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        connection.connect(path)
    except OSError as exc:
        connection.close()
        raise SyscallError("connect to console socket", path, exc.errno or 0) from exc
    return connection


class Console:
    """The process's pty; ``peer_fd`` becomes its stdin, stdout and stderr."""

    __slots__ = ("master_fd", "peer_fd")

    def __init__(self) -> None:
        try:
            self.master_fd = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            fcntl.ioctl(self.master_fd, TIOCSPTLCK, struct.pack("i", 0))
            self.peer_fd = fcntl.ioctl(self.master_fd, TIOCGPTPEER,
                                       os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise SyscallError("open pty", "/dev/ptmx", exc.errno or 0) from exc

    def resize(self, size: dict[str, int] | None) -> None:
        if size:
            winsize = struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0)
            fcntl.ioctl(self.peer_fd, TIOCSWINSZ, winsize)

    def send_master(self, connection: socket.socket) -> None:
        import socket

        try:
            socket.send_fds(connection, [b"/dev/ptmx"], [self.master_fd])
        except OSError as exc:
            raise SyscallError("send pty master to", "the console socket", exc.errno or 0) from exc
        finally:
            connection.close()
            os.close(self.master_fd)

    def become_stdio(self) -> None:
        """A session of our own with the pty as controlling terminal, on fds 0-2."""
        try:
            os.setsid()
            fcntl.ioctl(self.peer_fd, TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(self.peer_fd, fd, inheritable=True)
        except OSError as exc:
            raise SyscallError("set up", "the pty as stdio", exc.errno or 0) from exc
        if self.peer_fd > 2:
            os.close(self.peer_fd)
