"""Credential and namespace recipes, run against RecordingSyscalls.

The order of these calls is the security property: the bounding set is
trimmed while CAP_SETPCAP is still held, PR_SET_KEEPCAPS brackets the uid
switch, ambient capabilities are raised only once permitted and inheritable,
and no_new_privs comes last.  Every test here checks the recipe, not the
kernel's answer: the real calls are covered in tests/integration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyruntime import credentials, namespaces
from pyruntime.errors import ConfigError, SyscallError
from pyruntime.plan.capabilities import CAPABILITIES, CapabilityPlan, plan_capabilities
from pyruntime.plan.namespaces import plan_namespaces
from pyruntime.plan.rlimits import RLIMITS
from pyruntime.process import init, intermediate
from pyruntime.process.context import LaunchContext
from pyruntime.process.sync import MAPPED, Channel, pipe_pair
from pyruntime.rootfs import RootfsContext
from pyruntime.spec.model import Process, Spec
from pyruntime.syscalls.fake import (ALL_CAPABILITIES, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL,
                                     PR_CAP_AMBIENT_RAISE, PR_CAPBSET_DROP, PR_CAPBSET_READ,
                                     PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS, Call,
                                     RecordingSyscalls)

CAP = CAPABILITIES


@pytest.fixture
def sys() -> Iterator[RecordingSyscalls]:
    with RecordingSyscalls() as fake:
        yield fake
        assert fake.outstanding_fds() == [], "a recipe leaked a descriptor"


def _plan(**sets: list[str]) -> CapabilityPlan:
    plan = plan_capabilities(sets)
    assert plan is not None
    return plan


def _prctls(sys: RecordingSyscalls, option: int) -> list[int]:
    return [int(call.args[1]) for call in sys.named("prctl") if call.args[0] == option]  # type: ignore[call-overload]


# --- bounding set (real path: tests/integration) -----------------------------------------
def test_drop_bounding_set_drops_exactly_what_the_plan_lacks(sys: RecordingSyscalls) -> None:
    plan = _plan(bounding=["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    credentials.drop_bounding_set(sys, plan)
    assert _prctls(sys, PR_CAPBSET_READ) == list(range(41))
    kept = {CAP["CAP_CHOWN"], CAP["CAP_KILL"], CAP["CAP_NET_BIND_SERVICE"]}
    assert _prctls(sys, PR_CAPBSET_DROP) == [n for n in range(41) if n not in kept]
    assert sys.bounding == plan.bounding
    names = sys.names()
    assert names.index("prctl") == 0 and all(n == "prctl" for n in names)
    drop_labels = [c.args[3] for c in sys.named("prctl") if c.args[0] == PR_CAPBSET_DROP]
    assert drop_labels[0] == "drop CAP_DAC_OVERRIDE"


def test_drop_bounding_set_fails_before_dropping_if_the_host_lacks_a_capability() -> None:
    host = ALL_CAPABILITIES & ~(1 << CAP["CAP_SYS_RESOURCE"])
    sys = RecordingSyscalls(host_capabilities=host)
    plan = _plan(bounding=["CAP_KILL", "CAP_SYS_RESOURCE"])
    with pytest.raises(ConfigError) as caught:
        credentials.drop_bounding_set(sys, plan)
    assert str(caught.value) == ("config.json: process.capabilities.bounding: "
                                 "CAP_SYS_RESOURCE not available on this host")
    assert _prctls(sys, PR_CAPBSET_DROP) == [], "nothing may change before the check"


@pytest.mark.parametrize("kind", ["effective", "permitted", "inheritable", "ambient"])
def test_every_set_is_checked_against_the_host(kind: str) -> None:
    sys = RecordingSyscalls(host_capabilities=ALL_CAPABILITIES & ~(1 << CAP["CAP_MKNOD"]))
    with pytest.raises(ConfigError) as caught:
        credentials.drop_bounding_set(sys, _plan(**{kind: ["CAP_MKNOD"]}))
    assert caught.value.field == f"process.capabilities.{kind}"
    assert "CAP_MKNOD" in caught.value.problem


def test_older_kernel_with_fewer_capabilities() -> None:
    """PR_CAPBSET_READ is EINVAL past the kernel's last capability: the scan stops there."""
    sys = RecordingSyscalls(host_capabilities=(1 << 38) - 1, last_capability=37)
    assert credentials.host_bounding_set(sys) == (1 << 38) - 1
    credentials.drop_bounding_set(sys, _plan(bounding=["CAP_KILL"]))
    assert max(_prctls(sys, PR_CAPBSET_DROP)) == 37
    with pytest.raises(ConfigError, match="CAP_BPF not available on this host"):
        credentials.drop_bounding_set(RecordingSyscalls(host_capabilities=(1 << 38) - 1,
                                                        last_capability=37),
                                      _plan(bounding=["CAP_BPF"]))


