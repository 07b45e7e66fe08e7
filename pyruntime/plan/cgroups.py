"""``linux.resources`` checked and turned into cgroup file writes (pure tables).

Two converters, one per cgroup version, both with runc's semantics:

* ``v2_files(resources)`` -> ``{file: content}`` relative to the container's
  cgroup folder (``memory.max``, ``cpu.weight``, ``io.max``...), v1 fields
  converted with runc's formulas, then ``unified`` on top.
* ``v1_files(resources)`` -> ``{controller: {file: content}}``, plus
  ``v1_device_rules(devices)`` for the ordered ``devices.allow``/``deny`` lines.

Dict order is write order.  Content holding several lines for a file in
``PER_LINE_FILES`` is written one line per write(2), as the kernel parses one
rule per write; ``is_optional`` names the writes runc skips when the kernel
lacks the file (``hugetlb.*.rsvd.*``, a swap limit that only says "max" or "0").
Nothing here touches the system: the drivers in ``pyruntime.cgroups`` apply it.
"""

from __future__ import annotations

from pyruntime.errors import ConfigError
from pyruntime.plan.scheduling import parse_cpu_list

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

R = "linux.resources"
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
MIN_SHARES, MAX_SHARES = 2, 262144
MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT = 10, 1000
DEFAULT_CFS_PERIOD = 100000

PER_LINE_FILES = frozenset({
    "io.max", "io.bfq.weight_device", "rdma.max",
    "blkio.weight_device", "blkio.leaf_weight_device", "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device", "net_prio.ifpriomap",
})

# Where a config asks for a controller, for errors naming the field that needs it.
CONTROLLER_FIELDS = {
    "memory": f"{R}.memory", "cpu": f"{R}.cpu", "cpuset": f"{R}.cpu", "pids": f"{R}.pids",
    "io": f"{R}.blockIO", "blkio": f"{R}.blockIO", "hugetlb": f"{R}.hugepageLimits",
    "rdma": f"{R}.rdma", "net_cls": f"{R}.network", "net_prio": f"{R}.network",
    "devices": f"{R}.devices", "misc": f"{R}.unified",
}

# runc's default allowed devices (libcontainer/specconv AllowedDevices), in its order:
# (type, major, minor, access); -1 is "*".  The lead decides whether to add them.
DEFAULT_DEVICE_RULES: tuple[tuple[str, int, int, str], ...] = (
    ("c", -1, -1, "m"),    # mknod of any char device (using it still needs a rule)
    ("b", -1, -1, "m"),    # mknod of any block device
    ("c", 1, 3, "rwm"),    # /dev/null
    ("c", 1, 8, "rwm"),    # /dev/random
    ("c", 1, 7, "rwm"),    # /dev/full
    ("c", 5, 0, "rwm"),    # /dev/tty
    ("c", 1, 5, "rwm"),    # /dev/zero
    ("c", 1, 9, "rwm"),    # /dev/urandom
    ("c", 136, -1, "rwm"),  # /dev/pts/*
    ("c", 5, 2, "rwm"),    # /dev/ptmx
    ("c", 10, 200, "rwm"),  # /dev/net/tun
)


def is_optional(name: str, value: str) -> bool:
    """Writes runc skips when the file is missing (no reservation accounting, no swap)."""
    if name.endswith((".rsvd.max", ".rsvd.limit_in_bytes")):
        return True
    return name == "memory.swap.max" and value in ("max", "0")


# --- checks -------------------------------------------------------------------------
def _int(raw: dict[str, Any], key: str, field: str, low: int, high: int,
         problem: str = "") -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{field}.{key}", problem or f"must be an integer from {low} to {high}")
    return value


def _bool(raw: dict[str, Any], key: str, field: str) -> bool | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{field}.{key}", "must be true or false")
    return value


