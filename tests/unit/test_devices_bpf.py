"""The cgroup v2 device filter without a kernel: exact programs for a few rule sets,
then a small evaluator of the emitted bytecode (only the opcodes devices_bpf emits)
checked against an independent model of the v1 devices cgroup on many requests."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyruntime.cgroups import devices_bpf as bpf
from pyruntime.cgroups.v2 import CgroupV2
from pyruntime.errors import ConfigError
from pyruntime.plan.cgroups import default_device_rules

DENY_ALL = ("devices.deny", "a *:* rwm")
ALLOW_ALL = ("devices.allow", "a *:* rwm")
M, R, W = bpf.BPF_DEVCG_ACC_MKNOD, bpf.BPF_DEVCG_ACC_READ, bpf.BPF_DEVCG_ACC_WRITE
BLOCK, CHAR = bpf.BPF_DEVCG_DEV_BLOCK, bpf.BPF_DEVCG_DEV_CHAR


# --- a tiny eBPF interpreter: only what devices_bpf emits ------------------------------
def run_program(code: bytes, kind: int, major: int, minor: int, access: int) -> int:
    """Run the encoded program on one bpf_cgroup_dev_ctx; return r0 at exit."""
    assert len(code) % 8 == 0 and code
    ctx = struct.pack("<III", (access << 16) | kind, major, minor)
    insns = [struct.unpack("<BBhi", code[i:i + 8]) for i in range(0, len(code), 8)]
    regs: list[int | None] = [None] * 11
    regs[1] = -1  # the ctx pointer: only loads may use it
    u32, u64 = 2**32 - 1, 2**64 - 1
    pc = steps = 0
    while True:
        steps += 1
        assert steps < 10_000 and 0 <= pc < len(insns), pc
        code_byte, registers, off, imm = insns[pc]
        dst, src = registers & 0xF, registers >> 4
        pc += 1
        if code_byte == bpf.LDX_MEM_W:
            assert regs[src] == -1 and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code_byte == bpf.ALU32_AND_K:
            regs[dst] = (_value(regs, dst) & imm) & u32
        elif code_byte == bpf.ALU32_RSH_K:
            regs[dst] = (_value(regs, dst) & u32) >> imm
        elif code_byte == bpf.ALU32_MOV_K:
            regs[dst] = imm & u32
        elif code_byte == bpf.ALU32_MOV_X:
            regs[dst] = _value(regs, src) & u32
        elif code_byte == bpf.JMP_JNE_K:
            if _value(regs, dst) != imm & u64:  # imm is sign-extended to 64 bits
                pc += off
        elif code_byte == bpf.JMP_JEQ_K:
            if _value(regs, dst) == imm & u64:
                pc += off
        elif code_byte == bpf.JMP_JNE_X:
            if _value(regs, dst) != _value(regs, src):
                pc += off
        elif code_byte == bpf.JMP_EXIT:
            return _value(regs, 0)
        else:
            raise AssertionError(f"unexpected opcode {code_byte:#x}")


def _value(regs: list[int | None], index: int) -> int:
    value = regs[index]
    assert value is not None and value >= 0, f"r{index} read before a scalar was written"
    return value


# --- an independent model: the kernel's v1 devices cgroup, as a list ---------------------
def v1_model(rules: list[tuple[str, str]], kind: str, major: int, minor: int,
             access: int) -> bool:
    """security/device_cgroup.c, simplified: a behaviour plus a list of exceptions;
    allow-list mode needs one exception covering the whole request, deny-list mode
    refuses a request that any exception touches (match_exception_partial)."""
    default_allow = False  # runc starts every cgroup as an allow list
    exceptions: list[list[object]] = []
    for name, line in rules:
        allow = name == "devices.allow"
        rule_kind, numbers, letters = line.split()
        bits = sum({"r": R, "w": W, "m": M}[c] for c in letters)
        if rule_kind == "a":
            default_allow, exceptions = allow, []
            continue
        rule_major, rule_minor = (-1 if n == "*" else int(n) for n in numbers.split(":"))
        same = [e for e in exceptions if e[:3] == [rule_kind, rule_major, rule_minor]]
        if allow != default_allow:  # dev_exception_add: merge access
            if same:
                same[0][3] = int(same[0][3]) | bits  # type: ignore[call-overload]
            else:
                exceptions.append([rule_kind, rule_major, rule_minor, bits])
        else:  # dev_exception_rm
            for entry in same:
                entry[3] = int(entry[3]) & ~bits  # type: ignore[call-overload]
            exceptions = [e for e in exceptions if e[3]]

    def covers(entry: list[object]) -> bool:
        return (entry[0] == kind and entry[1] in (-1, major) and entry[2] in (-1, minor))

    if default_allow:
        return not any(covers(e) and int(e[3]) & access for e in exceptions)  # type: ignore
    return any(covers(e) and access & ~int(e[3]) == 0 for e in exceptions)  # type: ignore


def verdict(rules: list[tuple[str, str]], kind: str, major: int, minor: int, access: int) -> bool:
    code = bpf.encode(bpf.build_program(rules))
    return run_program(code, {"b": BLOCK, "c": CHAR}[kind], major, minor, access) == 1


# --- exact programs ------------------------------------------------------------------------
def test_no_rules_is_prologue_and_deny() -> None:
    program = bpf.build_program([])
    assert len(program) == 8
    assert [i.code for i in program[:6]] == [bpf.LDX_MEM_W, bpf.ALU32_AND_K, bpf.LDX_MEM_W,
                                             bpf.ALU32_RSH_K, bpf.LDX_MEM_W, bpf.LDX_MEM_W]
    assert program[6] == bpf.Insn(bpf.ALU32_MOV_K, 0, imm=0)
    assert program[7] == bpf.Insn(bpf.JMP_EXIT)


def test_allow_all_is_accept() -> None:
    program = bpf.build_program([ALLOW_ALL])
    assert len(program) == 8 and program[6] == bpf.Insn(bpf.ALU32_MOV_K, 0, imm=1)


def test_runc_default_list_matches_runcs_program() -> None:
    """runc's TestDeviceFilter_BuiltInAllowList: 64 instructions, blocks in its order."""
    program = bpf.build_program([DENY_ALL, *default_device_rules()])
    assert len(program) == 64
    # block 0: b *:* m -> type check, 3 access instructions, mov, exit
    assert program[6] == bpf.Insn(bpf.JMP_JNE_K, 2, off=5, imm=BLOCK)
    assert program[7] == bpf.Insn(bpf.ALU32_MOV_X, 1, 3)
    assert program[8] == bpf.Insn(bpf.ALU32_AND_K, 1, imm=M)
    assert program[9] == bpf.Insn(bpf.JMP_JNE_X, 1, 3, off=2)
    assert program[12] == bpf.Insn(bpf.JMP_JNE_K, 2, off=5, imm=CHAR)
    # block 2: c 1:3 rwm -> type, major, minor, each jumping past the block
    assert program[18:23] == [bpf.Insn(bpf.JMP_JNE_K, 2, off=4, imm=CHAR),
                              bpf.Insn(bpf.JMP_JNE_K, 4, off=3, imm=1),
                              bpf.Insn(bpf.JMP_JNE_K, 5, off=2, imm=3),
                              bpf.Insn(bpf.ALU32_MOV_K, 0, imm=1), bpf.Insn(bpf.JMP_EXIT)]
    # the last exception: c 136:* rwm (no minor test), then the default: deny
    assert program[58:64] == [bpf.Insn(bpf.JMP_JNE_K, 2, off=3, imm=CHAR),
                              bpf.Insn(bpf.JMP_JNE_K, 4, off=2, imm=136),
                              bpf.Insn(bpf.ALU32_MOV_K, 0, imm=1), bpf.Insn(bpf.JMP_EXIT),
                              bpf.Insn(bpf.ALU32_MOV_K, 0, imm=0), bpf.Insn(bpf.JMP_EXIT)]
    assert len(bpf.encode(program)) == 64 * 8


