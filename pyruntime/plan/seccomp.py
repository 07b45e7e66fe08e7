"""From ``linux.seccomp`` to a checked filter description: pure tables, no system calls.

Every name the spec allows (actions, operators, architectures, flags) is
turned into the number libseccomp and the kernel use, and every rule of
config-linux.md "Seccomp" that can be checked without a kernel is checked
here, at ``create``, with the JSON path of the offending field.  What only the
host can tell (a syscall name this libseccomp does not know, an architecture
it was built without) is left to ``pyruntime.seccomp``, which builds and loads
the filter in the init.

The numbers come from libseccomp's seccomp.h (v2.6.0) and the kernel's
<linux/seccomp.h> and <linux/audit.h>; the unit tests check them against the
installed libseccomp.
"""

from __future__ import annotations

from pyruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPERM = 1
MAX_ERRNO = 4095  # the kernel caps SECCOMP_RET_ERRNO data to this
MAX_TRACE_DATA = 0xFFFF  # SECCOMP_RET_DATA: 16 bits handed to the tracer
MAX_ARGUMENT = 5  # syscalls take six arguments, 0 to 5
UINT64_MAX = (1 << 64) - 1

# SCMP_ACT_* values; ERRNO and TRACE carry 16 bits of data (errnoRet) in the low half
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_NOTIFY = 0x7FC00000
ACT_ALLOW = 0x7FFF0000
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,  # = KILL_THREAD, as in libseccomp
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
}
# The actions whose errnoRet means something; any other with an errnoRet is an error
# (config-linux.md: "When the action doesn't support an errno, the runtime MUST ... fail").
ERRNO_LIMITS: dict[str, int] = {"SCMP_ACT_ERRNO": MAX_ERRNO, "SCMP_ACT_TRACE": MAX_TRACE_DATA}

# enum scmp_compare
OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
CMP_MASKED_EQ = 7

# AUDIT_ARCH_* tokens, which libseccomp's SCMP_ARCH_* are: ELF machine | 64-bit | little-endian
_64, _LE, _N32 = 0x80000000, 0x40000000, 0x20000000
ARCHITECTURES: dict[str, int] = {
    "SCMP_ARCH_X86": 3 | _LE,
    "SCMP_ARCH_X86_64": 62 | _64 | _LE,
    "SCMP_ARCH_X32": 62 | _LE,
    "SCMP_ARCH_ARM": 40 | _LE,
    "SCMP_ARCH_AARCH64": 183 | _64 | _LE,
    "SCMP_ARCH_MIPS": 8,
    "SCMP_ARCH_MIPS64": 8 | _64,
    "SCMP_ARCH_MIPS64N32": 8 | _64 | _N32,
    "SCMP_ARCH_MIPSEL": 8 | _LE,
    "SCMP_ARCH_MIPSEL64": 8 | _64 | _LE,
    "SCMP_ARCH_MIPSEL64N32": 8 | _64 | _LE | _N32,
    "SCMP_ARCH_PPC": 20,
    "SCMP_ARCH_PPC64": 21 | _64,
    "SCMP_ARCH_PPC64LE": 21 | _64 | _LE,
    "SCMP_ARCH_S390": 22,
    "SCMP_ARCH_S390X": 22 | _64,
    "SCMP_ARCH_PARISC": 15,
    "SCMP_ARCH_PARISC64": 15 | _64,
    "SCMP_ARCH_RISCV64": 243 | _64 | _LE,
    "SCMP_ARCH_LOONGARCH64": 258 | _64 | _LE,
    "SCMP_ARCH_M68K": 4,
    "SCMP_ARCH_SH": 42 | _LE,
    "SCMP_ARCH_SHEB": 42,
}

# seccomp(2) SECCOMP_FILTER_FLAG_* bits (libseccomp sets them from filter attributes)
FLAG_TSYNC = 0x1
FLAG_LOG = 0x2
FLAG_SPEC_ALLOW = 0x4
FLAG_WAIT_KILLABLE_RECV = 0x20
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

