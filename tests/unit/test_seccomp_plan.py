"""pyruntime.plan.seccomp: the tables and every rule of ``linux.seccomp`` (no root).

Each table is checked against a source that does not come from this code: the
kernel's uapi headers (<linux/seccomp.h>, <linux/audit.h>, <linux/elf-em.h>)
and the installed libseccomp, because a wrong number here loads a filter that
allows what the profile denies (or kills what it allows).
"""

from __future__ import annotations

import copy
import ctypes
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyruntime.errors import ConfigError
from pyruntime.plan import seccomp as s
from pyruntime.plan.seccomp import plan_seccomp

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
UAPI = Path("/usr/include/linux")
# podman's default capabilities (containers.conf), which decide its profile's includes
PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
               "CAP_SETUID", "CAP_SYS_CHROOT"]


def _header_defines(*names: str) -> dict[str, int]:
    """``#define NAME <integer expression>`` lines of uapi headers, references resolved."""
    text = "\n".join((UAPI / name).read_text() for name in names).replace("\\\n", " ")
    raw = dict(re.findall(r"^#define\s+(\w+)\s+([^/\n]+?)\s*(?:/\*.*)?$", text, re.M))
    values: dict[str, int] = {}

    def value(name: str, depth: int = 0) -> int | None:
        expression = raw.get(name)
        if expression is None or depth > 10 or not re.fullmatch(r"[\w\s|&~()<>+-]+", expression):
            return None
        expression = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)U?L?L?\b", r"\1", expression)
        parts = []
        for token in re.split(r"(\b[A-Za-z_]\w*\b)", expression):
            if re.fullmatch(r"[A-Za-z_]\w*", token):
                resolved = value(token, depth + 1)
                if resolved is None:
                    return None
                token = str(resolved)
            parts.append(token)
        try:
            return int(eval("".join(parts), {"__builtins__": {}}))  # noqa: S307 - header text
        except (SyntaxError, TypeError, ValueError):
            return None

    for name in raw:
        found = value(name)
        if found is not None:
            values[name] = found
    return values


needs_uapi = pytest.mark.skipif(not (UAPI / "seccomp.h").exists(),
                                reason="needs the kernel headers (linux-libc-dev)")


# --- tables --------------------------------------------------------------------------
@needs_uapi
def test_actions_match_the_kernel() -> None:
    kernel = _header_defines("seccomp.h")
    expected = {"SCMP_ACT_KILL": "SECCOMP_RET_KILL_THREAD",
                "SCMP_ACT_KILL_THREAD": "SECCOMP_RET_KILL_THREAD",
                "SCMP_ACT_KILL_PROCESS": "SECCOMP_RET_KILL_PROCESS",
                "SCMP_ACT_TRAP": "SECCOMP_RET_TRAP", "SCMP_ACT_ERRNO": "SECCOMP_RET_ERRNO",
                "SCMP_ACT_TRACE": "SECCOMP_RET_TRACE", "SCMP_ACT_ALLOW": "SECCOMP_RET_ALLOW",
                "SCMP_ACT_LOG": "SECCOMP_RET_LOG", "SCMP_ACT_NOTIFY": "SECCOMP_RET_USER_NOTIF"}
    assert {name: kernel[macro] for name, macro in expected.items()} == s.ACTIONS
    assert set(s.ERRNO_LIMITS) == {"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"}
    assert s.ERRNO_LIMITS["SCMP_ACT_TRACE"] == kernel["SECCOMP_RET_DATA"]


@needs_uapi
def test_flags_match_the_kernel() -> None:
    kernel = _header_defines("seccomp.h")
    assert s.FLAGS == {name: kernel[name] for name in s.FLAGS}
    assert len(s.FLAGS) == 4


@needs_uapi
def test_architectures_match_the_kernel() -> None:
    kernel = _header_defines("audit.h", "elf-em.h")
    audit_name = {"X86": "I386", "SH": "SHEL", "SHEB": "SH"}
    for name, token in s.ARCHITECTURES.items():
        short = name.removeprefix("SCMP_ARCH_")
        if short == "X32":  # libseccomp's: the x86_64 machine, without the 64-bit bit
            assert token == kernel["AUDIT_ARCH_X86_64"] & ~kernel["__AUDIT_ARCH_64BIT"]
            continue
        assert token == kernel[f"AUDIT_ARCH_{audit_name.get(short, short)}"], name
    assert len(s.ARCHITECTURES) == 23


def _libseccomp() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("needs libseccomp2")
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    return lib