def test_deny_list_block_matches_on_any_shared_access_bit() -> None:
    program = bpf.build_program([ALLOW_ALL, ("devices.deny", "b 8:0 w")])
    assert len(program) == 6 + 8 + 2  # type, 3 for access, major, minor, mov, exit
    assert program[9] == bpf.Insn(bpf.JMP_JEQ_K, 1, off=4, imm=0)
    assert program[12] == bpf.Insn(bpf.ALU32_MOV_K, 0, imm=0)
    assert program[14] == bpf.Insn(bpf.ALU32_MOV_K, 0, imm=1)
    rules = [ALLOW_ALL, ("devices.deny", "b 8:0 w")]
    assert not verdict(rules, "b", 8, 0, R | W) and verdict(rules, "b", 8, 0, R)


def test_weird_order_follows_the_reset() -> None:
    """runc's TestDeviceFilter_Weird: rules before an ``a`` rule are forgotten."""
    rules = [("devices.deny", "b 8:1 rwm"), ALLOW_ALL, ("devices.deny", "b 8:2 rwm")]
    assert len(bpf.build_program(rules)) == 13
    assert verdict(rules, "b", 8, 1, R) and not verdict(rules, "b", 8, 2, R)


def test_encoding_is_little_endian_with_dst_in_the_low_nibble() -> None:
    assert bpf.Insn(bpf.ALU32_MOV_X, 1, 3).encode() == bytes([0xBC, 0x31, 0, 0, 0, 0, 0, 0])
    assert bpf.Insn(bpf.JMP_JNE_K, 4, off=3, imm=136).encode() == \
        bytes([0x55, 0x04, 3, 0, 136, 0, 0, 0])
    assert bpf.Insn(bpf.JMP_JNE_K, 4, imm=2**32 - 1).encode()[4:] == b"\xff\xff\xff\xff"


