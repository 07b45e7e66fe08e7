"""``process.scheduler``, ``process.ioPriority``, ``linux.personality`` and
``process.execCPUAffinity``: names to kernel numbers, checked at create."""

from __future__ import annotations

from pyruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


class Scheduler:
    """The fields of struct sched_attr, in its order."""

    __slots__ = ("policy", "flags", "nice", "priority", "runtime", "deadline", "period")

    def __init__(self, policy: int, flags: int, nice: int, priority: int, runtime: int,
                 deadline: int, period: int) -> None:
        self.policy = policy
        self.flags = flags
        self.nice = nice
        self.priority = priority
        self.runtime = runtime
        self.deadline = deadline
        self.period = period


def _named(table: dict[str, int], name: object, field: str, what: str) -> int:
    if not isinstance(name, str) or name not in table:
        raise ConfigError(field, f"unknown {what} {name!r}")
    return table[name]


def plan_scheduler(raw: dict[str, Any] | None) -> Scheduler | None:
    if raw is None:
        return None
    field = "process.scheduler"
    policy = _named(SCHED_POLICIES, raw.get("policy"), f"{field}.policy", "policy")
    flags = 0
    for index, name in enumerate(raw.get("flags", ())):
        flags |= _named(SCHED_FLAGS, name, f"{field}.flags[{index}]", "flag")
    nice = raw.get("nice", 0)
    if not -20 <= nice <= 19:
        raise ConfigError(f"{field}.nice", "must be between -20 and 19")
    return Scheduler(policy, flags, nice, raw.get("priority", 0), raw.get("runtime", 0),
                     raw.get("deadline", 0), raw.get("period", 0))


def plan_io_priority(raw: dict[str, Any] | None) -> int | None:
    """The ioprio value: class << 13 | level."""
    if raw is None:
        return None
    field = "process.ioPriority"
    kind = _named(IOPRIO_CLASSES, raw.get("class"), f"{field}.class", "class")
    level = raw.get("priority", 0)
    if not isinstance(level, int) or not 0 <= level <= 7:
        raise ConfigError(f"{field}.priority", "must be 0 (highest) to 7 (lowest)")
    return kind << IOPRIO_CLASS_SHIFT | level


def plan_personality(raw: dict[str, Any] | None) -> int | None:
    if raw is None:
        return None
    domain = _named(PERSONALITY_DOMAINS, raw.get("domain"), "linux.personality.domain",
                    "domain")
    if raw.get("flags"):
        raise ConfigError("linux.personality.flags", "no flag values are supported")
    return domain


def parse_cpu_list(text: str, field: str) -> set[int]:
    """``0-3,7`` -> {0, 1, 2, 3, 7}, as in cpuset and execCPUAffinity."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ConfigError(field, f"{text!r} is not a cpu list like 0-3,7")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ConfigError(field, f"{text!r}: range {part} goes backwards")
        cpus.update(range(first, last + 1))
    return cpus
