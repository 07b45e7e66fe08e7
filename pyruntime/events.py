"""``events``: runc's stats events and OOM notifications, between lifecycle and the CLI.

runc prints one JSON object a line (Go's json.Encoder):
``{"type":"stats","id":ID,"data":{cpu, memory, pids, blkio, hugetlb}}`` every
``--interval`` and ``{"type":"oom","id":ID}`` when the container's memory cgroup
runs out, until the container stops; ``--stats`` prints one stats event and exits.

``data`` always carries every key of runc's types.Stats we can fill (zeros and
empty lists included), where runc's ``omitempty`` drops zeros: engines decode
it into the same Go structs, and a fixed shape is easier on everything else.

OOM is *polled* (every ``OOM_POLL`` seconds) rather than waited for: v2's
memory.events ``oom``/``oom_kill`` counters and v1's memory.oom_control
``oom_kill`` counter (and ``under_oom`` turning 1, for a cgroup whose OOM
killer is disabled) are compared with the previous poll.  runc waits on an
eventfd (v1, cgroup.event_control) or inotify (v2); polling needs no fd
plumbing and loses nothing but up to ``OOM_POLL`` of latency: the counters
only grow, so one poll can merge two OOMs into one event, never miss both.
"""

from __future__ import annotations

import os
import time

from pyruntime import state
from pyruntime.errors import StateError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyruntime.cgroups import Manager
    from pyruntime.lifecycle import Runtime
    from pyruntime.state import State

OOM_POLL = 0.1
DEFAULT_INTERVAL = "5s"
UINT64_MAX = 2**64 - 1
BLKIO_KEYS = ("ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive",
              "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive",
              "ioTimeRecursive", "sectorsRecursive")
# Go's time.ParseDuration units, in nanoseconds
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9,
          "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(text: str, flag: str = "interval") -> float:
    """Go's duration syntax (``5s``, ``500ms``, ``1m30s``, ``1.5h``) in seconds."""
    def bad() -> UsageError:
        return UsageError(f"invalid value {text!r} for flag -{flag}: parse error")

    rest = text
    sign = -1 if rest.startswith("-") else 1
    rest = rest[1:] if rest[:1] in "+-" and rest else rest
    if rest == "0":
        return 0.0
    if not rest:
        raise bad()
    total = 0.0
    while rest:
        number_end = 0
        while number_end < len(rest) and (rest[number_end].isdigit() or rest[number_end] == "."):
            number_end += 1
        number = rest[:number_end]
        unit_end = number_end
        while unit_end < len(rest) and not (rest[unit_end].isdigit() or rest[unit_end] == "."):
            unit_end += 1
        unit = rest[number_end:unit_end]
        if not number.strip(".") or number.count(".") > 1 or unit not in _UNITS:
            raise bad()
        total += float(number) * _UNITS[unit]
        rest = rest[unit_end:]
    return sign * total / 1e9


def interval_from(text: str) -> float:
    """``--interval`` checked as runc checks it, before anything else (even --stats)."""
    interval = parse_duration(text or DEFAULT_INTERVAL)
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    return interval


# --- the stats, in runc's shape ---------------------------------------------------------
def _entry(raw: dict[str, Any] | None) -> dict[str, int]:
    raw = raw or {}
    return {key: int(raw.get(key, 0)) for key in ("limit", "usage", "max", "failcnt")}


