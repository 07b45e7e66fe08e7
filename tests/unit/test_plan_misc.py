"""pyruntime.plan.{namespaces,signals,capabilities,rlimits}: the small pure tables.

Each table is checked against an independent source (the kernel headers,
Python's ``signal``/``resource`` modules), because a wrong number here sends
the wrong signal, sets the wrong limit or grants the wrong capability.
"""

from __future__ import annotations

import re
import resource
import signal
from pathlib import Path

import pytest

from pyruntime.errors import ConfigError, UsageError
from pyruntime.plan import capabilities as caps
from pyruntime.plan.namespaces import NAMESPACES, plan_namespaces
from pyruntime.plan.rlimits import RLIMITS
from pyruntime.plan.signals import SIGNALS, parse_signal
from pyruntime.spec.model import Namespace

# --- namespaces --------------------------------------------------------------------------
CLONE = {"user": 0x10000000, "ipc": 0x08000000, "uts": 0x04000000, "network": 0x40000000,
         "pid": 0x20000000, "mount": 0x00020000, "cgroup": 0x02000000, "time": 0x00000080}
PROC_NAMES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
              "mount": "mnt", "cgroup": "cgroup", "time": "time"}


def test_namespace_table() -> None:
    assert {kind: flag for kind, (flag, _) in NAMESPACES.items()} == CLONE
    assert {kind: name for kind, (_, name) in NAMESPACES.items()} == PROC_NAMES
    assert next(iter(NAMESPACES)) == "user"


def _ns(kind: str, path: str | None = None) -> Namespace:
    return Namespace({"type": kind, "path": path} if path is not None else {"type": kind})


def test_new_namespaces_are_unshared_together_user_apart() -> None:
    plan = plan_namespaces([_ns("mount"), _ns("pid"), _ns("user"), _ns("network")])
    assert plan.new_user
    assert plan.joins == []
    assert plan.unshare_flags == CLONE["mount"] | CLONE["pid"] | CLONE["network"]
    assert plan.new_types == {"mount", "pid", "user", "network"}


def test_joins_come_in_table_order_user_first() -> None:
    plan = plan_namespaces([_ns("time", "/t"), _ns("network", "/n"), _ns("mount"),
                            _ns("user", "/u"), _ns("ipc", "/i")])
    assert plan.joins == [("user", "/u"), ("ipc", "/i"), ("network", "/n"), ("time", "/t")]
    assert not plan.new_user
    assert plan.unshare_flags == CLONE["mount"]
    assert plan.creates("mount") and not plan.creates("network")
    assert plan.has("network") and plan.has("mount") and not plan.has("pid")


def test_empty_path_means_a_new_namespace() -> None:
    plan = plan_namespaces([_ns("uts", "")])
    assert plan.joins == [] and plan.unshare_flags == CLONE["uts"]


def test_no_namespaces() -> None:
    plan = plan_namespaces([])
    assert (plan.new_user, plan.joins, plan.unshare_flags, plan.new_types) == (False, [], 0, set())


# --- signals ----------------------------------------------------------------------------
def test_signal_table_agrees_with_the_signal_module() -> None:
    for name, number in SIGNALS.items():
        assert getattr(signal, f"SIG{name}") == number, name
    standard = {s.name[3:] for s in signal.Signals if not s.name.startswith("SIGRT")}
    assert standard <= set(SIGNALS)
    assert (signal.SIGRTMIN, signal.SIGRTMAX) == (34, 64)


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_every_signal_name_in_every_spelling(name: str) -> None:
    number = getattr(signal, f"SIG{name}")
    for text in (name, f"SIG{name}", name.lower(), f"sig{name.lower()}", f"Sig{name.title()}"):
        assert parse_signal(text) == number, text


@pytest.mark.parametrize("number", range(1, 65))
def test_numbers(number: int) -> None:
    assert parse_signal(str(number)) == number