def test_architectures_match_libseccomp() -> None:
    lib = _libseccomp()
    checked = 0
    for name, token in s.ARCHITECTURES.items():
        resolved = lib.seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode())
        if resolved:  # 0: this libseccomp predates the architecture (2.5 lacks sh, m68k...)
            assert resolved == token, name
            checked += 1
    assert checked >= 19


def test_operators_are_libseccomp_enum() -> None:
    assert list(s.OPERATORS.values()) == list(range(1, 8))
    assert s.OPERATORS["SCMP_CMP_MASKED_EQ"] == s.CMP_MASKED_EQ


# --- planning ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(s.ACTIONS))
def test_every_action(name: str) -> None:
    default = "SCMP_ACT_LOG" if name == "SCMP_ACT_NOTIFY" else name
    raw: dict[str, Any] = {"defaultAction": default, "listenerPath": "/run/agent.sock",
                           "syscalls": [{"names": ["mkdir"], "action": name}]}
    plan = plan_seccomp(raw)
    assert plan is not None
    data = s.EPERM if name in s.ERRNO_LIMITS else 0
    assert plan.rules[0].action == s.ACTIONS[name] | data
    assert plan.default_action == s.ACTIONS[default] | (s.EPERM if default in s.ERRNO_LIMITS else 0)
    assert plan.uses_notify == (name == "SCMP_ACT_NOTIFY")
    assert plan.rules[0].field == "linux.seccomp.syscalls[0]"


@pytest.mark.parametrize("action", ["SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"])
def test_errno_ret(action: str) -> None:
    plan = plan_seccomp({"defaultAction": action, "defaultErrnoRet": 38,
                         "syscalls": [{"names": ["a"], "action": action, "errnoRet": 0},
                                      {"names": ["b"], "action": action, "errnoRet": 4095}]})
    assert plan is not None
    assert plan.default_action == s.ACTIONS[action] | 38
    assert [rule.action for rule in plan.rules] == [s.ACTIONS[action], s.ACTIONS[action] | 4095]


