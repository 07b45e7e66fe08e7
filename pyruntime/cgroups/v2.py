"""The cgroup v2 driver: one folder in the unified hierarchy.

``root`` is the cgroup2 mount (a parameter, so tests use a plain folder) and
``path`` the container's cgroup relative to it.  ``made`` lists the folders
``create`` made, so ``remove`` removes those and nothing the host had before;
it goes to state.json through ``to_json`` for ``delete``.
"""

from __future__ import annotations

import errno
import os

from pyruntime.cgroups import fs
from pyruntime.errors import ConfigError, PyRuntimeError, SyscallError
from pyruntime.plan.cgroups import CONTROLLER_FIELDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

SIGKILL = 9
FREEZE_TIMEOUT = 5.0
UINT64_MAX = 2**64 - 1


class CgroupV2:
    __slots__ = ("root", "path", "made", "rmdir", "device_rules", "attach_program")
    version = 2

    def __init__(self, root: str, path: str, made: Iterable[str] = ()) -> None:
        self.root = root
        self.path = path.strip("/")
        self.made = list(made)  # relative paths, shallowest first
        self.rmdir: Callable[[str], None] = fs.rmdir  # tests swap in a plain-folder version
        # Set by the lead before ``cgroups.setup``: then ``apply`` attaches the device filter
        # too, inside setup's remove-on-failure.  None (update, from_json): devices untouched.
        self.device_rules: list[tuple[str, str]] | None = None
        self.attach_program: Callable[[str, bytes, str], None] | None = None  # tests: a fake

    @property
    def folder(self) -> str:
        return os.path.join(self.root, self.path)

    def __repr__(self) -> str:
        return f"CgroupV2({self.root!r}, {self.path!r})"

    # --- create / apply ---------------------------------------------------------
    def create(self, controllers: Iterable[str] = ()) -> None:
        """Make the missing folders and enable ``controllers`` on the way down.

        runc enables every available controller in every ancestor; we enable
        only those the writes need (``plan.cgroups.v2_controllers``), so a
        controller the host lacks fails here, named, rather than at a write."""
        needed = list(controllers)
        made_now: list[str] = []
        current = ""
        try:
            for name in fs.components(self.path):
                self._enable(current, needed)
                current = f"{current}/{name}" if current else name
                if fs.make_dir(os.path.join(self.root, current)):
                    made_now.append(current)
                    self.made.append(current)
        except BaseException:
            fs.undo_made(self.root, self.made, made_now, self.rmdir)
            raise

    def _enable(self, relative: str, needed: list[str]) -> None:
        folder = os.path.join(self.root, relative)
        if not needed:
            return
        available = fs.read_file(folder, "cgroup.controllers").split()
        for controller in needed:
            if controller not in available:
                field = CONTROLLER_FIELDS.get(controller, "linux.resources.unified")
                raise ConfigError(field, f"cgroup controller {controller} is not available "
                                         f"in {folder}")
        enabled = {word.lstrip("+") for word in
                   fs.read_file(folder, "cgroup.subtree_control").split()}
        missing = [controller for controller in needed if controller not in enabled]
        if missing:
            fs.write_file(folder, "cgroup.subtree_control",
                          " ".join(f"+{controller}" for controller in missing))

    def apply(self, files: dict[str, str]) -> None:
        """``files`` from ``plan.cgroups.v2_files``.  Like runc, prefer BFQ's
        io.bfq.weight (the v1 scale, unconverted) when it exists."""
        files = dict(files)
        weight = files.get("io.weight")
        bfq = files.pop("io.bfq.weight", None)
        if weight is not None and bfq is not None and os.path.exists(
                os.path.join(self.folder, "io.bfq.weight")):
            del files["io.weight"]
            files = {"io.bfq.weight": bfq, **files}
        fs.apply_files(self.folder, files)
        if self.device_rules is not None:
            self.apply_device_rules(self.device_rules)

    def apply_device_rules(self, rules: Iterable[tuple[str, str]]) -> None:
        """v2 has no devices.allow: build the eBPF device filter from the same
        (devices.allow | devices.deny, line) list v1 writes and attach it to the
        folder (BPF_F_ALLOW_MULTI: the host's own filters above still apply).

        The program is built, and so every rule checked, before any system call.
        Nothing to undo at ``remove``: the kernel frees the program with the cgroup."""
        from pyruntime.cgroups import devices_bpf

        code = devices_bpf.encode(devices_bpf.build_program(rules))
        attach = self.attach_program
        if attach is None:
            from pyruntime.syscalls import _bpf

            attach = _bpf.load_and_attach
        attach(self.folder, code, devices_bpf.LICENSE)

    def add_pid(self, pid: int) -> None:
        fs.write_file(self.folder, "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        return fs.read_pids(self.folder)

    # --- freeze / kill ------------------------------------------------------------
    def is_frozen(self) -> bool:
        events = _keyed(fs.read_optional(self.folder, "cgroup.events") or "")
        return events.get("frozen") == 1

    def freeze(self) -> None:
        """Write cgroup.freeze, then wait for cgroup.events to say ``frozen 1``."""
        fs.write_file(self.folder, "cgroup.freeze", "1")
        if not fs.wait_for(self.is_frozen, FREEZE_TIMEOUT):
            fs.write_file(self.folder, "cgroup.freeze", "0")
            raise PyRuntimeError(f"freeze {self.folder}: timed out")

    def thaw(self) -> None:
        fs.write_file(self.folder, "cgroup.freeze", "0")
        if not fs.wait_for(lambda: not self.is_frozen(), FREEZE_TIMEOUT):
            raise PyRuntimeError(f"thaw {self.folder}: timed out")

    def kill(self, signal_number: int = SIGKILL) -> None:
        """SIGKILL through cgroup.kill (5.14+: no fork race); else, or for other
        signals, freeze (so nobody forks meanwhile), signal every pid, thaw."""
        if signal_number == SIGKILL:
            try:
                fs.write_file(self.folder, "cgroup.kill", "1")
                return
            except SyscallError as exc:
                if exc.errno != errno.ENOENT or not os.path.isdir(self.folder):
                    raise
        fs.signal_all_frozen(self, signal_number)

    # --- remove -------------------------------------------------------------------
    def remove(self) -> None:
        """rmdir what ``create`` made, deepest first; sub-cgroups of the container's own
        folder first (runc's RemovePath).  A folder we did not make stays."""
        fs.remove_made(self.root, self.made, {self.path}, self.rmdir)

    # --- stats ----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """runc's ``events --stats`` shape (its fs2 driver), for what v2 has.

        As runc does, ``memory.swap`` is memory plus swap (v1's meaning: engines
        compare it with v1 numbers), a "max" pids limit is 0 (runc's "no limit"),
        and ``usage.max`` is memory.peak where the kernel has it (5.19+)."""
        folder = self.folder
        cpu = _keyed(fs.read_optional(folder, "cpu.stat") or "")
        memory_events = _keyed(fs.read_optional(folder, "memory.events") or "")
        raw = _keyed(fs.read_optional(folder, "memory.stat") or "")
        usage = {"usage": _number(fs.read_optional(folder, "memory.current")),
                 "limit": _number(fs.read_optional(folder, "memory.max")),
                 "failcnt": memory_events.get("max", 0)}
        peak = fs.read_optional(folder, "memory.peak")
        if peak is not None:
            usage["max"] = _number(peak)
        swap_limit = _number(fs.read_optional(folder, "memory.swap.max"))
        swap_events = _keyed(fs.read_optional(folder, "memory.swap.events") or "")
        swap = {"usage": _number(fs.read_optional(folder, "memory.swap.current")) + usage["usage"],
                "limit": swap_limit if UINT64_MAX in (swap_limit, usage["limit"])
                else swap_limit + usage["limit"], "max": 0, "failcnt": swap_events.get("max", 0)}
        pids_limit = _number(fs.read_optional(folder, "pids.max"))
        return {
            "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000,
                              "user": cpu.get("user_usec", 0) * 1000,
                              "kernel": cpu.get("system_usec", 0) * 1000},
                    "throttling": {"periods": cpu.get("nr_periods", 0),
                                   "throttledPeriods": cpu.get("nr_throttled", 0),
                                   "throttledTime": cpu.get("throttled_usec", 0) * 1000}},
            "memory": {"cache": raw.get("file", 0), "usage": usage, "swap": swap,
                       "raw": raw, "events": memory_events},
            "pids": {"current": _number(fs.read_optional(folder, "pids.current")),
                     "limit": 0 if pids_limit == UINT64_MAX else pids_limit},
            "blkio": _io_stat(fs.read_optional(folder, "io.stat") or ""),
            "hugetlb": _hugetlb(folder),
        }

    # --- state.json -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"driver": "v2", "root": self.root, "path": self.path, "made": list(self.made)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CgroupV2:
        return cls(data["root"], data["path"], data.get("made", ()))


def _keyed(text: str) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.events, cgroup.events) as a dict."""
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            result[key] = int(value)
    return result


def _number(text: str | None) -> int:
    if text is None:
        return 0
    text = text.strip()
    return UINT64_MAX if text == "max" else int(text) if text.isdigit() else 0


def _hugetlb(folder: str) -> dict[str, dict[str, int]]:
    """Per page size (``2MB``): usage from hugetlb.<size>.current, failcnt from its
    events' ``max``; v2 keeps no peak, so ``max`` is 0 as runc reports it."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    result = {}
    for name in sorted(names):
        if name.startswith("hugetlb.") and name.endswith(".current") and name.count(".") == 2:
            size = name.split(".")[1]
            events = _keyed(fs.read_optional(folder, f"hugetlb.{size}.events") or "")
            result[size] = {"usage": _number(fs.read_optional(folder, name)), "max": 0,
                            "failcnt": events.get("max", 0)}
    return result


def _io_stat(text: str) -> dict[str, list[dict[str, Any]]]:
    """io.stat (``8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...``) as runc's blkio entries."""
    service_bytes: list[dict[str, Any]] = []
    serviced: list[dict[str, Any]] = []
    for line in text.splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        values = dict(pair.partition("=")[::2] for pair in pairs)
        for key, op, target in (("rbytes", "Read", service_bytes),
                                ("wbytes", "Write", service_bytes),
                                ("rios", "Read", serviced), ("wios", "Write", serviced)):
            if values.get(key, "").isdigit():
                target.append({"major": int(major), "minor": int(minor), "op": op,
                               "value": int(values[key])})
    return {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}