@pytest.mark.parametrize(("text", "number"), [
    ("RTMIN", 34), ("SIGRTMIN", 34), ("rtmin", 34), ("RTMIN+0", 34), ("RTMIN+3", 37),
    ("SIGRTMIN+30", 64), ("RTMAX", 64), ("RTMAX-0", 64), ("sigrtmax-2", 62), ("RTMAX-30", 34),
])
def test_realtime_signals(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", [
    "", "SIG", "0", "65", "100", "-1", "+15", " TERM", "TERM ", "SIGFOO", "FOO", "RTMIN+31",
    "RTMIN-1", "RTMAX+1", "RTMAX-31", "RTMIN+", "RTMIN+x", "RTMINX", "RTMIN3", "1.5",
])
def test_bad_signals(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_signal(text)
    assert str(caught.value) in (f"unknown signal {text!r}", f"invalid signal: {text}")


# --- capabilities -------------------------------------------------------------------------
def _header_capabilities() -> dict[str, int]:
    header = Path("/usr/include/linux/capability.h")
    if not header.exists():
        pytest.skip("no kernel headers to compare with")
    return {name: int(value) for name, value in
            re.findall(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", header.read_text(), re.M)
            if name not in ("CAP_LAST_CAP",)}


def test_capability_numbers_match_the_kernel_headers() -> None:
    header = _header_capabilities()
    assert {name: header[name] for name in caps.CAPABILITIES if name in header} == caps.CAPABILITIES
    assert set(header) - set(caps.CAPABILITIES) <= set(), "a capability the kernel has is missing"


@pytest.mark.parametrize(("name", "number"), [
    ("CAP_CHOWN", 0), ("CAP_KILL", 5), ("CAP_NET_ADMIN", 12), ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_RESOURCE", 24), ("CAP_MKNOD", 27), ("CAP_AUDIT_READ", 37), ("CAP_BPF", 39),
    ("CAP_CHECKPOINT_RESTORE", 40)])
def test_capability_numbers(name: str, number: int) -> None:
    assert caps.CAPABILITIES[name] == number


def test_capability_mask_and_names() -> None:
    mask = caps.capability_mask(["CAP_KILL", "CAP_CHOWN", "CAP_KILL"], "f")
    assert mask == 1 | 1 << 5
    assert caps.names_of(mask) == ["CAP_CHOWN", "CAP_KILL"]
    assert caps.names_of(0) == []


@pytest.mark.parametrize("bad", ["CAP_FOO", "cap_kill", "KILL", ""])
def test_unknown_capability_names_its_field(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        caps.plan_capabilities({"bounding": ["CAP_KILL"], "ambient": ["CAP_CHOWN", bad]})
    assert caught.value.field == "process.capabilities.ambient[1]"
    assert caught.value.problem == f"unknown capability {bad!r}"


def test_plan_capabilities() -> None:
    assert caps.plan_capabilities(None) is None
    plan = caps.plan_capabilities({"bounding": ["CAP_KILL", "CAP_CHOWN"],
                                   "effective": ["CAP_KILL"]})
    assert plan is not None
    assert (plan.bounding, plan.effective, plan.inheritable, plan.permitted, plan.ambient) == (
        1 << 5 | 1, 1 << 5, 0, 0, 0)


# --- rlimits ------------------------------------------------------------------------------
def test_rlimit_table_agrees_with_the_resource_module() -> None:
    assert len(RLIMITS) == 16
    for name, number in RLIMITS.items():
        # Python's resource module lacks RLIMIT_LOCKS (asm-generic/resource.h: 10)
        assert getattr(resource, name, 10 if name == "RLIMIT_LOCKS" else None) == number, name
    assert {n for n in dir(resource) if n.startswith("RLIMIT_")} <= set(RLIMITS) | {
        "RLIMIT_OFILE", "RLIMIT_VMEM", "RLIMIT_NPTS", "RLIMIT_SBSIZE", "RLIMIT_SWAP",
        "RLIMIT_KQUEUES"}
