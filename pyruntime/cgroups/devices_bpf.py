"""Device rules -> a BPF_PROG_TYPE_CGROUP_DEVICE program (cgroup v2 has no devices.allow).

Pure: no system call here, so the program can be checked without root
(``pyruntime.syscalls._bpf`` loads and attaches it).  The rules are the list
the v1 path writes, ``("devices.allow" | "devices.deny", "c 1:3 rwm")`` in
order: the config's, runc's default allow list, one allow per linux.devices.

**Semantics** are runc's (libcontainer/cgroups/devices): the rules are first
replayed through an emulator of the v1 devices cgroup, so v2 behaves as v1
would.  The emulator starts in allow-list mode (default deny, as runc's zero
value does, with or without a leading ``a *:* rwm`` deny); an ``a`` rule resets
it (allow: default allow, deny: default deny) and drops the exceptions; any
other rule adds an exception (when its action differs from the default) or
removes access from the exception with the same (type, major, minor).  A
removal that would punch a hole in a wildcard exception (deny ``c 1:3 r``
after allow ``c 1:* r``) is refused, as runc refuses it: v1 ignores it silently.

What remains is a default action plus exceptions that all have the *other*
action, so the order of the blocks does not matter (runc sorts them by major,
minor, type, wildcards first; so do we).  One deliberate difference from runc:
a *deny* exception matches a request that shares any access bit with it (v1's
match_exception_partial), where runc's program asks for the request to be a
subset of the rule's access, so an O_RDWR open slipped past a ``w`` deny.

**Program shape** (registers: r1 = ctx, then scratch; r0 = verdict)::

      0  r2 = *(u32 *)(r1 + 0)         access_type
      1  w2 &= 0xffff                   r2 = device type (1 block, 2 char)
      2  r3 = *(u32 *)(r1 + 0)
      3  w3 >>= 16                      r3 = access (1 mknod, 2 read, 4 write)
      4  r4 = *(u32 *)(r1 + 4)          r4 = major
      5  r5 = *(u32 *)(r1 + 8)          r5 = minor
    block i (one per exception):
         if r2 != TYPE goto block i+1
         [w1 = w3; w1 &= ACCESS;        only when ACCESS is not rwm:
          allow: if r1 != r3 goto i+1   the request is within ACCESS
          deny:  if r1 == 0 goto i+1]   the request touches ACCESS
         [if r4 != MAJOR goto i+1]      not for a wildcard major
         [if r5 != MINOR goto i+1]      not for a wildcard minor
         w0 = ACTION; exit
    final block:
         w0 = DEFAULT; exit

The kernel ANDs the verdicts of every program attached on the way up
(BPF_F_ALLOW_MULTI), so the host's own device policy still holds.
"""

from __future__ import annotations

import struct

from pyruntime.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

FIELD = "linux.resources.devices"
LICENSE = "Apache"  # runc's: the kernel only needs a string it knows
UINT32_MAX = 2**32 - 1

# struct bpf_cgroup_dev_ctx
BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE = 1, 2, 4
DEVICE_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
ALL_ACCESS = 7

# The opcodes emitted (linux/bpf.h, class | op | source)
LDX_MEM_W = 0x61     # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54   # BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74   # BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_K = 0xB4   # BPF_ALU | BPF_MOV | BPF_K
ALU32_MOV_X = 0xBC   # BPF_ALU | BPF_MOV | BPF_X
JMP_JNE_K = 0x55     # BPF_JMP | BPF_JNE | BPF_K (64-bit compare, imm sign-extended)
JMP_JNE_X = 0x5D     # BPF_JMP | BPF_JNE | BPF_X
JMP_JEQ_K = 0x15     # BPF_JMP | BPF_JEQ | BPF_K
JMP_EXIT = 0x95      # BPF_JMP | BPF_EXIT
PROLOGUE_LENGTH = 6

Key = tuple[str, int, int]  # (type, major, minor); -1 is the wildcard


class Insn:
    """One eBPF instruction (struct bpf_insn): 8 bytes once encoded."""

    __slots__ = ("code", "dst", "src", "off", "imm")

    def __init__(self, code: int, dst: int = 0, src: int = 0, off: int = 0,
                 imm: int = 0) -> None:
        self.code, self.dst, self.src, self.off, self.imm = code, dst, src, off, imm

    def __repr__(self) -> str:
        return f"Insn({self.code:#04x}, dst={self.dst}, src={self.src}, off={self.off}, " \
               f"imm={self.imm})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Insn) and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    def encode(self) -> bytes:
        """Little-endian: code, dst in the low nibble and src in the high one, off, imm."""
        # a u32 above 2**31 goes as its s32 bits; the kernel sign-extends it, so such a
        # major/minor matches nothing, as no real one exists (majors < 2**12, minors < 2**20)
        imm = self.imm - 2**32 if self.imm > 0x7FFFFFFF else self.imm
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, imm)


class Rule:
    """One parsed rule: ``allow``, ``kind`` (a, b, c), major/minor (-1 = *), access bits."""

    __slots__ = ("allow", "kind", "major", "minor", "access")

    def __init__(self, allow: bool, kind: str, major: int, minor: int, access: int) -> None:
        self.allow, self.kind, self.major, self.minor, self.access = (allow, kind, major, minor,
                                                                      access)

    def __repr__(self) -> str:
        return f"Rule({self.allow}, {self.kind!r}, {self.major}, {self.minor}, {self.access})"


