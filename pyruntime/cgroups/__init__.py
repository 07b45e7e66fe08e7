"""cgroup drivers (runc's cgroupfs driver, v1 and v2): build, apply, rebuild.

The lead's sequence::

    manager = manager_for(detect_mode(procfs), spec_cgroups_path, container_id, procfs)
    setup(manager, resources)       # create folders, enable/check controllers, write limits
    manager.add_pid(pid)            # before the process unshares anything
    record["cgroup"] = manager.to_json()
    ...
    manager = from_json(record["cgroup"]); manager.kill(); manager.remove()

``root`` is a parameter so that tests drive the same code against plain folders.
"""

from __future__ import annotations

from pyruntime.cgroups.detect import (CGROUP_ROOT, HYBRID, LEGACY, UNIFIED, Mount, detect_mode,
                                      host_mounts)
from pyruntime.cgroups.paths import inner_path, resolve
from pyruntime.cgroups.v1 import CgroupV1, Hierarchy
from pyruntime.cgroups.v2 import CgroupV2
from pyruntime.errors import PyRuntimeError
from pyruntime.plan import cgroups as plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyruntime.procfs import ProcFS

Manager = CgroupV1 | CgroupV2

__all__ = ["CGROUP_ROOT", "HYBRID", "LEGACY", "UNIFIED", "CgroupV1", "CgroupV2", "Hierarchy",
           "Manager", "detect_mode", "from_json", "manager_for", "setup"]


def manager_for(mode: str, cgroups_path: str | None, container_id: str, procfs: ProcFS,
                root: str = CGROUP_ROOT, mounts: list[Mount] | None = None) -> Manager:
    """The driver for this host layout and ``linux.cgroupsPath`` (checked here:
    ConfigError on ``linux.cgroupsPath``).  ``mounts`` defaults to /proc/self/mountinfo."""
    inner = inner_path(cgroups_path, container_id)
    mounts = host_mounts(procfs) if mounts is None else mounts
    if mode == UNIFIED:
        for mount in mounts:
            if mount.version == 2 and mount.name == "":
                return CgroupV2(root, resolve(inner, mount.own_path, unified_mode=True))
        raise PyRuntimeError("no cgroup2 hierarchy at /sys/fs/cgroup")
    hierarchies = [Hierarchy(m.name, m.controllers, resolve(inner, m.own_path))
                   for m in mounts if m.version == 1]
    unified = None
    if mode == HYBRID:
        for m in mounts:
            if m.version == 2 and m.name == "unified":
                unified = Hierarchy(m.name, (), resolve(inner, m.own_path))
    return CgroupV1(root, hierarchies, unified)


def setup(manager: Manager, resources: dict[str, Any] | None,
          device_rules: list[tuple[str, str]] | None = None) -> None:
    """Check and convert ``resources`` for this driver's version, create, write.

    All conversion errors come before any folder is made.  ``device_rules``
    (v1 only) defaults to the config's ``devices`` list alone: whether runc's
    default allow list (``plan.cgroups.default_device_rules()``) follows is the
    caller's choice.  On failure the folders made so far are removed."""
    resources = resources or {}
    if isinstance(manager, CgroupV2):
        files = plan.v2_files(resources)
        manager.create(plan.v2_controllers(files))
        _apply_or_remove(manager, lambda: manager.apply(files))
        return
    v1 = plan.v1_files(resources)
    rules = (plan.v1_device_rules(resources.get("devices")) if device_rules is None
             else device_rules)
    manager.create(plan.v1_controllers(v1, rules))
    _apply_or_remove(manager, lambda: manager.apply(v1, rules))


def _apply_or_remove(manager: Manager, apply: Callable[[], None]) -> None:
    try:
        apply()
    except BaseException:
        try:
            manager.remove()
        except PyRuntimeError:
            pass
        raise


def from_json(data: dict[str, Any]) -> Manager:
    """The driver ``to_json`` described (state.json), for delete, kill, pause."""
    if data.get("driver") == "v2":
        return CgroupV2.from_json(data)
    if data.get("driver") == "v1":
        return CgroupV1.from_json(data)
    raise PyRuntimeError(f"unknown cgroup driver {data.get('driver')!r} in state")