def shape(raw: dict[str, Any]) -> dict[str, Any]:
    """A driver's ``stats()`` as runc's types.Stats: every key, driver extras dropped
    (``oom_control``, ``events``: they feed the OOM watch, not the output)."""
    cpu, memory = raw.get("cpu") or {}, raw.get("memory") or {}
    usage, throttling = cpu.get("usage") or {}, cpu.get("throttling") or {}
    pids, blkio = raw.get("pids") or {}, raw.get("blkio") or {}
    return {
        "cpu": {"usage": {"total": int(usage.get("total", 0)),
                          "percpu": list(usage.get("percpu") or []),
                          "percpu_kernel": list(usage.get("percpu_kernel") or []),
                          "percpu_user": list(usage.get("percpu_user") or []),
                          "kernel": int(usage.get("kernel", 0)),
                          "user": int(usage.get("user", 0))},
                "throttling": {key: int(throttling.get(key, 0))
                               for key in ("periods", "throttledPeriods", "throttledTime")}},
        "memory": {"cache": int(memory.get("cache", 0)),
                   "usage": _entry(memory.get("usage")), "swap": _entry(memory.get("swap")),
                   "kernel": _entry(memory.get("kernel")),
                   "kernelTCP": _entry(memory.get("kernelTCP")),
                   "raw": dict(sorted((memory.get("raw") or {}).items()))},  # Go: sorted
        "pids": {"current": int(pids.get("current", 0)), "limit": int(pids.get("limit", 0))},
        "blkio": {key: list(blkio.get(key) or []) for key in BLKIO_KEYS},
        "hugetlb": {size: {"usage": int(entry.get("usage", 0)), "max": int(entry.get("max", 0)),
                           "failcnt": int(entry.get("failcnt", 0))}
                    for size, entry in (raw.get("hugetlb") or {}).items()},
        "intel_rdt": {}, "network_interfaces": None,  # runc's, for the same key set
    }


def collect(manager: Manager) -> dict[str, Any]:
    """The container's stats as runc prints them (``data`` of a stats event)."""
    from pyruntime.cgroups import CgroupV1

    raw = manager.stats()
    if isinstance(manager, CgroupV1):
        raw = _v1_more(manager, raw)
    return shape(raw)


def _read(folder: str | None, name: str) -> str | None:
    if folder is None:
        return None
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _int(text: str | None) -> int:
    text = (text or "").strip()
    return int(text) if text.isdigit() else 0


def _keyed(text: str | None) -> dict[str, int]:
    result = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            result[key] = int(value)
    return result


def _v1_more(manager: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """What runc's v1 stats have beyond CgroupV1.stats(): per-cpu and user/kernel
    time, mem+swap, kmem, tcp kmem, memory.stat, hugetlb, recursive blkio.
    (Here rather than in cgroups/v1.py only because that file had another owner.)"""
    cpuacct = manager.folder_of("cpuacct")
    usage = raw.setdefault("cpu", {}).setdefault("usage", {})
    usage["percpu"] = [int(word) for word in (_read(cpuacct, "cpuacct.usage_percpu")
                                               or "").split() if word.isdigit()]
    per_mode = [line.split() for line in (_read(cpuacct, "cpuacct.usage_all") or "")
                .splitlines()[1:]]
    usage["percpu_user"] = [int(f[1]) for f in per_mode if len(f) == 3 and f[1].isdigit()]
    usage["percpu_kernel"] = [int(f[2]) for f in per_mode if len(f) == 3 and f[2].isdigit()]
    ticks = _keyed(_read(cpuacct, "cpuacct.stat"))
    per_tick = 10**9 // (os.sysconf("SC_CLK_TCK") or 100)
    usage["user"], usage["kernel"] = ticks.get("user", 0) * per_tick, ticks.get("system",
                                                                                 0) * per_tick
    memory_folder = manager.folder_of("memory")
    memory = raw.setdefault("memory", {})
    for key, prefix in (("swap", "memory.memsw."), ("kernel", "memory.kmem."),
                        ("kernelTCP", "memory.kmem.tcp.")):
        memory[key] = {"usage": _int(_read(memory_folder, f"{prefix}usage_in_bytes")),
                       "limit": _int(_read(memory_folder, f"{prefix}limit_in_bytes")),
                       "max": _int(_read(memory_folder, f"{prefix}max_usage_in_bytes")),
                       "failcnt": _int(_read(memory_folder, f"{prefix}failcnt"))}
    memory["raw"] = _keyed(_read(memory_folder, "memory.stat"))
    memory["cache"] = memory["raw"].get("total_cache", memory["raw"].get("cache", 0))
    hugetlb = manager.folder_of("hugetlb")
    sizes = sorted({name.split(".")[1] for name in _listdir(hugetlb)
                    if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes")
                    and name.count(".") == 2})
    raw["hugetlb"] = {size: {"usage": _int(_read(hugetlb, f"hugetlb.{size}.usage_in_bytes")),
                             "max": _int(_read(hugetlb, f"hugetlb.{size}.max_usage_in_bytes")),
                             "failcnt": _int(_read(hugetlb, f"hugetlb.{size}.failcnt"))}
                      for size in sizes}
    blkio = manager.folder_of("blkio")
    for key, name in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                      ("ioServicedRecursive", "io_serviced_recursive")):
        for prefix in ("blkio.bfq.", "blkio.", "blkio.throttle."):  # runc: CFQ/BFQ first
            entries = _blkio_entries(_read(blkio, prefix + name))
            if entries:
                raw.setdefault("blkio", {})[key] = entries
                break
    return raw


