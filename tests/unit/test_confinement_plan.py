"""Names to kernel numbers, and the create-time refusals, of the confinement fields.

``plan.scheduling`` (process.scheduler, process.ioPriority, linux.personality,
execCPUAffinity), ``plan.sysctls`` with ``validate.check_sysctls`` (only what
the container's own namespaces isolate), ``validate.check_hooks``, and
the init's steps for them (scheduler, I/O priority, personality
and session keyring as calls on RecordingSyscalls).  Every refusal must name
the field: engines show the one line to users.  What the kernel makes of
these calls is covered in tests/integration/test_confinement.py.
"""

from __future__ import annotations

import copy
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyruntime.errors import ConfigError, SyscallError
from pyruntime.plan import scheduling as plan
from pyruntime.plan.capabilities import plan_capabilities
from pyruntime.plan.namespaces import plan_namespaces
from pyruntime.plan.sysctls import namespace_of
from pyruntime.process import init
from pyruntime.process.context import LaunchContext
from pyruntime.process.sync import Channel, pipe_pair
from pyruntime.rootfs import RootfsContext
from pyruntime.spec import validate
from pyruntime.spec.model import Namespace, Spec
from pyruntime.syscalls.fake import PR_CAPBSET_DROP, PR_CAPBSET_READ, Call, RecordingSyscalls


# --- process.scheduler --------------------------------------------------------------------
@pytest.mark.parametrize("name, number", [
    ("SCHED_OTHER", 0), ("SCHED_FIFO", 1), ("SCHED_RR", 2), ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4), ("SCHED_IDLE", 5), ("SCHED_DEADLINE", 6)])
def test_every_policy(name: str, number: int) -> None:
    scheduler = plan.plan_scheduler({"policy": name})
    assert scheduler is not None
    assert (scheduler.policy, scheduler.flags, scheduler.nice, scheduler.priority,
            scheduler.runtime, scheduler.deadline, scheduler.period) == (number, 0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("name, bit", [
    ("SCHED_FLAG_RESET_ON_FORK", 0x01), ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04), ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10), ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40)])
def test_every_flag(name: str, bit: int) -> None:
    scheduler = plan.plan_scheduler({"policy": "SCHED_OTHER", "flags": [name]})
    assert scheduler is not None and scheduler.flags == bit


def test_flags_combine_and_fields_keep_their_values() -> None:
    scheduler = plan.plan_scheduler({
        "policy": "SCHED_DEADLINE", "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM"],
        "nice": -3, "priority": 7, "runtime": 100, "deadline": 200, "period": 300})
    assert scheduler is not None
    assert (scheduler.policy, scheduler.flags, scheduler.nice, scheduler.priority,
            scheduler.runtime, scheduler.deadline, scheduler.period) == (6, 3, -3, 7, 100, 200, 300)


def test_no_scheduler_is_none() -> None:
    assert plan.plan_scheduler(None) is None
    assert plan.plan_io_priority(None) is None
    assert plan.plan_personality(None) is None


@pytest.mark.parametrize("policy", ["SCHED_NOPE", "sched_fifo", "", None, 1])
def test_unknown_policy(policy: object) -> None:
    raw: dict[str, Any] = {} if policy is None else {"policy": policy}
    with pytest.raises(ConfigError) as caught:
        plan.plan_scheduler(raw)
    assert caught.value.field == "process.scheduler.policy"
    assert str(caught.value).startswith("config.json: process.scheduler.policy: unknown policy")


def test_unknown_flag_names_its_index() -> None:
    with pytest.raises(ConfigError) as caught:
        plan.plan_scheduler({"policy": "SCHED_OTHER",
                             "flags": ["SCHED_FLAG_RECLAIM", "SCHED_FLAG_BOGUS"]})
    assert str(caught.value) == ("config.json: process.scheduler.flags[1]: "
                                 "unknown flag 'SCHED_FLAG_BOGUS'")