# Syscalls the init itself makes between loading the filter and handing the notify fd
# on: a NOTIFY rule on them would wait for an agent that has no fd yet (runc and youki
# refuse "write" for the same reason; pyruntime also sends the fd with sendmsg).
NOTIFY_FORBIDDEN = ("write", "sendmsg")

_FIELD = "linux.seccomp"


class SeccompArg:
    """One ``args[]`` condition: ``op`` compares argument ``index`` with ``value``
    (for SCMP_CMP_MASKED_EQ: ``arg & value == value_two``, as runc passes them)."""

    __slots__ = ("index", "op", "value", "value_two")

    def __init__(self, index: int, op: int, value: int, value_two: int) -> None:
        self.index = index
        self.op = op
        self.value = value
        self.value_two = value_two


class SeccompRule:
    """One ``syscalls[]`` entry; ``action`` is the libseccomp action word with its data,
    ``field`` its JSON path, for errors found when the filter is built."""

    __slots__ = ("names", "action", "args", "field")

    def __init__(self, names: tuple[str, ...], action: int, args: tuple[SeccompArg, ...],
                 field: str) -> None:
        self.names = names
        self.action = action
        self.args = args
        self.field = field


class SeccompPlan:
    """``linux.seccomp``, checked; ``architectures`` and ``flags`` keep their spec
    names beside the numbers, so the applier can name what the host refuses."""

    __slots__ = ("default_action", "architectures", "flags", "listener_path",
                 "listener_metadata", "rules", "uses_notify")

    def __init__(self, default_action: int, architectures: tuple[tuple[str, int], ...],
                 flags: tuple[tuple[str, int], ...], listener_path: str | None,
                 listener_metadata: str, rules: tuple[SeccompRule, ...]) -> None:
        self.default_action = default_action
        self.architectures = architectures
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.rules = rules
        self.uses_notify = any(rule.action == ACT_NOTIFY for rule in rules)

    @property
    def flag_bits(self) -> int:
        bits = 0
        for _, bit in self.flags:
            bits |= bit
        return bits


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, "must be a string")
    return value