def _listdir(folder: str | None) -> list[str]:
    try:
        return os.listdir(folder) if folder else []
    except OSError:
        return []


def _blkio_entries(text: str | None) -> list[dict[str, Any]]:
    """``8:0 Read 4096`` lines (the ``Total`` lines skipped) as runc's BlkioEntry."""
    entries = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and ":" in fields[0] and fields[2].isdigit():
            major, _, minor = fields[0].partition(":")
            if major.isdigit() and minor.isdigit():
                entries.append({"major": int(major), "minor": int(minor), "op": fields[1],
                                "value": int(fields[2])})
    return entries


def oom_counters(manager: Manager) -> tuple[int, ...]:
    """Numbers that grow when the cgroup hits OOM (see the module docstring)."""
    from pyruntime.cgroups import CgroupV2

    if isinstance(manager, CgroupV2):
        events = _keyed(_read(manager.folder, "memory.events"))
        return events.get("oom", 0), events.get("oom_kill", 0)
    control = _keyed(_read(manager.folder_of("memory"), "memory.oom_control"))
    return control.get("oom_kill", 0), control.get("under_oom", 0)


# --- the commands' work -------------------------------------------------------------------
def _running(runtime: Runtime, container_id: str) -> tuple[State, Manager]:
    """The container and its cgroup; runc's errors for a stopped one or none."""
    from pyruntime import cgroups

    record, status = runtime.status_of(container_id)  # NotFoundError: "does not exist"
    if status == state.STOPPED:
        raise StateError(f"container with id {container_id} is not running")
    if record.cgroup is None:
        raise StateError(f"container with id {container_id} has no cgroup to report on")
    return record, cgroups.from_json(record.cgroup)


def stats_event(runtime: Runtime, container_id: str) -> dict[str, Any]:
    """``events --stats``: one event."""
    _, manager = _running(runtime, container_id)
    return {"type": "stats", "id": container_id, "data": collect(manager)}


def watch(runtime: Runtime, container_id: str, interval: float,
          emit: Callable[[dict[str, Any]], None], poll: float = OOM_POLL,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Stats every ``interval`` seconds (the first after one interval, as runc's
    time.Tick), an OOM event whenever a counter grew, until the init is gone.
    A last OOM poll runs after the init died: an OOM kill of the init is reported."""
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    record, manager = _running(runtime, container_id)
    last = oom_counters(manager)
    next_stats = clock() + interval
    while True:
        alive = runtime.procfs.is_alive(record.pid, record.start_time)
        now_counters = oom_counters(manager)
        if any(new > old for new, old in zip(now_counters, last)):
            emit({"type": "oom", "id": container_id})
        last = now_counters
        if not alive:
            return
        now = clock()
        if now >= next_stats:
            emit({"type": "stats", "id": container_id, "data": collect(manager)})
            next_stats = max(next_stats + interval, now)  # a slow read does not pile up ticks
        sleep(max(0.0, min(poll, next_stats - clock())))