@pytest.mark.parametrize("nice", [-20, -1, 0, 19])
def test_nice_in_range(nice: int) -> None:
    scheduler = plan.plan_scheduler({"policy": "SCHED_OTHER", "nice": nice})
    assert scheduler is not None and scheduler.nice == nice


@pytest.mark.parametrize("nice", [-21, 20, 100])
def test_nice_out_of_range(nice: int) -> None:
    with pytest.raises(ConfigError) as caught:
        plan.plan_scheduler({"policy": "SCHED_OTHER", "nice": nice})
    assert str(caught.value) == "config.json: process.scheduler.nice: must be between -20 and 19"


# --- process.ioPriority -------------------------------------------------------------------
@pytest.mark.parametrize("name, number", [
    ("IOPRIO_CLASS_RT", 1), ("IOPRIO_CLASS_BE", 2), ("IOPRIO_CLASS_IDLE", 3)])
@pytest.mark.parametrize("level", range(8))
def test_io_priority_value(name: str, number: int, level: int) -> None:
    assert plan.plan_io_priority({"class": name, "priority": level}) == number << 13 | level


def test_io_priority_level_defaults_to_0() -> None:
    assert plan.plan_io_priority({"class": "IOPRIO_CLASS_BE"}) == 2 << 13


@pytest.mark.parametrize("level", [-1, 8, 100, "4", 4.0])
def test_io_priority_level_out_of_range(level: object) -> None:
    with pytest.raises(ConfigError) as caught:
        plan.plan_io_priority({"class": "IOPRIO_CLASS_BE", "priority": level})
    assert caught.value.field == "process.ioPriority.priority"
    assert "0 (highest) to 7 (lowest)" in caught.value.problem


@pytest.mark.parametrize("kind", ["IOPRIO_CLASS_NONE", "BE", "", None])
def test_io_priority_unknown_class(kind: object) -> None:
    with pytest.raises(ConfigError) as caught:
        plan.plan_io_priority({"class": kind, "priority": 0})
    assert caught.value.field == "process.ioPriority.class"
    assert caught.value.problem.startswith("unknown class")


# --- linux.personality --------------------------------------------------------------------
def test_personality_domains() -> None:
    assert plan.plan_personality({"domain": "LINUX"}) == 0
    assert plan.plan_personality({"domain": "LINUX32"}) == 8
    assert plan.plan_personality({"domain": "LINUX32", "flags": []}) == 8


def test_personality_unknown_domain() -> None:
    with pytest.raises(ConfigError) as caught:
        plan.plan_personality({"domain": "LINUX64"})
    assert str(caught.value) == "config.json: linux.personality.domain: unknown domain 'LINUX64'"


@pytest.mark.parametrize("flags", [["ADDR_NO_RANDOMIZE"], ["anything", "else"]])
def test_personality_flags_are_refused(flags: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        plan.plan_personality({"domain": "LINUX", "flags": flags})
    assert str(caught.value) == ("config.json: linux.personality.flags: "
                                 "no flag values are supported")


# --- cpu lists ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, cpus", [
    ("0-3,7", {0, 1, 2, 3, 7}), ("5", {5}), ("0", {0}), ("2-2", {2}), ("1,1,0-1", {0, 1}),
    ("0-1, 3", {0, 1, 3}), ("10-12", {10, 11, 12})])
def test_parse_cpu_list(text: str, cpus: set[int]) -> None:
    assert plan.parse_cpu_list(text, "process.execCPUAffinity.initial") == cpus


