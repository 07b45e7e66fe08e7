"""The cgroup v1 driver: one folder per mounted hierarchy.

As runc's cgroupfs driver does, the container gets a folder in *every* v1
hierarchy mounted under /sys/fs/cgroup (name=systemd too), not only in those
its limits need, so every controller accounts for it.  On a hybrid host the
controller-less cgroup2 at /sys/fs/cgroup/unified gets a folder as well
(``unified``), again as runc does, so tools reading the v2 tree see it.
"""

from __future__ import annotations

import os
import time

from pyruntime.cgroups import fs
from pyruntime.errors import ConfigError, PyRuntimeError
from pyruntime.plan.cgroups import CONTROLLER_FIELDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

SIGKILL = 9
FREEZE_ATTEMPTS = 1000
BFQ_NAMES = {"blkio.weight": "blkio.bfq.weight", "blkio.weight_device": "blkio.bfq.weight_device"}
# Which hierarchy's cgroup.procs lists "the container's processes" (all hold the same).
PIDS_FROM = ("devices", "freezer", "pids", "memory")


class Hierarchy:
    """The container's cgroup in one mount: ``root/<mount>/<path>``."""

    __slots__ = ("mount", "controllers", "path")

    def __init__(self, mount: str, controllers: Iterable[str], path: str) -> None:
        self.mount = mount  # folder under the root: "memory", "cpu,cpuacct", "unified"
        self.controllers = tuple(controllers)  # () for the hybrid cgroup2
        self.path = path.strip("/")

    def __repr__(self) -> str:
        return f"Hierarchy({self.mount!r}, {self.controllers}, {self.path!r})"

    def to_json(self) -> list[Any]:
        return [self.mount, list(self.controllers), self.path]