def _uint(value: object, field: str, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(field, "must be an unsigned integer")
    if not 0 <= value <= maximum:
        raise ConfigError(field, f"must be 0 to {maximum}")
    return value


def _list(value: object, field: str) -> list[Any]:
    """An optional array: absent and null (Go's nil slice) are empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(field, "must be an array")
    return value


def _action(name: object, errno_ret: object, field: str, errno_field: str) -> int:
    """The action word for ``name`` with ``errno_ret`` (EPERM when absent) in its data."""
    text = _string(name, field)
    base = ACTIONS.get(text)
    if base is None:
        raise ConfigError(field, f'unknown action "{text}"')
    limit = ERRNO_LIMITS.get(text)
    if limit is None:
        if errno_ret is not None:
            raise ConfigError(errno_field, f"is not supported by {text}: only "
                                           "SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno")
        return base
    return base | (EPERM if errno_ret is None else _uint(errno_ret, errno_field, limit))


def _table_entries(raw: dict[str, Any], key: str, table: dict[str, int],
                   kind: str) -> tuple[tuple[str, int], ...]:
    entries = []
    for position, name in enumerate(_list(raw.get(key), f"{_FIELD}.{key}")):
        field = f"{_FIELD}.{key}[{position}]"
        number = table.get(_string(name, field))
        if number is None:
            raise ConfigError(field, f'unknown {kind} "{name}"')
        entries.append((name, number))
    return tuple(entries)


def _argument(raw: object, field: str) -> SeccompArg:
    if not isinstance(raw, dict):
        raise ConfigError(field, "must be an object")
    for key in ("index", "value", "op"):
        if raw.get(key) is None:
            raise ConfigError(f"{field}.{key}", "is required")
    index = raw["index"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_ARGUMENT:
        raise ConfigError(f"{field}.index", f"must be 0 to {MAX_ARGUMENT}")
    op_name = _string(raw["op"], f"{field}.op")
    op = OPERATORS.get(op_name)
    if op is None:
        raise ConfigError(f"{field}.op", f'unknown operator "{op_name}"')
    value = _uint(raw["value"], f"{field}.value", UINT64_MAX)
    value_two = raw.get("valueTwo")
    value_two = 0 if value_two is None else _uint(value_two, f"{field}.valueTwo", UINT64_MAX)
    return SeccompArg(index, op, value, value_two)


def _rule(raw: object, field: str) -> SeccompRule:
    if not isinstance(raw, dict):
        raise ConfigError(field, "must be an object")
    names = _list(raw.get("names"), f"{field}.names")
    if not names:
        raise ConfigError(f"{field}.names", "must contain at least one syscall name")
    for position, name in enumerate(names):
        if not _string(name, f"{field}.names[{position}]"):
            raise ConfigError(f"{field}.names[{position}]", "must not be empty")
    if raw.get("action") is None:
        raise ConfigError(f"{field}.action", "is required")
    action = _action(raw["action"], raw.get("errnoRet"), f"{field}.action",
                     f"{field}.errnoRet")
    if action == ACT_NOTIFY:
        for position, name in enumerate(names):
            if name in NOTIFY_FORBIDDEN:
                raise ConfigError(f"{field}.names[{position}]",
                                  f'SCMP_ACT_NOTIFY cannot be used for the {name} syscall')
    args = tuple(_argument(arg, f"{field}.args[{position}]")
                 for position, arg in enumerate(_list(raw.get("args"), f"{field}.args")))
    return SeccompRule(tuple(names), action, args, field)


def plan_seccomp(raw: dict[str, Any] | None) -> SeccompPlan | None:
    """``linux.seccomp`` as a ``SeccompPlan``; ``None`` when absent (no filter).

    Keys the spec does not define (podman's ``archMap``, ``comment``,
    ``includes``...) are ignored here: the schema check decides about them.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(_FIELD, "must be an object")
    if raw.get("defaultAction") is None:
        raise ConfigError(f"{_FIELD}.defaultAction", "is required")
    default_action = _action(raw["defaultAction"], raw.get("defaultErrnoRet"),
                             f"{_FIELD}.defaultAction", f"{_FIELD}.defaultErrnoRet")
    if default_action == ACT_NOTIFY:
        raise ConfigError(f"{_FIELD}.defaultAction",
                          "SCMP_ACT_NOTIFY cannot be used as default action")
    architectures = _table_entries(raw, "architectures", ARCHITECTURES, "architecture")
    flags = _table_entries(raw, "flags", FLAGS, "flag")
    rules = tuple(_rule(entry, f"{_FIELD}.syscalls[{position}]") for position, entry
                  in enumerate(_list(raw.get("syscalls"), f"{_FIELD}.syscalls")))

    listener_path = raw.get("listenerPath") or None  # "" is Go's omitted string
    metadata = raw.get("listenerMetadata")
    if listener_path is not None:
        _string(listener_path, f"{_FIELD}.listenerPath")
        if not listener_path.startswith("/"):
            raise ConfigError(f"{_FIELD}.listenerPath", f'"{listener_path}" is not an absolute path')
    if metadata is not None:
        _string(metadata, f"{_FIELD}.listenerMetadata")
        if listener_path is None:
            raise ConfigError(f"{_FIELD}.listenerMetadata", "must not be set without listenerPath")
    plan = SeccompPlan(default_action, architectures, flags, listener_path, metadata or "",
                       rules)
    if plan.uses_notify and listener_path is None:
        first = next(rule for rule in rules if rule.action == ACT_NOTIFY)
        raise ConfigError(f"{_FIELD}.listenerPath",
                          f"is required: {first.field} uses SCMP_ACT_NOTIFY")
    return plan