def test_a_failed_drop_is_a_syscall_error_naming_the_capability(sys: RecordingSyscalls) -> None:
    sys.fail_on("prctl", 1, match=lambda args: args[0] == PR_CAPBSET_DROP)
    with pytest.raises(SyscallError) as caught:
        credentials.drop_bounding_set(sys, _plan(bounding=[]))
    assert str(caught.value) == "prctl drop CAP_CHOWN: operation not permitted"


# --- user switch (real path: tests/integration) -----------------------------------------------
def _process(**user: Any) -> Process:
    return Process({"args": ["sh"], "user": user})


def test_switch_user_order_with_capabilities(sys: RecordingSyscalls) -> None:
    credentials.switch_user(sys, _process(uid=1000, gid=100, additionalGids=[5, 6]), True)
    assert sys.calls == [
        Call("prctl", (PR_SET_KEEPCAPS, 1, 0, "keep capabilities")),
        Call("setgroups", ([5, 6],)),
        Call("setresgid", (100,)),
        Call("setresuid", (1000,)),
        Call("prctl", (PR_SET_KEEPCAPS, 0, 0, "keep capabilities")),
    ]


def test_switch_user_without_capabilities_and_no_groups(sys: RecordingSyscalls) -> None:
    credentials.switch_user(sys, _process(), False)
    assert sys.calls == [Call("setgroups", ([],)), Call("setresgid", (0,)), Call("setresuid", (0,))]


def test_switch_user_sets_the_umask(sys: RecordingSyscalls) -> None:
    old = os.umask(0o022)
    try:
        credentials.switch_user(sys, _process(umask=0o077), False)
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(old)


def test_switch_user_stops_at_the_first_failure(sys: RecordingSyscalls) -> None:
    sys.fail_on("setresgid", 1)
    with pytest.raises(SyscallError, match="^setresgid 100: operation not permitted$"):
        credentials.switch_user(sys, _process(uid=1000, gid=100), True)
    assert "setresuid" not in sys.names(), "never switch uid after a failed gid switch"


# --- capabilities (real path: tests/integration) ----------------------------------------------
def test_set_capabilities_raises_only_permitted_and_inheritable_ambient(sys: RecordingSyscalls) -> None:
    plan = _plan(effective=["CAP_KILL"], permitted=["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"],
                 inheritable=["CAP_KILL", "CAP_SETUID"],
                 ambient=["CAP_SETUID", "CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"])
    credentials.set_capabilities(sys, plan)
    assert sys.calls[0] == Call("capset", (plan.effective, plan.permitted, plan.inheritable))
    assert sys.calls[1] == Call("prctl", (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0,
                                          "clear ambient capabilities"))
    raised = [c.args[2] for c in sys.calls[2:]
              if c.args[:2] == (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE)]
    assert raised == [CAP["CAP_KILL"], CAP["CAP_SETUID"]]
    assert len(sys.calls) == 4
    assert sys.ambient == 1 << CAP["CAP_KILL"] | 1 << CAP["CAP_SETUID"]


def test_apply_rlimits_in_config_order(sys: RecordingSyscalls) -> None:
    process = Process({"args": ["sh"], "rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]})
    credentials.apply_rlimits(sys, process)
    assert sys.calls == [Call("setrlimit", (RLIMITS["RLIMIT_NOFILE"], 1024, 4096, "RLIMIT_NOFILE")),
                         Call("setrlimit", (RLIMITS["RLIMIT_CORE"], 0, 0, "RLIMIT_CORE"))]


def test_no_new_privileges_and_dumpable(sys: RecordingSyscalls) -> None:
    credentials.set_no_new_privileges(sys)
    credentials.set_dumpable(sys, False)
    assert sys.calls == [Call("prctl", (PR_SET_NO_NEW_PRIVS, 1, 0, "no_new_privs")),
                         Call("prctl", (4, 0, 0, "set dumpable"))]


# --- the init's and the intermediate's step lists ---------------------------------------------
CONFIG: dict[str, Any] = {
    "ociVersion": "1.3.0", "root": {"path": "rootfs"}, "hostname": "box",
    "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 1000, "gid": 1000},
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}],
                "noNewPrivileges": True,
                "capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                                 "effective": ["CAP_KILL"], "inheritable": ["CAP_KILL"],
                                 "ambient": ["CAP_KILL"]}},
    "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}]},
}


def _context(sys: RecordingSyscalls, tmp_path: Path, config: dict[str, Any] = CONFIG,
             joined: dict[str, int] | None = None) -> tuple[LaunchContext, list[Channel]]:
    spec = Spec(config, str(tmp_path), str(tmp_path / "rootfs"))
    assert spec.process is not None
    channels = list(pipe_pair())
    from_children, to_parent, to_children, from_parent = channels
    context = LaunchContext(spec, sys, [], plan_namespaces(spec.linux.namespaces), joined or {},  # type: ignore[arg-type]
                            plan_capabilities(spec.process.capabilities), [], -1, -1, False, True, 0,
                            [], to_parent, from_parent, [], {"ociVersion": "1.3.0", "id": "c1"})
    return context, channels


def _close(channels: list[Channel]) -> None:
    for channel in channels:
        channel.close()


