"""Checks of runtime-linux.md: file descriptors and /dev symbolic links."""

from __future__ import annotations

import os
from typing import Callable

import pytest

from conformance.helpers import Bundle, Runtime, clause, new_id

MakeBundle = Callable[..., Bundle]


@clause("runtime-linux.md", "By default, only the `stdin`, `stdout` and `stderr` file descriptors "
        "are kept open for the application by the runtime.")
def test_only_stdio_fds_open(rt: Runtime, bundle: MakeBundle) -> None:
    """The running process (busybox sleep, which opens nothing) has exactly fds 0, 1, 2,
    even though the runtime's caller passed it an extra inheritable fd."""
    b = bundle(["/bin/sleep", "300"])
    r_fd, w_fd = os.pipe()
    os.set_inheritable(r_fd, True)
    try:
        cid = new_id()
        r = rt.create(cid, b, pass_fds=(r_fd,))
        assert r.ok, f"create failed:\n{r}"
        assert rt.start(cid).ok
        pid = rt.state(cid)["pid"]
        fds = sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))
        targets = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}
        assert fds == [0, 1, 2], f"open fds of the container process: {targets}"
    finally:
        os.close(r_fd)
        os.close(w_fd)


DEV_LINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
             "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}


@clause("runtime-linux.md", "While creating the container (step 2 in the "
        "[lifecycle](runtime.md#lifecycle)), runtimes MUST create the following symlinks if the "
        "source file exists after processing [`mounts`](config.md#mounts):")
@pytest.mark.parametrize("link", list(DEV_LINKS))
def test_dev_symlink(rt: Runtime, bundle: MakeBundle, link: str) -> None:
    """/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr are symlinks to /proc/self/fd[/N]."""
    b = bundle(["/bin/readlink", link])
    assert rt.run(b).strip() == DEV_LINKS[link]