def _object(raw: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{field}.{key}" if field else key, "must be an object")
    return value


def _list(raw: dict[str, Any], key: str, field: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{field}.{key}", "must be an array")
    return value


def _memory_value(raw: dict[str, Any], key: str) -> int:
    """-1 is unlimited, 0 unset (runc skips it), anything else a byte count."""
    value = _int(raw, key, f"{R}.memory", -1, INT64_MAX, "must be -1 or a positive number")
    return value or 0


def _cpu_list(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{R}.cpu.{key}", "must be a string like 0-3,7")
    parse_cpu_list(value, f"{R}.cpu.{key}")
    return value


class _Memory:
    __slots__ = ("limit", "reservation", "swap", "kernel_tcp", "swappiness", "no_oom_killer")

    def __init__(self, raw: dict[str, Any]) -> None:
        field = f"{R}.memory"
        self.limit = _memory_value(raw, "limit")
        self.reservation = _memory_value(raw, "reservation")
        self.swap = _memory_value(raw, "swap")
        _memory_value(raw, "kernel")  # checked, then ignored as runc does (deprecated)
        self.kernel_tcp = _memory_value(raw, "kernelTCP")
        self.swappiness = _int(raw, "swappiness", field, 0, 100)
        self.no_oom_killer = bool(_bool(raw, "disableOOMKiller", field))
        _bool(raw, "useHierarchy", field)
        _bool(raw, "checkBeforeUpdate", field)
        if self.swap > 0:
            if self.limit in (0, -1):
                raise ConfigError(f"{field}.swap", "cannot be set without a memory limit")
            if self.swap < self.limit:
                raise ConfigError(f"{field}.swap",
                                  "memory+swap limit must be at least the memory limit")


class _Cpu:
    __slots__ = ("shares", "quota", "period", "burst", "rt_runtime", "rt_period", "cpus",
                 "mems", "idle")

    def __init__(self, raw: dict[str, Any]) -> None:
        field = f"{R}.cpu"
        shares = _int(raw, "shares", field, 0, UINT64_MAX)
        if shares and not MIN_SHARES <= shares <= MAX_SHARES:
            raise ConfigError(f"{field}.shares",
                              f"must be between {MIN_SHARES} and {MAX_SHARES}")
        self.shares = shares or 0
        self.quota = _int(raw, "quota", field, -(2**63), INT64_MAX) or 0
        period = _int(raw, "period", field, 0, UINT64_MAX) or 0
        if period and not 1000 <= period <= 1000000:
            raise ConfigError(f"{field}.period", "must be between 1000 and 1000000 (1ms to 1s)")
        self.period = period
        self.burst = _int(raw, "burst", field, 0, UINT64_MAX)
        if self.burst is not None and self.quota > 0 and self.burst > self.quota:
            raise ConfigError(f"{field}.burst", "must be no larger than quota")
        self.rt_runtime = _int(raw, "realtimeRuntime", field, -1, INT64_MAX) or 0
        self.rt_period = _int(raw, "realtimePeriod", field, 0, UINT64_MAX) or 0
        self.cpus = _cpu_list(raw, "cpus")
        self.mems = _cpu_list(raw, "mems")
        self.idle = _int(raw, "idle", field, 0, 1)


def _device_number(entry: dict[str, Any], key: str, field: str) -> int:
    value = _int(entry, key, field, 0, UINT32_MAX)
    if value is None:
        raise ConfigError(f"{field}.{key}", "is required")
    return value


class _Weight:
    __slots__ = ("major", "minor", "weight", "leaf")

    def __init__(self, entry: Any, field: str) -> None:
        if not isinstance(entry, dict):
            raise ConfigError(field, "must be an object")
        self.major = _device_number(entry, "major", field)
        self.minor = _device_number(entry, "minor", field)
        self.weight = _int(entry, "weight", field, MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT)
        self.leaf = _int(entry, "leafWeight", field, MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT)
        if self.weight is None and self.leaf is None:
            raise ConfigError(field, "must set weight or leafWeight")


THROTTLES = (("throttleReadBpsDevice", "rbps", "read_bps_device"),
             ("throttleWriteBpsDevice", "wbps", "write_bps_device"),
             ("throttleReadIOPSDevice", "riops", "read_iops_device"),
             ("throttleWriteIOPSDevice", "wiops", "write_iops_device"))


class _BlockIO:
    __slots__ = ("weight", "leaf", "devices", "throttles")

    def __init__(self, raw: dict[str, Any]) -> None:
        field = f"{R}.blockIO"
        self.weight = _int(raw, "weight", field, MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT)
        self.leaf = _int(raw, "leafWeight", field, MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT)
        self.devices = [_Weight(entry, f"{field}.weightDevice[{index}]")
                        for index, entry in enumerate(_list(raw, "weightDevice", field))]
        self.throttles: list[tuple[str, str, list[tuple[int, int, int]]]] = []
        for key, v2_name, v1_name in THROTTLES:
            rates = []
            for index, entry in enumerate(_list(raw, key, field)):
                where = f"{field}.{key}[{index}]"
                if not isinstance(entry, dict):
                    raise ConfigError(where, "must be an object")
                rate = _int(entry, "rate", where, 0, UINT64_MAX)
                if rate is None:
                    raise ConfigError(f"{where}.rate", "is required")
                rates.append((_device_number(entry, "major", where),
                              _device_number(entry, "minor", where), rate))
            self.throttles.append((v2_name, v1_name, rates))


def _hugepages(resources: dict[str, Any]) -> list[tuple[str, int]]:
    result = []
    for index, entry in enumerate(_list(resources, "hugepageLimits", R)):
        field = f"{R}.hugepageLimits[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(field, "must be an object")
        size = entry.get("pageSize")
        if (not isinstance(size, str) or len(size) < 3 or size[-2:] not in ("KB", "MB", "GB")
                or not size[:-2].isdigit() or not size[:-2].isascii()):
            raise ConfigError(f"{field}.pageSize", "must be a size like 64KB, 2MB or 1GB")
        limit = _int(entry, "limit", field, 0, UINT64_MAX)
        if limit is None:
            raise ConfigError(f"{field}.limit", "is required")
        result.append((size, limit))
    return result


def _rdma(resources: dict[str, Any]) -> list[str]:
    """``rdma.max`` lines, devices sorted (runc walks a Go map: no order to keep)."""
    lines = []
    for device, limits in sorted(_object(resources, "rdma", R).items()):
        field = f'{R}.rdma["{device}"]'
        if not isinstance(limits, dict):
            raise ConfigError(field, "must be an object")
        if not device or any(c.isspace() for c in device):
            raise ConfigError(field, "device name must be a non-empty word")
        handles = _int(limits, "hcaHandles", field, 0, UINT32_MAX)
        objects = _int(limits, "hcaObjects", field, 0, UINT32_MAX)
        if handles is None and objects is None:
            raise ConfigError(field, "must set hcaHandles or hcaObjects")
        line = device
        line += f" hca_handle={handles}" if handles is not None else ""
        line += f" hca_object={objects}" if objects is not None else ""
        lines.append(line)
    return lines


def _pids_max(resources: dict[str, Any]) -> str | None:
    """runtime-spec 1.3 (and runc 1.4): -1 (any negative) is "max", 0 is a real limit."""
    limit = _int(_object(resources, "pids", R), "limit", f"{R}.pids", -(2**63), INT64_MAX)
    if limit is None:
        return None
    return "max" if limit < 0 else str(limit)


def _network(resources: dict[str, Any]) -> tuple[int | None, list[str]]:
    raw = _object(resources, "network", R)
    field = f"{R}.network"
    class_id = _int(raw, "classID", field, 0, UINT32_MAX)
    lines = []
    for index, entry in enumerate(_list(raw, "priorities", field)):
        where = f"{field}.priorities[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ConfigError(f"{where}.name", "must be an interface name")
        priority = _int(entry, "priority", where, 0, UINT32_MAX)
        if priority is None:
            raise ConfigError(f"{where}.priority", "is required")
        lines.append(f"{name} {priority}")
    return class_id, lines


def check_unified_key(key: str) -> str:
    """The controller a ``unified`` key belongs to ("cgroup" for core files)."""
    field = f'{R}.unified["{key}"]'
    if "/" in key or ".." in key or "\0" in key:
        raise ConfigError(field, "must be a file name (no \"/\" or \"..\")")
    controller, dot, name = key.partition(".")
    if not dot or not controller or not name:
        raise ConfigError(field, "must look like <controller>.<name>")
    return controller


def _unified(resources: dict[str, Any]) -> dict[str, str]:
    raw = _object(resources, "unified", R)
    for key, value in raw.items():
        check_unified_key(key)
        if not isinstance(value, str):
            raise ConfigError(f'{R}.unified["{key}"]', "must be a string")
    return dict(raw)


# --- cgroup v2 --------------------------------------------------------------------
def shares_to_weight(shares: int) -> int:
    """runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000]."""
    return 0 if shares == 0 else 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """runc's ConvertBlkIOToIOWeightValue: [10, 1000] -> [1, 10000]."""
    return 0 if weight == 0 else 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int, limit: int) -> int:
    """runc's ConvertMemorySwapToCgroupV2Value: v1 memory+swap to v2 swap alone."""
    if limit == -1 and swap == 0:
        return -1  # unlimited memory means unlimited swap too, unless swap is set
    if swap in (-1, 0):
        return swap
    return swap - limit


def _v2_number(value: int) -> str:
    return "max" if value == -1 else str(value)


def _refuse_on_v2(field: str, what: str) -> ConfigError:
    return ConfigError(field, f"{what} has no cgroup v2 equivalent")


def v2_files(resources: dict[str, Any] | None) -> dict[str, str]:
    """File writes for a cgroup v2 folder, in runc's order, ``unified`` last (it wins)."""
    resources = resources or {}
    files: dict[str, str] = {}
    memory = _Memory(_object(resources, "memory", R))
    if memory.swappiness is not None:
        raise _refuse_on_v2(f"{R}.memory.swappiness", "swappiness")
    if memory.no_oom_killer:
        raise _refuse_on_v2(f"{R}.memory.disableOOMKiller", "disabling the oom killer")
    swap = swap_to_v2(memory.swap, memory.limit)
    if swap != 0 or memory.swap > 0:  # swap == limit: "0" disables swap
        files["memory.swap.max"] = _v2_number(swap)
    if memory.limit:
        files["memory.max"] = _v2_number(memory.limit)
    if memory.reservation:
        files["memory.low"] = _v2_number(memory.reservation)
    cpu = _Cpu(_object(resources, "cpu", R))
    if cpu.rt_runtime or cpu.rt_period:
        field = "realtimeRuntime" if cpu.rt_runtime else "realtimePeriod"
        raise ConfigError(f"{R}.cpu.{field}", "realtime scheduling is not supported on cgroup v2")
    if cpu.idle is not None:
        files["cpu.idle"] = str(cpu.idle)
    if cpu.shares:
        files["cpu.weight"] = str(shares_to_weight(cpu.shares))
    if cpu.quota or cpu.period:
        quota = str(cpu.quota) if cpu.quota > 0 else "max"
        files["cpu.max"] = f"{quota} {cpu.period or DEFAULT_CFS_PERIOD}"
    if cpu.burst is not None:
        files["cpu.max.burst"] = str(cpu.burst)
    if cpu.cpus:
        files["cpuset.cpus"] = cpu.cpus
    if cpu.mems:
        files["cpuset.mems"] = cpu.mems
    pids = _pids_max(resources)
    if pids is not None:
        files["pids.max"] = pids
    block = _BlockIO(_object(resources, "blockIO", R))
    if block.leaf is not None or any(d.leaf is not None for d in block.devices):
        raise _refuse_on_v2(f"{R}.blockIO.leafWeight", "leafWeight")
    if block.weight:  # the driver writes io.bfq.weight (v1 scale) instead if BFQ is there
        files["io.bfq.weight"] = str(block.weight)
        files["io.weight"] = str(blkio_weight_to_io_weight(block.weight))
    if block.devices:  # only BFQ has per-device weights on v2, with v1's scale
        files["io.bfq.weight_device"] = "\n".join(
            f"{d.major}:{d.minor} {d.weight}" for d in block.devices)
    io_max = [f"{major}:{minor} {name}={rate}"
              for name, _, rates in block.throttles for major, minor, rate in rates]
    if io_max:
        files["io.max"] = "\n".join(io_max)
    for size, limit in _hugepages(resources):
        files[f"hugetlb.{size}.max"] = str(limit)
        files[f"hugetlb.{size}.rsvd.max"] = str(limit)
    rdma = _rdma(resources)
    if rdma:
        files["rdma.max"] = "\n".join(rdma)
    class_id, priorities = _network(resources)
    if class_id is not None or priorities:
        raise _refuse_on_v2(f"{R}.network", "net_cls/net_prio")
    files.update(_unified(resources))
    return files


def v2_controllers(files: dict[str, str]) -> list[str]:
    """The controllers to enable for these writes, in first-use order ("cgroup." is core)."""
    needed: list[str] = []
    for name in files:
        controller = name.partition(".")[0]
        if controller != "cgroup" and controller not in needed:
            needed.append(controller)
    return needed


# --- cgroup v1 --------------------------------------------------------------------
def v1_files(resources: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """Writes per v1 controller, controllers in runc's subsystem order (devices aside)."""
    resources = resources or {}
    if _object(resources, "unified", R):
        raise ConfigError(f"{R}.unified", "cannot be used on cgroup v1")
    result: dict[str, dict[str, str]] = {}

    def put(controller: str, name: str, value: str) -> None:
        result.setdefault(controller, {})[name] = value

    cpu = _Cpu(_object(resources, "cpu", R))
    if cpu.cpus:
        put("cpuset", "cpuset.cpus", cpu.cpus)
    if cpu.mems:
        put("cpuset", "cpuset.mems", cpu.mems)
    memory = _Memory(_object(resources, "memory", R))
    if memory.limit:  # a fresh cgroup: limit before memsw always fits the kernel's check
        put("memory", "memory.limit_in_bytes", str(memory.limit))
    if memory.swap:
        put("memory", "memory.memsw.limit_in_bytes", str(memory.swap))
    if memory.kernel_tcp:
        put("memory", "memory.kmem.tcp.limit_in_bytes", str(memory.kernel_tcp))
    if memory.no_oom_killer:
        put("memory", "memory.oom_control", "1")
    if memory.swappiness is not None:
        put("memory", "memory.swappiness", str(memory.swappiness))
    if memory.reservation:
        put("memory", "memory.soft_limit_in_bytes", str(memory.reservation))
    if cpu.rt_period:  # runc sets these first, before any task joins
        put("cpu", "cpu.rt_period_us", str(cpu.rt_period))
    if cpu.rt_runtime:
        put("cpu", "cpu.rt_runtime_us", str(cpu.rt_runtime))
    if cpu.shares:
        put("cpu", "cpu.shares", str(cpu.shares))
    if cpu.period:
        put("cpu", "cpu.cfs_period_us", str(cpu.period))
    if cpu.burst is not None:
        put("cpu", "cpu.cfs_burst_us", str(cpu.burst))
    if cpu.quota:
        put("cpu", "cpu.cfs_quota_us", str(cpu.quota if cpu.quota > 0 else -1))
    if cpu.idle is not None:
        put("cpu", "cpu.idle", str(cpu.idle))
    pids = _pids_max(resources)
    if pids is not None:
        put("pids", "pids.max", pids)
    block = _BlockIO(_object(resources, "blockIO", R))
    if block.weight:
        put("blkio", "blkio.weight", str(block.weight))
    if block.leaf:
        put("blkio", "blkio.leaf_weight", str(block.leaf))
    weights = [f"{d.major}:{d.minor} {d.weight}" for d in block.devices if d.weight]
    leaves = [f"{d.major}:{d.minor} {d.leaf}" for d in block.devices if d.leaf]
    if weights:
        put("blkio", "blkio.weight_device", "\n".join(weights))
    if leaves:
        put("blkio", "blkio.leaf_weight_device", "\n".join(leaves))
    for _, v1_name, rates in block.throttles:
        if rates:
            put("blkio", f"blkio.throttle.{v1_name}",
                "\n".join(f"{major}:{minor} {rate}" for major, minor, rate in rates))
    for size, limit in _hugepages(resources):
        put("hugetlb", f"hugetlb.{size}.limit_in_bytes", str(limit))
        put("hugetlb", f"hugetlb.{size}.rsvd.limit_in_bytes", str(limit))
    class_id, priorities = _network(resources)
    if class_id is not None:
        put("net_cls", "net_cls.classid", str(class_id))
    if priorities:
        put("net_prio", "net_prio.ifpriomap", "\n".join(priorities))
    rdma = _rdma(resources)
    if rdma:
        put("rdma", "rdma.max", "\n".join(rdma))
    return result


def device_rule_line(kind: str, major: int, minor: int, access: str) -> str:
    """runc's CgroupString: ``c 1:3 rwm``, -1 written as ``*``."""
    def number(value: int) -> str:
        return "*" if value < 0 else str(value)

    if kind == "a":
        return f"a *:* {access}"
    return f"{kind} {number(major)}:{number(minor)} {access}"


def v1_device_rules(devices: list[Any] | None,
                    field: str = f"{R}.devices") -> list[tuple[str, str]]:
    """(``devices.allow`` | ``devices.deny``, line) in config order, as runc writes them."""
    rules = []
    for index, entry in enumerate(devices or ()):
        where = f"{field}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "must be an object")
        allow = entry.get("allow")
        if not isinstance(allow, bool):
            raise ConfigError(f"{where}.allow", "must be true or false")
        kind = entry.get("type") or "a"
        if kind not in ("a", "b", "c"):
            raise ConfigError(f"{where}.type", "must be a, b or c")
        major = _int(entry, "major", where, -1, INT64_MAX)
        minor = _int(entry, "minor", where, -1, INT64_MAX)
        access = entry.get("access") or "rwm"
        if (not isinstance(access, str) or not set(access) <= set("rwm")
                or len(set(access)) != len(access)):
            raise ConfigError(f"{where}.access", "must be made of r, w and m, each at most once")
        line = device_rule_line(kind, -1 if major is None else major,
                                -1 if minor is None else minor, access)
        rules.append(("devices.allow" if allow else "devices.deny", line))
    return rules


def default_device_rules() -> list[tuple[str, str]]:
    """``DEFAULT_DEVICE_RULES`` as writes, for the lead to append after the config's."""
    return [("devices.allow", device_rule_line(*rule)) for rule in DEFAULT_DEVICE_RULES]


def v1_controllers(files: dict[str, dict[str, str]],
                   device_rules: list[tuple[str, str]]) -> list[str]:
    needed = list(files)
    if device_rules and "devices" not in needed:
        needed.append("devices")
    return needed
