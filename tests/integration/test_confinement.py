"""Confinement fields through the CLI: what the kernel reports inside (and about) a
real container.

linux.sysctl, process.scheduler, process.ioPriority, linux.personality,
process.apparmorProfile / selinuxLabel (this host runs neither: refused),
HOME as runc sets it, and the session keyring.  The recipes themselves are in
tests/unit/test_confinement_plan.py and tests/unit/test_lsm.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error, probe_script, sections

pytestmark = pytest.mark.root

STAT_NICE, STAT_RT_PRIORITY, STAT_POLICY = 19, 40, 41  # 1-based fields of /proc/PID/stat


def _stat_field(text: str, number: int) -> int:
    """Field ``number`` (1-based, as proc(5) counts) of a /proc/PID/stat line."""
    after_comm = text[text.rindex(")") + 2:].split()
    return int(after_comm[number - 3])


def _host_sysctl(key: str) -> str:
    return Path("/proc/sys", key.replace(".", "/")).read_text()


def _gone(rt: Runtime, cid: str) -> None:
    assert not (rt.root / cid).exists()
    assert rt("state", cid).returncode != 0


# --- linux.sysctl -------------------------------------------------------------------------
def test_namespaced_sysctls_are_set_inside_only(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    host_forward, host_shmmax = _host_sysctl("net.ipv4.ip_forward"), _host_sysctl("kernel.shmmax")
    wanted_forward = "0" if host_forward.strip() == "1" else "1"
    wanted_shmmax = "123456789" if host_shmmax.strip() != "123456789" else "987654321"
    bundle = bundles.make(
        probe_script({"forward": "cat /proc/sys/net/ipv4/ip_forward",
                      "shmmax": "cat /proc/sys/kernel/shmmax"}),
        linux={"sysctl": {"net.ipv4.ip_forward": wanted_forward,
                          "kernel.shmmax": wanted_shmmax}})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["forward"].strip() == wanted_forward
    assert out["shmmax"].strip() == wanted_shmmax
    assert _host_sysctl("net.ipv4.ip_forward") == host_forward
    assert _host_sysctl("kernel.shmmax") == host_shmmax


def test_host_wide_sysctl_is_refused(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    host = _host_sysctl("vm.swappiness")
    bundle = bundles.make(["true"], linux={"sysctl": {"vm.swappiness": "1"}})
    result = rt.create(cid, bundle)
    assert_one_line_error(result, 'linux.sysctl["vm.swappiness"]',
                          "is not in a separate kernel namespace")
    assert _host_sysctl("vm.swappiness") == host
    _gone(rt, cid)


def test_net_sysctl_without_a_network_namespace_is_refused(rt: Runtime, bundles: BundleFactory,
                                                           cid: str) -> None:
    host = _host_sysctl("net.ipv4.ip_forward")
    namespaces = [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")]
    bundle = bundles.make(["true"], linux={"namespaces": namespaces,
                                           "sysctl": {"net.ipv4.ip_forward": "1"}})
    result = rt.create(cid, bundle)
    assert_one_line_error(result, 'linux.sysctl["net.ipv4.ip_forward"]', "network namespace")
    assert _host_sysctl("net.ipv4.ip_forward") == host
    _gone(rt, cid)


# --- process.scheduler ---------------------------------------------------------------------
def test_sched_batch_with_nice(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["cat", "/proc/self/stat"],
                          process={"scheduler": {"policy": "SCHED_BATCH", "nice": 5}})
    stat = rt.run(cid, bundle).ok().stdout
    assert _stat_field(stat, STAT_POLICY) == 3
    assert _stat_field(stat, STAT_NICE) == 5


RT_GROUP_SCHED = Path("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")


def test_sched_fifo_with_priority(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Needs CAP_SYS_NICE, which the init still holds then (the process does not:
    the default capabilities lack it).  With RT group scheduling (cgroup v1 here) the
    container's new cpu cgroup has no real-time budget unless the config gives one,
    as with runc."""
    changes: dict[str, Any] = {}
    if RT_GROUP_SCHED.exists():
        changes["linux"] = {"resources": {"cpu": {"realtimeRuntime": 10000,
                                                  "realtimePeriod": 1000000}}}
    bundle = bundles.make(probe_script({"stat": "cat /proc/self/stat",
                                        "status": "grep CapEff /proc/self/status"}),
                          process={"scheduler": {"policy": "SCHED_FIFO", "priority": 10}},
                          **changes)
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert _stat_field(out["stat"], STAT_POLICY) == 1
    assert _stat_field(out["stat"], STAT_RT_PRIORITY) == 10
    assert int(out["status"].split()[1], 16) & (1 << 23) == 0, "CAP_SYS_NICE was dropped after"


def test_unknown_policy_is_refused(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["true"], process={"scheduler": {"policy": "SCHED_TURBO"}})
    assert_one_line_error(rt.create(cid, bundle), "process.scheduler.policy")
    _gone(rt, cid)


# --- process.ioPriority ----------------------------------------------------------------------
def _ionice(pid: int) -> str:
    return subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()


