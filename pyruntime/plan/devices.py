"""The devices every container gets (runtime-linux.md "Default Devices")."""

from __future__ import annotations

import stat

S_IFCHR = stat.S_IFCHR

# path, major, minor, mode (all character devices, 0666)
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)

# link -> target, created in /dev after the devices
DEFAULT_LINKS: tuple[tuple[str, str], ...] = (
    ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/core", "/proc/kcore"),
)

DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