def test_full_plan() -> None:
    raw = {"defaultAction": "SCMP_ACT_ERRNO",
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
           "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
           "listenerPath": "/run/a.sock", "listenerMetadata": "meta",
           "syscalls": [{"names": ["getpid", "getppid"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 5, "value": 2**64 - 1, "op": "SCMP_CMP_GE"},
                                  {"index": 0, "value": 3, "valueTwo": 1,
                                   "op": "SCMP_CMP_MASKED_EQ"}]},
                        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": None}]}
    plan = plan_seccomp(raw)
    assert plan is not None
    assert plan.architectures == (("SCMP_ARCH_X86_64", 0xC000003E), ("SCMP_ARCH_X86", 0x40000003))
    assert plan.flags == (("SECCOMP_FILTER_FLAG_TSYNC", 1), ("SECCOMP_FILTER_FLAG_LOG", 2))
    assert plan.flag_bits == 3
    assert (plan.listener_path, plan.listener_metadata, plan.uses_notify) == \
        ("/run/a.sock", "meta", False)
    first, second = plan.rules
    assert first.names == ("getpid", "getppid")
    assert [(a.index, a.op, a.value, a.value_two) for a in first.args] == \
        [(5, 5, 2**64 - 1, 0), (0, 7, 3, 1)]
    assert second.args == ()
    assert raw["syscalls"][1]["args"] is None  # the raw config is not modified


def test_absent_and_minimal() -> None:
    assert plan_seccomp(None) is None
    plan = plan_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": ""})
    assert plan is not None
    assert (plan.rules, plan.architectures, plan.flags, plan.listener_path) == ((), (), (), None)


BASE: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


SYSCALL0 = ("syscalls", 0)
ARG0 = ("syscalls", 0, "args", 0)
ERRORS = [
    (("defaultAction",), KeyError, "linux.seccomp.defaultAction", "is required"),
    (("defaultAction",), "SCMP_ACT_FOO", "linux.seccomp.defaultAction",
     'unknown action "SCMP_ACT_FOO"'),
    (("defaultAction",), 1, "linux.seccomp.defaultAction", "must be a string"),
    (("defaultAction",), "SCMP_ACT_NOTIFY", "linux.seccomp.defaultAction",
     "SCMP_ACT_NOTIFY cannot be used as default action"),
    (("defaultErrnoRet",), 1, "linux.seccomp.defaultErrnoRet",
     "is not supported by SCMP_ACT_ALLOW: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno"),
    (("architectures",), ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"], "linux.seccomp.architectures[1]",
     'unknown architecture "SCMP_ARCH_VAX"'),
    (("architectures",), "SCMP_ARCH_X86_64", "linux.seccomp.architectures", "must be an array"),
    (("flags",), ["SECCOMP_FILTER_FLAG_NEW_LISTENER"], "linux.seccomp.flags[0]",
     'unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"'),
    (("flags",), [7], "linux.seccomp.flags[0]", "must be a string"),
    (("listenerPath",), "run/agent.sock", "linux.seccomp.listenerPath",
     '"run/agent.sock" is not an absolute path'),
    (("listenerPath",), 5, "linux.seccomp.listenerPath", "must be a string"),
    (("listenerMetadata",), "m", "linux.seccomp.listenerMetadata",
     "must not be set without listenerPath"),
    (("syscalls",), {}, "linux.seccomp.syscalls", "must be an array"),
    (SYSCALL0, "mkdir", "linux.seccomp.syscalls[0]", "must be an object"),
    ((*SYSCALL0, "names"), [], "linux.seccomp.syscalls[0].names",
     "must contain at least one syscall name"),
    ((*SYSCALL0, "names"), KeyError, "linux.seccomp.syscalls[0].names",
     "must contain at least one syscall name"),
    ((*SYSCALL0, "names"), ["mkdir", ""], "linux.seccomp.syscalls[0].names[1]",
     "must not be empty"),
    ((*SYSCALL0, "names"), ["mkdir", None], "linux.seccomp.syscalls[0].names[1]",
     "must be a string"),
    ((*SYSCALL0, "action"), KeyError, "linux.seccomp.syscalls[0].action", "is required"),
    ((*SYSCALL0, "action"), "SCMP_ACT_FOO", "linux.seccomp.syscalls[0].action",
     'unknown action "SCMP_ACT_FOO"'),
    ((*SYSCALL0, "errnoRet"), 4096, "linux.seccomp.syscalls[0].errnoRet", "must be 0 to 4095"),
    ((*SYSCALL0, "errnoRet"), -1, "linux.seccomp.syscalls[0].errnoRet", "must be 0 to 4095"),
    ((*SYSCALL0, "errnoRet"), True, "linux.seccomp.syscalls[0].errnoRet",
     "must be an unsigned integer"),
    ((*SYSCALL0, "args"), {"index": 0}, "linux.seccomp.syscalls[0].args", "must be an array"),
    (ARG0, 3, "linux.seccomp.syscalls[0].args[0]", "must be an object"),
    ((*ARG0, "index"), 6, "linux.seccomp.syscalls[0].args[0].index", "must be 0 to 5"),
    ((*ARG0, "index"), -1, "linux.seccomp.syscalls[0].args[0].index", "must be 0 to 5"),
    ((*ARG0, "index"), "0", "linux.seccomp.syscalls[0].args[0].index", "must be 0 to 5"),
    ((*ARG0, "index"), KeyError, "linux.seccomp.syscalls[0].args[0].index", "is required"),
    ((*ARG0, "value"), KeyError, "linux.seccomp.syscalls[0].args[0].value", "is required"),
    ((*ARG0, "value"), 2**64, "linux.seccomp.syscalls[0].args[0].value",
     f"must be 0 to {2**64 - 1}"),
    ((*ARG0, "value"), 1.5, "linux.seccomp.syscalls[0].args[0].value",
     "must be an unsigned integer"),
    ((*ARG0, "valueTwo"), -2, "linux.seccomp.syscalls[0].args[0].valueTwo",
     f"must be 0 to {2**64 - 1}"),
    ((*ARG0, "op"), KeyError, "linux.seccomp.syscalls[0].args[0].op", "is required"),
    ((*ARG0, "op"), "SCMP_CMP_XOR", "linux.seccomp.syscalls[0].args[0].op",
     'unknown operator "SCMP_CMP_XOR"'),
]


@pytest.mark.parametrize(("path", "value", "field", "problem"), ERRORS,
                         ids=[f"{e[2]}:{e[3][:24]}" for e in ERRORS])
def test_errors(path: tuple[Any, ...], value: Any, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_seccomp(_with(path, value))
    assert (caught.value.field, caught.value.problem) == (field, problem)
    assert str(caught.value) == f"config.json: {field}: {problem}"


def test_errno_ret_on_actions_without_errno() -> None:
    for name in sorted(set(s.ACTIONS) - set(s.ERRNO_LIMITS) - {"SCMP_ACT_NOTIFY"}):
        raw = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"},
                            {"names": ["b"], "action": name, "errnoRet": 1}]}
        with pytest.raises(ConfigError) as caught:
            plan_seccomp(raw)
        assert caught.value.field == "linux.seccomp.syscalls[1].errnoRet"
        assert caught.value.problem.startswith(f"is not supported by {name}: ")