class CgroupV1:
    __slots__ = ("root", "hierarchies", "unified", "made", "rmdir")
    version = 1

    def __init__(self, root: str, hierarchies: Iterable[Hierarchy],
                 unified: Hierarchy | None = None, made: Iterable[str] = ()) -> None:
        self.root = root
        self.hierarchies = list(hierarchies)
        self.unified = unified
        self.made = list(made)  # relative to root ("memory/a/b"), in creation order
        self.rmdir: Callable[[str], None] = fs.rmdir

    def __repr__(self) -> str:
        return f"CgroupV1({self.root!r}, {self.hierarchies}, {self.unified})"

    def _all(self) -> list[Hierarchy]:
        return self.hierarchies + ([self.unified] if self.unified else [])

    def _folder(self, hierarchy: Hierarchy) -> str:
        return os.path.join(self.root, hierarchy.mount, hierarchy.path)

    def folder_of(self, controller: str) -> str | None:
        for hierarchy in self.hierarchies:
            if controller in hierarchy.controllers:
                return self._folder(hierarchy)
        return None

    # --- create / apply ---------------------------------------------------------
    def create(self, controllers: Iterable[str] = ()) -> None:
        """Make the missing folders in every hierarchy; ``controllers`` (from
        ``plan.cgroups.v1_controllers``) must all be mounted, or a ConfigError
        names the first one missing."""
        for controller in controllers:
            if self.folder_of(controller) is None:
                raise ConfigError(CONTROLLER_FIELDS.get(controller, "linux.resources"),
                                  f"cgroup controller {controller} is not mounted on this host")
        made_now: list[str] = []
        try:
            for hierarchy in self._all():
                self._create_in(hierarchy, made_now)
        except BaseException:
            fs.undo_made(self.root, self.made, made_now, self.rmdir)
            raise

    def _create_in(self, hierarchy: Hierarchy, made_now: list[str]) -> None:
        current = hierarchy.mount
        for name in fs.components(hierarchy.path):
            parent, current = current, f"{current}/{name}"
            folder = os.path.join(self.root, current)
            if fs.make_dir(folder):
                made_now.append(current)
                self.made.append(current)
            if "cpuset" in hierarchy.controllers:  # runc's ensureParent: every level
                _copy_cpuset(os.path.join(self.root, parent), folder)

    def apply(self, files: dict[str, dict[str, str]],
              device_rules: Iterable[tuple[str, str]] = ()) -> None:
        """``files`` from ``plan.cgroups.v1_files``; ``device_rules`` (file, line) in order."""
        rules = list(device_rules)
        devices = self.folder_of("devices")
        if rules and devices is not None:  # devices first, as runc's subsystem order
            for name, line in rules:
                fs.write_file(devices, name, line)
        elif rules:
            raise ConfigError(CONTROLLER_FIELDS["devices"],
                              "cgroup controller devices is not mounted on this host")
        for controller, writes in files.items():
            folder = self.folder_of(controller)
            if folder is None:
                raise ConfigError(CONTROLLER_FIELDS.get(controller, "linux.resources"),
                                  f"cgroup controller {controller} is not mounted on this host")
            if controller == "blkio":  # runc: no CFQ blkio.weight -> BFQ's names
                writes = {_bfq_name(folder, name): value for name, value in writes.items()}
            fs.apply_files(folder, writes)

    def update(self, files: dict[str, dict[str, str]]) -> None:
        """``apply`` for a live container, with runc's care for memory and swap: the kernel
        refuses a memory limit above the current memory+swap limit, so when swap grows it
        is written first, and unlimited memory lifts an unspecified swap limit too."""
        memory = dict(files.get("memory", {}))
        limit, swap = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
        folder = self.folder_of("memory")
        if limit in memory and folder is not None:
            if memory[limit] == "-1" and swap not in memory and os.path.exists(
                    os.path.join(folder, swap)):
                memory[swap] = "-1"
            if swap in memory:
                current = int(fs.read_file(folder, limit).strip() or 0)
                raising = memory[swap] == "-1" or current < int(memory[swap])
                first, second = (swap, limit) if raising else (limit, swap)
                rest = {k: v for k, v in memory.items() if k not in (limit, swap)}
                memory = {first: memory[first], second: memory[second], **rest}
            files = {**files, "memory": memory}
        self.apply(files)

    def add_pid(self, pid: int) -> None:
        for hierarchy in self._all():
            fs.write_file(self._folder(hierarchy), "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        for controller in PIDS_FROM:
            folder = self.folder_of(controller)
            if folder is not None:
                return fs.read_pids(folder)
        return fs.read_pids(self._folder(self._all()[0])) if self._all() else []

    # --- freeze / kill ------------------------------------------------------------
    def _freezer(self) -> str:
        folder = self.folder_of("freezer")
        if folder is None:
            raise PyRuntimeError("freeze: the freezer cgroup controller is not mounted")
        return folder

    def is_frozen(self) -> bool:
        folder = self.folder_of("freezer")
        state = fs.read_optional(folder, "freezer.state") if folder else None
        return (state or "").strip() == "FROZEN"

    def freeze(self) -> None:
        """runc's loop: v1 can stick in FREEZING while tasks fork, so write FROZEN again
        until it reads back, thawing briefly every 50 tries; give up thawed."""
        folder = self._freezer()
        for attempt in range(FREEZE_ATTEMPTS):
            if attempt % 50 == 49:
                fs.write_file(folder, "freezer.state", "THAWED")
                time.sleep(0.01)
            fs.write_file(folder, "freezer.state", "FROZEN")
            state = fs.read_file(folder, "freezer.state").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise PyRuntimeError(f"freeze {folder}: unexpected state {state}")
        fs.write_file(folder, "freezer.state", "THAWED")
        raise PyRuntimeError(f"freeze {folder}: stuck in FREEZING")

    def thaw(self) -> None:
        folder = self._freezer()
        fs.write_file(folder, "freezer.state", "THAWED")
        if not fs.wait_for(lambda: fs.read_file(folder, "freezer.state").strip() == "THAWED",
                           5.0):
            raise PyRuntimeError(f"thaw {folder}: timed out")

    def kill(self, signal_number: int = SIGKILL) -> None:
        """As runc's signalAllProcesses: freeze (no fork escapes the list), signal
        every pid, thaw (a frozen task only dies once thawed)."""
        fs.signal_all_frozen(self, signal_number, can_freeze=self.folder_of("freezer") is not None)

    # --- remove -------------------------------------------------------------------
    def remove(self) -> None:
        """rmdir what ``create`` made, deepest first, in every hierarchy; each
        container folder's own sub-cgroups first.  Folders we found stay."""
        fs.remove_made(self.root, self.made, {f"{h.mount}/{h.path}" for h in self._all()},
                       self.rmdir)

    # --- stats ----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """runc's ``events --stats`` shape, for what v1 has."""
        def read(controller: str, name: str) -> str | None:
            folder = self.folder_of(controller)
            return fs.read_optional(folder, name) if folder else None

        cpu = _keyed(read("cpu", "cpu.stat") or "")
        oom = _keyed(read("memory", "memory.oom_control") or "")
        return {
            "cpu": {"usage": {"total": _number(read("cpuacct", "cpuacct.usage"))},
                    "throttling": {"periods": cpu.get("nr_periods", 0),
                                   "throttledPeriods": cpu.get("nr_throttled", 0),
                                   "throttledTime": cpu.get("throttled_time", 0)}},
            "memory": {"usage": {"usage": _number(read("memory", "memory.usage_in_bytes")),
                                 "limit": _number(read("memory", "memory.limit_in_bytes")),
                                 "max": _number(read("memory", "memory.max_usage_in_bytes")),
                                 "failcnt": _number(read("memory", "memory.failcnt"))},
                       "oom_control": oom},
            "pids": {"current": _number(read("pids", "pids.current")),
                     "limit": _number(read("pids", "pids.max"))},
            "blkio": {"ioServiceBytesRecursive": _blkio(
                read("blkio", "blkio.throttle.io_service_bytes") or "")},
        }

    # --- state.json -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"driver": "v1", "root": self.root,
                "hierarchies": [h.to_json() for h in self.hierarchies],
                "unified": self.unified.to_json() if self.unified else None,
                "made": list(self.made)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CgroupV1:
        unified = data.get("unified")
        return cls(data["root"], [Hierarchy(*entry) for entry in data["hierarchies"]],
                   Hierarchy(*unified) if unified else None, data.get("made", ()))


def _copy_cpuset(parent: str, folder: str) -> None:
    """A new v1 cpuset starts with empty cpus/mems and refuses tasks: copy the parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if (fs.read_optional(folder, name) or "").strip():
            continue
        value = fs.read_file(parent, name).strip()
        if value:
            fs.write_file(folder, name, value)


def _bfq_name(folder: str, name: str) -> str:
    if name in BFQ_NAMES and not os.path.exists(os.path.join(folder, name)):
        return BFQ_NAMES[name]
    return name


def _keyed(text: str) -> dict[str, int]:
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            result[key] = int(value)
    return result


def _number(text: str | None) -> int:
    text = (text or "").strip()
    return int(text) if text.isdigit() else 0


def _blkio(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0] or not fields[2].isdigit():
            continue
        major, _, minor = fields[0].partition(":")
        entries.append({"major": int(major), "minor": int(minor), "op": fields[1],
                        "value": int(fields[2])})
    return entries