def _run(steps: list[tuple[str, Any]], names: list[str]) -> None:
    by_name = dict(steps)
    for name in names:
        by_name[name]()


def test_init_step_order(sys: RecordingSyscalls, tmp_path: Path) -> None:
    context, channels = _context(sys, tmp_path)
    try:
        names = [name for name, _ in init.steps(context, RootfsContext(
            context.spec, sys, [], False, False, []))]
    finally:
        _close(channels)
    assert names[0] == "handle signals" and names[-1] == "exec"
    order = ["make / private", "bind rootfs", "mount", "pivot_root", "readonly paths",
             "mask paths", "readonly root", "set hostname", "set rlimits", "find executable",
             "drop bounding set", "switch user", "set capabilities", "set no_new_privs",
             "close descriptors", "report ready", "wait for start", "exec"]
    assert [n for n in names if n in order] == order
    assert len(set(names)) == len(names)


def test_init_credential_steps_call_the_kernel_in_order(sys: RecordingSyscalls,
                                                       tmp_path: Path) -> None:
    """The identity part of the init, end to end on the fake (real path: tests/integration)."""
    context, channels = _context(sys, tmp_path)
    try:
        steps = init.steps(context, RootfsContext(context.spec, sys, [], False, False, []))
        _run(steps, ["set hostname", "set rlimits", "drop bounding set", "switch user",
                     "set capabilities", "set no_new_privs"])
    finally:
        _close(channels)
    summary = [(c.name, c.args[0]) if c.name == "prctl" else (c.name,) for c in sys.calls
               if not (c.name == "prctl" and c.args[0] == PR_CAPBSET_READ)]
    drops = [("prctl", PR_CAPBSET_DROP)] * 40
    assert summary == [("sethostname",), ("setrlimit",), *drops, ("prctl", PR_SET_KEEPCAPS),
                       ("setgroups",), ("setresgid",), ("setresuid",), ("prctl", PR_SET_KEEPCAPS),
                       ("capset",), ("prctl", PR_CAP_AMBIENT), ("prctl", PR_CAP_AMBIENT),
                       ("prctl", PR_SET_NO_NEW_PRIVS)]
    assert (sys.uid, sys.gid, sys.hostname, sys.no_new_privs) == (1000, 1000, "box", True)
    assert sys.ambient == 1 << CAP["CAP_KILL"]


def test_init_without_capabilities_keeps_them(sys: RecordingSyscalls, tmp_path: Path) -> None:
    config = {**CONFIG, "process": {**CONFIG["process"], "noNewPrivileges": False}}
    del config["process"]["capabilities"]
    context, channels = _context(sys, tmp_path, config)
    try:
        steps = init.steps(context, RootfsContext(context.spec, sys, [], False, False, []))
        _run(steps, ["drop bounding set", "switch user", "set capabilities", "set no_new_privs"])
    finally:
        _close(channels)
    assert sys.names() == ["setgroups", "setresgid", "setresuid"]


def test_intermediate_new_user_namespace_waits_for_the_maps(sys: RecordingSyscalls,
                                                           tmp_path: Path) -> None:
    config = {**CONFIG, "linux": {"namespaces": [{"type": "mount"}, {"type": "user"},
                                                 {"type": "network"}]}}
    context, channels = _context(sys, tmp_path, config)
    from_children, _, to_children, _ = channels
    try:
        to_children.send(MAPPED)  # the parent's answer, queued before it is asked
        _run(intermediate.steps(context), ["enter user namespace", "join namespaces",
                                           "create namespaces", "bring up loopback"])
        assert from_children.expect("userns")["type"] == "userns"
    finally:
        _close(channels)
    assert sys.calls == [Call("unshare", (0x10000000,)), Call("setresgid", (0,)),
                         Call("setresuid", (0,)), Call("unshare", (0x00020000 | 0x40000000,)),
                         Call("loopback_up", ())]


def test_intermediate_joins_each_namespace_once(sys: RecordingSyscalls, tmp_path: Path) -> None:
    config = {**CONFIG, "linux": {"namespaces": [{"type": "mount"},
                                                 {"type": "user", "path": "/proc/1/ns/user"},
                                                 {"type": "network", "path": "/proc/1/ns/net"}]}}
    context, channels = _context(sys, tmp_path, config, joined={"user": 7, "network": 8})
    try:
        _run(intermediate.steps(context), ["enter user namespace", "join namespaces",
                                           "create namespaces"])
    finally:
        _close(channels)
    assert [c.args[2] for c in sys.named("setns")] == ["user namespace", "network namespace"]


def test_namespaces_join_in_table_order(sys: RecordingSyscalls) -> None:
    namespaces.join(sys, {"mount": 3, "network": 4, "ipc": 5})
    assert sys.calls == [Call("setns", (5, 0x08000000, "ipc namespace")),
                         Call("setns", (4, 0x40000000, "network namespace")),
                         Call("setns", (3, 0x00020000, "mount namespace"))]
    namespaces.unshare(sys, 0)
    assert len(sys.calls) == 3, "unshare(0) is not called"
