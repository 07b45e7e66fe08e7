"""AppArmor profiles and SELinux labels for the container's process.

Both are set by writing the process's own ``attr/exec`` file in procfs just
before the exec; the write goes through a descriptor checked with fstatfs to
be on procfs, so an image with a fake /proc cannot swallow it.  Asking for a
module the host does not run is an error at create, as in runc's validator
(this host, for one, runs neither).  Roots of /proc and /sys are parameters so
that the tests can use folders of fixture files.
"""

from __future__ import annotations

import os

from pyruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from typing import Any

    from pyruntime.spec.model import Spec

# the write itself: procfs.write_on_procfs


def apparmor_enabled(sys_root: str = "/sys") -> bool:
    try:
        with open(os.path.join(sys_root, "module/apparmor/parameters/enabled"),
                  encoding="ascii") as handle:
            return handle.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled(sys_root: str = "/sys") -> bool:
    return os.path.exists(os.path.join(sys_root, "fs/selinux/enforce"))


def check_available(spec: Spec, sys_root: str = "/sys") -> None:
    process = spec.process.raw if spec.process is not None else {}
    if process.get("apparmorProfile") and not apparmor_enabled(sys_root):
        raise ConfigError("process.apparmorProfile", "apparmor is not enabled on this host")
    for field, value in (("process.selinuxLabel", process.get("selinuxLabel")),
                         ("linux.mountLabel", spec.linux.raw.get("mountLabel"))):
        if value and not selinux_enabled(sys_root):
            raise ConfigError(field, "selinux is disabled or not supported on this host")


def exec_attributes(process: dict[str, Any], proc_root: str = "/proc"
                    ) -> list[tuple[str, str]]:
    """(attr file, text) pairs to write before the exec of ``process`` (its JSON)."""
    writes = []
    profile = process.get("apparmorProfile")
    if profile:
        modern = os.path.join(proc_root, "self/attr/apparmor/exec")
        path = modern if os.path.exists(modern) else os.path.join(proc_root, "self/attr/exec")
        writes.append((path, f"exec {profile}"))
    label = process.get("selinuxLabel")
    if label:
        writes.append((os.path.join(proc_root, "self/attr/exec"), label))
    return writes