def test_io_priority_of_the_process(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["sleep", "30"],
                          process={"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4}})
    rt.create(cid, bundle).ok()
    try:
        pid = rt.state(cid)["pid"]
        rt.start(cid).ok()
        assert _ionice(pid) == "best-effort: prio 4"
    finally:
        rt.delete(cid, force=True).ok()


def test_io_priority_does_not_reach_the_host(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """create inherits our process group (subprocess does not setsid), and so does its
    init: the priority is the process's, not the group's (once a bug)."""
    before = _ionice(os.getpid())
    try:
        bundle = bundles.make(["true"],
                              process={"ioPriority": {"class": "IOPRIO_CLASS_IDLE",
                                                      "priority": 7}})
        rt.run(cid, bundle).ok()
        after = _ionice(os.getpid())
    finally:
        subprocess.run(["ionice", "-c", "0", "-p", str(os.getpid())], timeout=10)
    assert after == before, f"the test runner's I/O priority changed: {before!r} -> {after!r}"


# --- linux.personality -----------------------------------------------------------------------
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the 32-bit name is x86's")
def test_personality_linux32(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    plain = rt.run(cid, bundles.make(["uname", "-m"])).ok().stdout.strip()
    assert plain == "x86_64"
    bundle = bundles.make(["uname", "-m"], linux={"personality": {"domain": "LINUX32"}})
    assert rt.run(f"{cid}-32", bundle).ok().stdout.strip() in ("i686", "i386")


# --- AppArmor and SELinux on a host without them ---------------------------------------------
@pytest.mark.parametrize("field, value, problem", [
    ("apparmorProfile", "docker-default", "apparmor is not enabled on this host"),
    ("selinuxLabel", "system_u:system_r:container_t:s0",
     "selinux is disabled or not supported on this host"),
])
def test_lsm_fields_are_refused_without_the_module(rt: Runtime, bundles: BundleFactory,
                                                   cid: str, field: str, value: str,
                                                   problem: str) -> None:
    if os.path.exists("/sys/fs/selinux/enforce") or \
            os.path.exists("/sys/module/apparmor/parameters/enabled"):
        pytest.skip("this host runs an LSM")
    bundle = bundles.make(["true"], process={field: value})
    assert_one_line_error(rt.create(cid, bundle), f"process.{field}", problem)
    _gone(rt, cid)
    assert_one_line_error(rt.run(cid, bundle), f"process.{field}", problem)
    _gone(rt, cid)


# --- HOME ---------------------------------------------------------------------------------------
ENV_WITHOUT_HOME = ["PATH=/bin"]


@pytest.mark.parametrize("uid, home", [(0, "/root"), (1000, "/home/user"), (4242, "/")])
def test_home_from_the_containers_passwd(rt: Runtime, bundles: BundleFactory, cid: str,
                                         uid: int, home: str) -> None:
    bundle = bundles.make(["sh", "-c", "cat /proc/self/environ | tr '\\0' '\\n'"],
                          process={"user": {"uid": uid, "gid": uid},
                                   "env": [*ENV_WITHOUT_HOME, f"PYRUNTIME_IT_TOKEN={rt.token}"]})
    environ = rt.run(cid, bundle).ok().stdout.splitlines()
    assert [line for line in environ if line.startswith("HOME=")] == [f"HOME={home}"]


def test_home_from_a_changed_passwd(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """The container's /etc/passwd, not the host's (where uid 1000 may be someone else)."""
    rootfs = bundles.private_rootfs()
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/srv/root-home:/bin/sh\n")
    bundle = bundles.make(["sh", "-c", "echo $HOME"], rootfs=rootfs,
                          process={"env": [*ENV_WITHOUT_HOME, f"PYRUNTIME_IT_TOKEN={rt.token}"]})
    assert rt.run(cid, bundle).ok().stdout == "/srv/root-home\n"


def test_explicit_home_is_kept(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["sh", "-c", "echo $HOME"],
                          process={"user": {"uid": 1000, "gid": 1000},
                                   "env": ["PATH=/bin", "HOME=/my/home",
                                           f"PYRUNTIME_IT_TOKEN={rt.token}"]})
    assert rt.run(cid, bundle).ok().stdout == "/my/home\n"


# --- the session keyring ---------------------------------------------------------------------
def _keyrings_named(name: str) -> list[str]:
    """Lines of the host's /proc/keys (root sees every keyring) describing ``name``."""
    return [line for line in Path("/proc/keys").read_text().splitlines()
            if line.split()[7:9] == ["keyring", f"{name}:"]]


def test_session_keyring_is_the_containers_own(rt: Runtime, bundles: BundleFactory,
                                               cid: str) -> None:
    bundle = bundles.make(["sleep", "30"])
    rt.create(cid, bundle).ok()
    try:
        found = _keyrings_named(f"_ses.{cid}")
        assert len(found) == 1, found
        assert " keyring " in f" {found[0]} "
    finally:
        rt.delete(cid, force=True).ok()


def test_session_keyring_seen_inside(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """With /proc/keys not masked, the container sees its own session keyring."""
    bundle = bundles.make(["cat", "/proc/keys"],
                          linux={"maskedPaths": ["/proc/kcore"]})
    out = rt.run(cid, bundle).ok().stdout
    assert any(line.split()[7:9] == ["keyring", f"_ses.{cid}:"] for line in out.splitlines()), out


def test_no_new_keyring(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["sleep", "30"])
    rt.create(cid, bundle, "--no-new-keyring").ok()
    try:
        assert _keyrings_named(f"_ses.{cid}") == []
    finally:
        rt.delete(cid, force=True).ok()