@pytest.mark.parametrize("text", ["a", "1-", "", " ", "-1", "1-a", "1,,2", "1-2-3", "0x1"])
def test_parse_cpu_list_errors(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan.parse_cpu_list(text, "process.execCPUAffinity.final")
    assert caught.value.field == "process.execCPUAffinity.final"
    assert repr(text) in caught.value.problem


@pytest.mark.parametrize("text", ["3-1", "0,3-1"])
def test_parse_cpu_list_backwards_range(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan.parse_cpu_list(text, "process.execCPUAffinity.initial")
    assert str(caught.value) == ("config.json: process.execCPUAffinity.initial: "
                                 f"{text!r}: range 3-1 goes backwards")


# --- check_process and check_personality on a Spec ---------------------------------------
BASE: dict[str, Any] = {
    "ociVersion": "1.3.0", "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/"},
    "linux": {"namespaces": [{"type": "mount"}]},
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _spec(bundle: Path, process: dict[str, Any] | None = None,
          linux: dict[str, Any] | None = None, **top: Any) -> Spec:
    raw = copy.deepcopy(BASE)
    raw["process"].update(process or {})
    raw["linux"].update(linux or {})
    raw.update(top)
    return Spec(raw, str(bundle), str(bundle / "rootfs"))


def _refusal(check: Any, spec: Spec) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        check(spec)
    return caught.value


def test_check_process_accepts_the_new_fields(bundle: Path) -> None:
    spec = _spec(bundle, {"scheduler": {"policy": "SCHED_BATCH", "nice": 5},
                          "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
                          "execCPUAffinity": {"initial": "0", "final": "0-1"}},
                 {"personality": {"domain": "LINUX32"}})
    validate.check_process(spec)
    validate.check_personality(spec)
    validate.check_spec(spec)


@pytest.mark.parametrize("process, field", [
    ({"scheduler": {"policy": "SCHED_WHATEVER"}}, "process.scheduler.policy"),
    ({"scheduler": {"policy": "SCHED_OTHER", "nice": 40}}, "process.scheduler.nice"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_X"}}, "process.ioPriority.class"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}}, "process.ioPriority.priority"),
    ({"execCPUAffinity": {"initial": "3-1"}}, "process.execCPUAffinity.initial"),
    ({"execCPUAffinity": {"final": "x"}}, "process.execCPUAffinity.final"),
])
def test_check_process_refuses(bundle: Path, process: dict[str, Any], field: str) -> None:
    error = _refusal(validate.check_process, _spec(bundle, process))
    assert error.field == field
    assert _refusal(validate.check_spec, _spec(bundle, process)).field == field


def test_check_personality_refuses(bundle: Path) -> None:
    spec = _spec(bundle, linux={"personality": {"domain": "LINUX", "flags": ["X"]}})
    assert _refusal(validate.check_personality, spec).field == "linux.personality.flags"
    assert _refusal(validate.check_spec, spec).field == "linux.personality.flags"
    spec = _spec(bundle, linux={"personality": {"domain": "PER_BSD"}})
    assert _refusal(validate.check_spec, spec).field == "linux.personality.domain"


# --- linux.sysctl ----------------------------------------------------------------------------
@pytest.mark.parametrize("key, kind", [
    ("kernel.msgmax", "ipc"), ("kernel.msgmnb", "ipc"), ("kernel.msgmni", "ipc"),
    ("kernel.sem", "ipc"), ("kernel.shmall", "ipc"), ("kernel.shmmax", "ipc"),
    ("kernel.shmmni", "ipc"), ("kernel.shm_rmid_forced", "ipc"),
    ("fs.mqueue.msg_max", "ipc"), ("fs.mqueue.queues_max", "ipc"),
    ("net.ipv4.ip_forward", "network"), ("net.core.somaxconn", "network"),
    ("kernel.hostname", "uts"), ("kernel.domainname", "uts"),
    ("vm.swappiness", None), ("kernel.pid_max", None), ("fs.file-max", None),
    ("kernel.shmmaxx", None), ("network.x", None)])
def test_namespace_of(key: str, kind: str | None) -> None:
    assert namespace_of(key) == kind


def _ns(*kinds: str, **joined: str) -> list[dict[str, str]]:
    return ([{"type": kind} for kind in kinds] +
            [{"type": kind, "path": path} for kind, path in joined.items()])


def _sysctl_spec(bundle: Path, sysctl: dict[str, str], namespaces: list[dict[str, str]]) -> Spec:
    return _spec(bundle, linux={"sysctl": sysctl, "namespaces": namespaces})


@pytest.mark.parametrize("key, namespaces", [
    ("kernel.shmmax", _ns("mount", "ipc")),
    ("fs.mqueue.msg_max", _ns("mount", "ipc")),
    ("kernel.sem", _ns("mount", ipc="/proc/self/ns/ipc")),
    ("net.ipv4.ip_forward", _ns("mount", "network")),
    ("net.ipv4.ip_forward", _ns("mount", network="/proc/self/ns/net")),
    ("kernel.hostname", _ns("mount", "uts")),
    ("kernel.domainname", _ns("mount", uts="/proc/self/ns/uts")),
])
def test_namespaced_sysctls_pass(bundle: Path, key: str,
                                 namespaces: list[dict[str, str]]) -> None:
    spec = _sysctl_spec(bundle, {key: "1"}, namespaces)
    validate.check_sysctls(spec.linux.sysctl, plan_namespaces(spec.linux.namespaces))
    validate.check_namespaces(spec)
    validate.check_spec(spec)


@pytest.mark.parametrize("key, kind, namespaces", [
    ("kernel.shmmax", "ipc", _ns("mount", "network", "uts")),
    ("fs.mqueue.msg_max", "ipc", _ns("mount")),
    ("net.ipv4.ip_forward", "network", _ns("mount", "ipc", "uts", "pid")),
    ("net.core.somaxconn", "network", _ns("mount")),
    ("kernel.hostname", "uts", _ns("mount", "ipc", "network")),
])
def test_sysctl_without_its_namespace(bundle: Path, key: str, kind: str,
                                      namespaces: list[dict[str, str]]) -> None:
    spec = _sysctl_spec(bundle, {key: "1"}, namespaces)
    error = _refusal(validate.check_spec, spec)
    assert str(error) == (f'config.json: linux.sysctl["{key}"]: '
                          f"needs the container's own {kind} namespace")


@pytest.mark.parametrize("key", ["vm.swappiness", "kernel.pid_max", "fs.file-max",
                                 "kernel.panic", "user.max_user_namespaces"])
def test_host_wide_sysctls_are_refused(bundle: Path, key: str) -> None:
    every = _ns("mount", "ipc", "network", "uts", "pid", "cgroup")
    error = _refusal(validate.check_spec, _sysctl_spec(bundle, {key: "1"}, every))
    assert str(error) == (f'config.json: linux.sysctl["{key}"]: '
                          "is not in a separate kernel namespace")


@pytest.mark.parametrize("key", ["", "a..b", "net/ipv4/ip_forward", "net.ipv4.ip forward",
                                 "net.ipv4.*", "net.ipv4.ip_forward\n", "../etc/passwd",
                                 "net..ipv4"])
def test_invalid_sysctl_names(bundle: Path, key: str) -> None:
    every = _ns("mount", "ipc", "network", "uts")
    error = _refusal(validate.check_spec, _sysctl_spec(bundle, {key: "1"}, every))
    assert error.field == f'linux.sysctl["{key}"]'
    assert error.problem == "is not a valid sysctl name"


def test_upper_case_net_sysctl_is_not_namespaced(bundle: Path) -> None:
    """/proc/sys names are lower case; NET.X is not the network namespace's."""
    every = _ns("mount", "ipc", "network", "uts")
    error = _refusal(validate.check_spec, _sysctl_spec(bundle, {"NET.X": "1"}, every))
    assert error.field == 'linux.sysctl["NET.X"]'


def test_the_first_bad_sysctl_is_named(bundle: Path) -> None:
    spec = _sysctl_spec(bundle, {"net.ipv4.ip_forward": "1", "vm.swappiness": "10"},
                        _ns("mount", "network"))
    assert _refusal(validate.check_spec, spec).field == 'linux.sysctl["vm.swappiness"]'


def test_check_sysctls_directly() -> None:
    namespaces = plan_namespaces([Namespace({"type": "network"})])
    validate.check_sysctls({"net.ipv4.ip_forward": "1"}, namespaces)
    with pytest.raises(ConfigError) as caught:
        validate.check_sysctls({"kernel.shmmax": "1"}, namespaces)
    assert caught.value.field == 'linux.sysctl["kernel.shmmax"]'


# --- hooks -----------------------------------------------------------------------------------
RUNTIME_KINDS = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]


@pytest.fixture
def executable(tmp_path: Path) -> str:
    path = tmp_path / "hook"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def _hooks_spec(bundle: Path, kind: str, **hook: Any) -> Spec:
    return _spec(bundle, hooks={kind: [{"path": "/bin/true"}, hook]})


@pytest.mark.parametrize("kind", [*RUNTIME_KINDS, "startContainer"])
def test_good_hooks_pass(bundle: Path, executable: str, kind: str) -> None:
    validate.check_hooks(_hooks_spec(bundle, kind, path=executable, timeout=1))
    validate.check_spec(_hooks_spec(bundle, kind, path=executable, args=["h", "x"],
                                    env=["A=1"]))


@pytest.mark.parametrize("kind", [*RUNTIME_KINDS, "startContainer"])
def test_relative_hook_path(bundle: Path, kind: str) -> None:
    error = _refusal(validate.check_hooks, _hooks_spec(bundle, kind, path="bin/hook"))
    assert str(error) == f"config.json: hooks.{kind}[1].path: must be an absolute path"


@pytest.mark.parametrize("kind", RUNTIME_KINDS)
def test_missing_hook_path(bundle: Path, tmp_path: Path, kind: str) -> None:
    missing = str(tmp_path / "missing")
    error = _refusal(validate.check_spec, _hooks_spec(bundle, kind, path=missing))
    assert str(error) == f"config.json: hooks.{kind}[1].path: {missing} is not an executable file"


@pytest.mark.parametrize("kind", RUNTIME_KINDS)
def test_non_executable_hook_path(bundle: Path, executable: str, kind: str) -> None:
    Path(executable).chmod(0o644)
    error = _refusal(validate.check_hooks, _hooks_spec(bundle, kind, path=executable))
    assert error.field == f"hooks.{kind}[1].path"
    assert error.problem == f"{executable} is not an executable file"


@pytest.mark.parametrize("kind", RUNTIME_KINDS)
def test_a_directory_is_not_a_hook(bundle: Path, tmp_path: Path, kind: str) -> None:
    error = _refusal(validate.check_hooks, _hooks_spec(bundle, kind, path=str(tmp_path)))
    assert error.field == f"hooks.{kind}[1].path"


def test_start_container_path_is_not_checked_on_the_host(bundle: Path, tmp_path: Path) -> None:
    """It resolves in the container (config.md): /only/in/the/image is fine at create."""
    validate.check_hooks(_hooks_spec(bundle, "startContainer", path=str(tmp_path / "nope")))
    validate.check_spec(_hooks_spec(bundle, "startContainer", path="/only/in/the/image"))


@pytest.mark.parametrize("timeout", [0, -1])
@pytest.mark.parametrize("kind", ["prestart", "startContainer"])
def test_hook_timeout_must_be_positive(bundle: Path, executable: str, kind: str,
                                       timeout: int) -> None:
    error = _refusal(validate.check_hooks, _hooks_spec(bundle, kind, path=executable,
                                                       timeout=timeout))
    assert str(error) == f"config.json: hooks.{kind}[1].timeout: must be greater than zero"


def test_no_hooks_and_empty_hooks(bundle: Path) -> None:
    validate.check_hooks(_spec(bundle))
    validate.check_hooks(_spec(bundle, hooks={}))
    validate.check_hooks(_spec(bundle, hooks={"prestart": []}))


# --- the init's steps: scheduler, I/O priority, personality, keyring ----------------------
# On RecordingSyscalls: these check the recipe (which calls, which arguments, in
# which order); what the kernel does with them is covered in
# tests/integration/test_confinement.py.
INIT_CONFIG: dict[str, Any] = {
    "ociVersion": "1.3.0", "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "scheduler": {"policy": "SCHED_FIFO", "priority": 10, "nice": 0,
                              "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
                "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
                "capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                                 "effective": ["CAP_KILL"]}},
    "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}],
              "personality": {"domain": "LINUX32"}},
}
CONFINEMENT_STEPS = ["join session keyring", "set scheduler", "set io priority",
                     "set personality", "drop bounding set"]


@pytest.fixture
def fake() -> Iterator[RecordingSyscalls]:
    with RecordingSyscalls() as recording:
        yield recording


def _init_steps(sys: RecordingSyscalls, tmp_path: Path, config: dict[str, Any] = INIT_CONFIG,
                new_keyring: bool = True, container_id: str = "c1"
                ) -> tuple[list[tuple[str, Any]], list[Channel]]:
    spec = Spec(copy.deepcopy(config), str(tmp_path), str(tmp_path / "rootfs"))
    assert spec.process is not None
    channels = list(pipe_pair())
    _, to_parent, _, from_parent = channels
    context = LaunchContext(spec, sys, [], plan_namespaces(spec.linux.namespaces), {},  # type: ignore[arg-type]
                            plan_capabilities(spec.process.capabilities), [], -1, -1, False,
                            new_keyring, 0, [], to_parent, from_parent, [],
                            {"ociVersion": "1.3.0", "id": container_id})
    steps = init.steps(context, RootfsContext(spec, sys, [], False, False, []))  # type: ignore[arg-type]
    return steps, channels


def _run_steps(sys: RecordingSyscalls, tmp_path: Path, names: list[str],
               **options: Any) -> None:
    """The named steps, in the init's own order (not the order of ``names``)."""
    steps, channels = _init_steps(sys, tmp_path, **options)
    try:
        assert set(names) <= {name for name, _ in steps}, "a step was renamed"
        for name, step in steps:
            if name in names:
                step()
    finally:
        for channel in channels:
            channel.close()


def _step_names(sys: RecordingSyscalls, tmp_path: Path) -> list[str]:
    steps, channels = _init_steps(sys, tmp_path)
    for channel in channels:
        channel.close()
    return [name for name, _ in steps]


def test_confinement_steps_come_before_the_capabilities_drop(fake: RecordingSyscalls,
                                                            tmp_path: Path) -> None:
    names = _step_names(fake, tmp_path)
    assert len(set(names)) == len(names)
    drop = names.index("drop bounding set")
    for name in CONFINEMENT_STEPS[:-1]:
        assert names.index(name) < drop, f"{name} must run while the init holds every capability"
    assert names.index("pivot_root") < min(names.index(name) for name in CONFINEMENT_STEPS)
    assert drop < names.index("switch user") < names.index("set capabilities")
    assert names.index("set sysctls") > names.index("pivot_root"), \
        "sysctls go to the container's /proc/sys, after pivot_root"
    assert names.index("startContainer hooks") < names.index("set security labels") < \
        names.index("exec")


CONFINEMENT_CALLS = ["join_session_keyring", "sched_setattr", "ioprio_set", "personality"]


def _before_first_drop(sys: RecordingSyscalls) -> list[Call]:
    calls = [call for call in sys.calls
             if not (call.name == "prctl" and call.args[0] == PR_CAPBSET_READ)]
    first_drop = next(index for index, call in enumerate(calls)
                      if call.name == "prctl" and call.args[0] == PR_CAPBSET_DROP)
    return calls[:first_drop]


def test_init_calls_scheduler_ioprio_personality_keyring_before_the_drop(
        fake: RecordingSyscalls, tmp_path: Path) -> None:
    _run_steps(fake, tmp_path, CONFINEMENT_STEPS)
    before = {call.name: call for call in _before_first_drop(fake)}
    assert sorted(before) == sorted(CONFINEMENT_CALLS)
    assert before["join_session_keyring"].args == ("_ses.c1",)
    assert before["sched_setattr"].args == (1, 0x01, 0, 10, 0, 0, 0)
    assert before["ioprio_set"].args == (1, 0, 2 << 13 | 4)
    assert before["personality"].args == (0x0008,)
    assert len(fake.named("prctl")) > 0 and all(
        call.args[0] in (PR_CAPBSET_READ, PR_CAPBSET_DROP) for call in fake.named("prctl"))
    assert [c.name for c in fake.calls if c.name in CONFINEMENT_CALLS] == \
        [c.name for c in _before_first_drop(fake) if c.name in CONFINEMENT_CALLS], \
        "each is called once, before the drop"


def test_keyring_is_named_after_the_container(fake: RecordingSyscalls, tmp_path: Path) -> None:
    _run_steps(fake, tmp_path, ["join session keyring"], container_id="my-box.1")
    assert fake.calls == [Call("join_session_keyring", ("_ses.my-box.1",))]


def test_no_new_keyring_makes_no_keyring_call(fake: RecordingSyscalls, tmp_path: Path) -> None:
    _run_steps(fake, tmp_path, CONFINEMENT_STEPS, new_keyring=False)
    assert "join_session_keyring" not in fake.names()
    assert sorted(c.name for c in _before_first_drop(fake)) == \
        ["ioprio_set", "personality", "sched_setattr"]


def test_keyring_enosys_is_ignored(fake: RecordingSyscalls, tmp_path: Path) -> None:
    fake.fail_on("join_session_keyring", errno.ENOSYS)
    _run_steps(fake, tmp_path, CONFINEMENT_STEPS)
    assert sorted(c.name for c in _before_first_drop(fake)) == sorted(CONFINEMENT_CALLS)


@pytest.mark.parametrize("code", [errno.EPERM, errno.EDQUOT, errno.EACCES])
def test_keyring_other_errors_fail_the_step(fake: RecordingSyscalls, tmp_path: Path,
                                            code: int) -> None:
    fake.fail_on("join_session_keyring", code)
    with pytest.raises(SyscallError) as caught:
        _run_steps(fake, tmp_path, CONFINEMENT_STEPS)
    assert caught.value.errno == code
    assert str(caught.value).startswith("join session keyring _ses.c1: ")
    assert fake.names()[-1] == "join_session_keyring", "nothing may run after the failure"
    assert fake.names().count("join_session_keyring") == 1


def test_without_the_fields_no_calls(fake: RecordingSyscalls, tmp_path: Path) -> None:
    config = copy.deepcopy(INIT_CONFIG)
    for key in ("scheduler", "ioPriority"):
        del config["process"][key]
    del config["linux"]["personality"]
    _run_steps(fake, tmp_path, ["set scheduler", "set io priority", "set personality"],
               config=config)
    assert fake.calls == []


def test_personality_linux_is_still_applied(fake: RecordingSyscalls, tmp_path: Path) -> None:
    config = copy.deepcopy(INIT_CONFIG)
    config["linux"]["personality"] = {"domain": "LINUX"}
    _run_steps(fake, tmp_path, ["set personality"], config=config)
    assert fake.calls == [Call("personality", (0,))]


@pytest.mark.parametrize("step, name", [("set scheduler", "sched_setattr"),
                                        ("set io priority", "ioprio_set"),
                                        ("set personality", "personality")])
def test_a_failing_call_fails_its_step(fake: RecordingSyscalls, tmp_path: Path, step: str,
                                       name: str) -> None:
    fake.fail_on(name, errno.EPERM)
    with pytest.raises(SyscallError, match="operation not permitted"):
        _run_steps(fake, tmp_path, [step])


def test_io_priority_is_set_for_the_process_only(fake: RecordingSyscalls,
                                                 tmp_path: Path) -> None:
    """IOPRIO_WHO_PROCESS: the init's process group is its caller's (once a bug, when it
    was IOPRIO_WHO_PGRP: the host's processes got the container's priority)."""
    _run_steps(fake, tmp_path, ["set io priority"])
    assert fake.calls == [Call("ioprio_set", (1, 0, 2 << 13 | 4))]  # IOPRIO_WHO_PROCESS, self