def access_bits(text: str) -> int:
    bits = 0
    for letter in text:
        if letter not in ACCESS_BITS:
            raise ConfigError(FIELD, f"unknown device access {letter!r}")
        bits |= ACCESS_BITS[letter]
    return bits


def access_text(bits: int) -> str:
    return "".join(letter for letter in "rwm" if bits & ACCESS_BITS[letter])


def parse_rule(name: str, line: str) -> Rule:
    """``("devices.allow", "c 1:* rwm")`` (what ``plan.cgroups.v1_device_rules`` makes)."""
    if name not in ("devices.allow", "devices.deny"):
        raise ConfigError(FIELD, f"unknown device rule file {name!r}")
    try:
        kind, numbers, access = line.split()
        major_text, minor_text = numbers.split(":")
        major, minor = (-1 if text == "*" else int(text) for text in (major_text, minor_text))
    except ValueError as exc:
        raise ConfigError(FIELD, f"malformed device rule {line!r}") from exc
    if kind not in ("a", "b", "c"):
        raise ConfigError(FIELD, f"invalid device type {kind!r}")
    for number, what in ((major, "major"), (minor, "minor")):
        if number < -1 or number > UINT32_MAX:
            raise ConfigError(FIELD, f"invalid {what} {number} (beyond 32 bits)")
    return Rule(name == "devices.allow", kind, major, minor, access_bits(access))


class Emulator:
    """runc's emulator of a v1 devices cgroup: a default and exceptions to it."""

    __slots__ = ("default_allow", "exceptions")

    def __init__(self) -> None:
        self.default_allow = False  # runc's zero value: an allow list
        self.exceptions: dict[Key, int] = {}

    def apply(self, rule: Rule) -> None:
        if rule.kind == "a":  # whatever the numbers and access say: a reset
            self.default_allow, self.exceptions = rule.allow, {}
            return
        key = (rule.kind, rule.major, rule.minor)
        if rule.allow != self.default_allow:
            self.exceptions[key] = self.exceptions.get(key, 0) | rule.access
            return
        for partial in ((rule.kind, -1, rule.minor), (rule.kind, rule.major, -1),
                        (rule.kind, -1, -1)):
            if partial != key and self.exceptions.get(partial, 0) & rule.access:
                verb = "allow" if rule.allow else "deny"
                raise ConfigError(FIELD, f"cannot {verb} {_text(key, rule.access)} after "
                                         f"{_text(partial, self.exceptions[partial])}: cgroup v1 "
                                         "cannot punch a hole in a wildcard rule")
        left = self.exceptions.get(key, 0) & ~rule.access
        if left:
            self.exceptions[key] = left
        else:
            self.exceptions.pop(key, None)

    def sorted_exceptions(self) -> list[tuple[Key, int]]:
        """runc's orderedEntries: by major, minor, type (wildcards, -1, first)."""
        return sorted(self.exceptions.items(), key=lambda item: (item[0][1], item[0][2],
                                                                 item[0][0]))


def _text(key: Key, access: int) -> str:
    kind, major, minor = key
    numbers = ":".join("*" if value < 0 else str(value) for value in (major, minor))
    return f"{kind} {numbers} {access_text(access)}"


def emulate(rules: Iterable[tuple[str, str]]) -> Emulator:
    emulator = Emulator()
    for name, line in rules:
        emulator.apply(parse_rule(name, line))
    return emulator


def build_program(rules: Iterable[tuple[str, str]]) -> list[Insn]:
    """The program for ``rules`` (ConfigError on a rule v1 could not express)."""
    emulator = emulate(rules)
    action = 0 if emulator.default_allow else 1  # what an exception says
    program = [Insn(LDX_MEM_W, 2, 1, 0), Insn(ALU32_AND_K, 2, imm=0xFFFF),
               Insn(LDX_MEM_W, 3, 1, 0), Insn(ALU32_RSH_K, 3, imm=16),
               Insn(LDX_MEM_W, 4, 1, 4), Insn(LDX_MEM_W, 5, 1, 8)]
    for (kind, major, minor), access in emulator.sorted_exceptions():
        program += _block(kind, major, minor, access, action)
    program += [Insn(ALU32_MOV_K, 0, imm=1 if emulator.default_allow else 0), Insn(JMP_EXIT)]
    return program


def _block(kind: str, major: int, minor: int, access: int, action: int) -> list[Insn]:
    """One exception: every test that fails jumps to the next block."""
    insns = [Insn(JMP_JNE_K, 2, imm=DEVICE_TYPES[kind])]
    if access != ALL_ACCESS:
        insns += [Insn(ALU32_MOV_X, 1, 3), Insn(ALU32_AND_K, 1, imm=access),
                  Insn(JMP_JNE_X, 1, 3) if action else Insn(JMP_JEQ_K, 1, imm=0)]
    if major >= 0:
        insns.append(Insn(JMP_JNE_K, 4, imm=major))
    if minor >= 0:
        insns.append(Insn(JMP_JNE_K, 5, imm=minor))
    insns += [Insn(ALU32_MOV_K, 0, imm=action), Insn(JMP_EXIT)]
    for index, insn in enumerate(insns):
        if insn.code in (JMP_JNE_K, JMP_JNE_X, JMP_JEQ_K):
            insn.off = len(insns) - index - 1  # relative to the next instruction
    return insns


def encode(program: Iterable[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in program)
