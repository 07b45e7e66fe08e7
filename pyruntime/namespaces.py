"""Entering the container's namespaces: join those with a path, make the rest.

The namespace files are opened by the parent (``open_joined``) before any
namespace changes, so their paths mean what the config author meant.
"""

from __future__ import annotations

import os

from pyruntime.errors import ConfigError
from pyruntime.plan.namespaces import NAMESPACES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.plan.namespaces import NamespacePlan
    from pyruntime.syscalls.linux import LinuxSyscalls


def open_joined(plan: NamespacePlan) -> dict[str, int]:
    """Open every namespace to join, close-on-exec; ConfigError naming the bad one."""
    opened: dict[str, int] = {}
    try:
        for kind, path in plan.joins:
            try:
                opened[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise ConfigError(f"linux.namespaces.{kind}.path",
                                  f"cannot open {path}: {os.strerror(exc.errno or 0).lower()}"
                                  ) from exc
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(opened: dict[str, int]) -> None:
    for fd in opened.values():
        os.close(fd)
    opened.clear()


def join(sys: LinuxSyscalls, opened: dict[str, int], kinds: tuple[str, ...] | None = None,
         exclude: tuple[str, ...] = ()) -> None:
    """setns(2) into the opened namespaces (those of ``kinds``, all but ``exclude``), in
    the table's order.  The user namespace is joined on its own, first."""
    for kind in NAMESPACES:
        if kind in opened and (kinds is None or kind in kinds) and kind not in exclude:
            sys.setns(opened[kind], NAMESPACES[kind][0], f"{kind} namespace")


def unshare(sys: LinuxSyscalls, flags: int) -> None:
    if flags:
        sys.unshare(flags)