def test_trace_data_range() -> None:
    plan = plan_seccomp({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 65535})
    assert plan is not None and plan.default_action == s.ACT_TRACE | 0xFFFF
    with pytest.raises(ConfigError, match=r"defaultErrnoRet: must be 0 to 65535"):
        plan_seccomp({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 65536})


def test_notify_needs_a_listener() -> None:
    raw: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW",
                           "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"},
                                        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    with pytest.raises(ConfigError) as caught:
        plan_seccomp(raw)
    assert (caught.value.field, caught.value.problem) == \
        ("linux.seccomp.listenerPath", "is required: linux.seccomp.syscalls[1] uses SCMP_ACT_NOTIFY")
    plan = plan_seccomp({**raw, "listenerPath": "/run/agent.sock"})
    assert plan is not None and plan.uses_notify


@pytest.mark.parametrize("name", s.NOTIFY_FORBIDDEN)
def test_notify_refused_for_the_runtimes_own_syscalls(name: str) -> None:
    raw = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
           "syscalls": [{"names": ["mkdir", name], "action": "SCMP_ACT_NOTIFY"}]}
    with pytest.raises(ConfigError) as caught:
        plan_seccomp(raw)
    assert (caught.value.field, caught.value.problem) == \
        ("linux.seccomp.syscalls[0].names[1]", f"SCMP_ACT_NOTIFY cannot be used for the {name} syscall")
    raw["syscalls"][0]["action"] = "SCMP_ACT_ERRNO"  # any other action is fine
    assert plan_seccomp(raw) is not None


def test_not_an_object() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_seccomp([])  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.problem) == ("linux.seccomp", "must be an object")


# --- the podman profile ----------------------------------------------------------------
def podman_to_oci(profile: dict[str, Any], arch: str = "amd64",
                  caps: list[str] = PODMAN_CAPS) -> dict[str, Any]:
    """What podman hands the runtime: containers/common's setupSeccomp for one
    architecture and one capability set (includes/excludes resolved, archMap flattened)."""
    native = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[arch]
    architectures = [arch_ for entry in profile.get("archMap", ())
                     if entry["architecture"] == native
                     for arch_ in [entry["architecture"], *entry["subArchitectures"]]]
    syscalls = []
    for call in profile["syscalls"]:
        includes, excludes = call.get("includes") or {}, call.get("excludes") or {}
        if arch in (excludes.get("arches") or ()):
            continue
        if any(cap in caps for cap in excludes.get("caps") or ()):
            continue
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if any(cap not in caps for cap in includes.get("caps") or ()):
            continue
        entry = {"names": call["names"], "action": call["action"], "args": call.get("args") or []}
        if call.get("errnoRet") is not None:
            entry["errnoRet"] = call["errnoRet"]
        syscalls.append(entry)
    oci: dict[str, Any] = {"defaultAction": profile["defaultAction"],
                           "architectures": architectures, "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return oci


needs_podman = pytest.mark.skipif(not PODMAN_PROFILE.exists(),
                                  reason="needs golang-github-containers-common")


@needs_podman
def test_podman_profile_plans() -> None:
    profile = json.loads(PODMAN_PROFILE.read_text())
    raw_plan = plan_seccomp(profile)  # the file itself: unknown keys are ignored
    assert raw_plan is not None and len(raw_plan.rules) == len(profile["syscalls"])
    plan = plan_seccomp(podman_to_oci(profile))
    assert plan is not None
    assert plan.default_action == s.ACT_ERRNO | profile["defaultErrnoRet"]
    assert [name for name, _ in plan.architectures] == \
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = {name for rule in plan.rules for name in rule.names}
    assert {"read", "write", "execve", "clone3"} <= names and "add_key" not in names
    acct = [rule for rule in plan.rules if "acct" in rule.names]
    assert [rule.action for rule in acct] == [s.ACT_ERRNO | s.EPERM]  # no CAP_SYS_PACCT
    assert not plan.uses_notify


def test_plan_module_stays_light() -> None:
    """Runs on the create path: no ctypes, typing, enum, dataclasses, re, json."""
    script = ("import sys; import pyruntime.plan.seccomp; "
              "print(','.join(sorted(m.split('.')[0] for m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=30)
    loaded = set(result.stdout.strip().split(","))
    assert "pyruntime" in loaded
    assert loaded & {"ctypes", "typing", "enum", "dataclasses", "re", "json", "socket"} == set()