@pytest.mark.parametrize("line", ["c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c 1:3 rwx",
                                  f"c {2**32}:1 r"])
def test_malformed_rules_are_config_errors(line: str) -> None:
    with pytest.raises(ConfigError, match="linux.resources.devices"):
        bpf.build_program([("devices.allow", line)])


def test_hole_in_a_wildcard_is_refused() -> None:
    with pytest.raises(ConfigError, match="punch a hole"):
        bpf.build_program([DENY_ALL, ("devices.allow", "c 1:* r"),
                           ("devices.deny", "c 1:3 r")])


def test_semantics_of_the_default_list_with_a_config_device() -> None:
    rules = [DENY_ALL, *default_device_rules(), ("devices.allow", "c 42:7 rwm")]
    for access in (R, W, R | W, M):
        assert verdict(rules, "c", 1, 3, access)  # /dev/null
        assert verdict(rules, "c", 42, 7, access)
        assert verdict(rules, "c", 136, 9, access)  # /dev/pts/9
    assert verdict(rules, "c", 42, 0, M) and verdict(rules, "b", 8, 0, M)  # mknod of any
    assert not verdict(rules, "c", 42, 0, R) and not verdict(rules, "b", 8, 0, R | W)
    assert not verdict(rules, "c", 1, 1, R)  # /dev/mem


# --- the evaluator against the model ----------------------------------------------------
RULE = st.tuples(st.sampled_from(["devices.allow", "devices.deny"]),
                 st.sampled_from(["a", "b", "c", "c"]),
                 st.sampled_from([-1, 1, 8, 136]), st.sampled_from([-1, 0, 3, 5]),
                 st.sets(st.sampled_from("rwm"), min_size=1))
REQUEST = st.tuples(st.sampled_from(["b", "c"]), st.sampled_from([1, 8, 136, 4095]),
                    st.sampled_from([0, 3, 5, 2**20 - 1]),
                    st.sampled_from([M, R, W, R | W, R | M, R | W | M]))


def _line(rule: tuple[str, str, int, int, set[str]]) -> tuple[str, str]:
    name, kind, major, minor, access = rule
    numbers = ":".join("*" if n < 0 else str(n) for n in (major, minor))
    return name, f"{kind} {numbers} {''.join(c for c in 'rwm' if c in access)}"


@settings(max_examples=400, deadline=None)
@given(st.lists(RULE, max_size=8), st.lists(REQUEST, min_size=1, max_size=12))
def test_program_agrees_with_the_v1_model(rules: list[tuple[str, str, int, int, set[str]]],
                                          requests: list[tuple[str, int, int, int]]) -> None:
    lines = [_line(rule) for rule in rules]
    try:
        code = bpf.encode(bpf.build_program(lines))
    except ConfigError as exc:  # a partial removal v1 would silently ignore
        assert "punch a hole" in str(exc)
        return
    for kind, major, minor, access in requests:
        got = run_program(code, {"b": BLOCK, "c": CHAR}[kind], major, minor, access) == 1
        assert got == v1_model(lines, kind, major, minor, access), (lines, kind, major, minor,
                                                                    access)


# --- the driver: build before any system call --------------------------------------------
def test_v2_apply_attaches_after_the_limits(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "pids.max").write_text("")
    manager = CgroupV2(str(tmp_path), "c")
    calls: list[tuple[str, int, str]] = []
    manager.attach_program = lambda folder, code, license: calls.append(
        (folder, len(code), license))
    manager.device_rules = [DENY_ALL, *default_device_rules()]
    manager.apply({"pids.max": "5"})
    assert (tmp_path / "c" / "pids.max").read_text() == "5"
    assert calls == [(str(tmp_path / "c"), 64 * 8, "Apache")]


def test_v2_bad_rule_fails_before_attaching(tmp_path: Path) -> None:
    manager = CgroupV2(str(tmp_path), "c")
    manager.attach_program = lambda *args: pytest.fail("attached a program for bad rules")
    with pytest.raises(ConfigError):
        manager.apply_device_rules([("devices.allow", "q 1:1 r")])


def test_v2_without_rules_attaches_nothing(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    manager = CgroupV2(str(tmp_path), "c")
    manager.attach_program = lambda *args: pytest.fail("no rules were given")
    manager.apply({})
