"""cgroup features of real containers through the CLI, on this host's hybrid layout
(v1 controllers under /sys/fs/cgroup/<controller> plus a controller-less cgroup2 at
/sys/fs/cgroup/unified).

Limits are checked where the kernel enforces them (an OOM kill, a refused fork,
throttled periods, a refused open), the container's cgroup is found the way an
engine would (``/proc/<init pid>/cgroup`` of the pid ``state`` gives), and every
container leaves no folder behind in any hierarchy.  Each cgroupsPath set here
carries the test's token, so the leak guard sees anything left.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error, pid_exists, wait_for

pytestmark = pytest.mark.root

CGROUP_ROOT = Path("/sys/fs/cgroup")
MiB = 1024 * 1024
UNIFIED = "unified"


# --- reading the container's cgroups from /proc --------------------------------------
def cgroup_lines(pid: int | str) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy folder under /sys/fs/cgroup: path}.

    ``4:memory:/a`` -> ``{"memory": "/a"}``, ``9:name=systemd:/a`` -> ``{"systemd": ...}``,
    ``0::/a`` -> ``{"unified": "/a"}`` (the hybrid cgroup2)."""
    result = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        name = controllers.removeprefix("name=") if controllers else UNIFIED
        result[name] = path
    return result


def hierarchies() -> list[str]:
    """Every hierarchy mounted under /sys/fs/cgroup (v1 ones and the unified one)."""
    mounted = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point, fstype = left.split()[4], right.split()[0]
        if fstype in ("cgroup", "cgroup2") and os.path.dirname(point) == str(CGROUP_ROOT):
            mounted.append(os.path.basename(point))
    return sorted(mounted)


def folder(pid: int, hierarchy: str) -> Path:
    """The container's folder in ``hierarchy`` (memory, pids, cpu, ...)."""
    return CGROUP_ROOT / hierarchy / cgroup_lines(pid)[hierarchy].lstrip("/")


def read(pid: int, hierarchy: str, name: str) -> str:
    return (folder(pid, hierarchy) / name).read_text().strip()


def keyed(text: str) -> dict[str, int]:
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            result[key] = int(value)
    return result


def container_folders(pid: int) -> list[Path]:
    """The container's folder in every hierarchy it is in."""
    return [CGROUP_ROOT / name / path.lstrip("/") for name, path in cgroup_lines(pid).items()]


def leftovers(path_in_hierarchy: str) -> list[Path]:
    """``path_in_hierarchy`` (relative to each mount) wherever it still exists."""
    return [CGROUP_ROOT / name / path_in_hierarchy.lstrip("/") for name in hierarchies()
            if (CGROUP_ROOT / name / path_in_hierarchy.lstrip("/")).exists()]


def token_folders(token: str, depth: int = 4) -> list[str]:
    """Folders named with ``token`` anywhere near the top of any hierarchy."""
    found: list[str] = []
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        level = top[len(str(CGROUP_ROOT)):].count("/")
        found.extend(os.path.join(top, d) for d in dirs if token in d)
        if level >= depth:
            dirs[:] = []
    return found


def own_cgroups() -> dict[str, str]:
    return cgroup_lines("self")


def wait_output(rt: Runtime, cid: str, needle: str, timeout: float = 10.0) -> str:
    wait_for(lambda: needle in rt.output(cid), timeout, f"{needle!r} in the output of {cid}")
    return rt.output(cid)


def started(rt: Runtime, bundles: BundleFactory, cid: str, args: list[str],
            **changes: Any) -> int:
    """create + start a container; its init's host pid."""
    rt.create(cid, bundles.make(args, **changes)).ok()
    pid = int(rt.state(cid)["pid"])
    rt.start(cid).ok()
    return pid


def resources(**sections: Any) -> dict[str, Any]:
    return {"linux": {"resources": sections}}


def with_cgroups_path(path: str, **sections: Any) -> dict[str, Any]:
    return {"linux": {"cgroupsPath": path, "resources": sections}}


def no_pid_namespace(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "pid"]


def gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_exists(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


SLEEPER = ["sleep", "1000"]


def exec_detached(rt: Runtime, *args: str) -> None:
    """``exec -d``: the process keeps the streams it is given, so files, not pipes."""
    log = rt.logs / "exec-d.log"
    with open(log, "w") as out:
        done = subprocess.run(rt.argv("exec", "-d", *args), stdout=out, stderr=out,
                              stdin=subprocess.DEVNULL, env=rt.env, timeout=30)
    assert done.returncode == 0, log.read_text()


# --- limits the kernel enforces ------------------------------------------------------
def test_memory_limit_oom_kills_the_allocator(rt: Runtime, bundles: BundleFactory,
                                              cid: str) -> None:
    # dd's 200 MiB buffer is touched by read(2) from /dev/zero: anonymous memory,
    # charged to the container's memory cgroup; no swap here, so the OOM killer acts.
    script = "dd if=/dev/zero of=/dev/null bs=200M count=1; echo dd-status=$?; sleep 1000"
    pid = started(rt, bundles, cid, ["sh", "-c", script],
                  **resources(memory={"limit": 64 * MiB}))
    try:
        out = wait_output(rt, cid, "dd-status=", timeout=20)
        assert "dd-status=137" in out, out  # 128 + SIGKILL
        assert read(pid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
        assert int(read(pid, "memory", "memory.failcnt")) > 0
        oom = keyed(read(pid, "memory", "memory.oom_control"))
        assert oom.get("oom_kill", 0) >= 1, oom
        assert int(read(pid, "memory", "memory.max_usage_in_bytes")) <= 64 * MiB
        assert rt.status(cid) == "running"  # only the allocator died
    finally:
        rt.delete(cid, force=True).ok()


def test_pids_limit_stops_forks(rt: Runtime, bundles: BundleFactory, cid: str,
                                token: str) -> None:
    # pids.max 10 counts the shell: nine background sleeps fit, the tenth fork fails
    # (busybox sh gives up on a failed fork, so "all-forked" must never appear).
    path = f"/pyruntime-test-{token}/c"
    pids = CGROUP_ROOT / "pids" / path.lstrip("/")
    script = ("i=0; while [ $i -lt 20 ]; do sleep 100 & i=$((i+1)); echo forked-$i; done; "
              "echo all-forked; sleep 1000")
    started(rt, bundles, cid, ["sh", "-c", script], **with_cgroups_path(path, pids={"limit": 10}))
    try:
        wait_output(rt, cid, "forked-9")
        rt.wait_status(cid, "stopped")
        out = rt.output(cid)
        assert "forked-9\n" in out and "forked-10" not in out and "all-forked" not in out, out
        assert "can't fork" in (rt.logs / f"{cid}.err").read_text()
        assert (pids / "pids.max").read_text().strip() == "10"
        assert keyed((pids / "pids.events").read_text())["max"] >= 1
    finally:
        rt.delete(cid, force=True).ok()
    assert leftovers(path) == []


def test_cpu_quota_throttles_a_busy_loop(rt: Runtime, bundles: BundleFactory,
                                         cid: str) -> None:
    pid = started(rt, bundles, cid, ["sh", "-c", "while :; do :; done"],
                  **resources(cpu={"quota": 10000, "period": 100000}))
    try:
        assert read(pid, "cpu", "cpu.cfs_quota_us") == "10000"
        assert read(pid, "cpu", "cpu.cfs_period_us") == "100000"
        wait_for(lambda: keyed(read(pid, "cpu", "cpu.stat"))["nr_throttled"] >= 2, 10,
                 "nr_throttled >= 2")
        first = keyed(read(pid, "cpu", "cpu.stat"))
        time.sleep(0.5)
        second = keyed(read(pid, "cpu", "cpu.stat"))
        assert second["nr_throttled"] > first["nr_throttled"], (first, second)
        assert second["nr_periods"] > first["nr_periods"], (first, second)
        # 10% of one cpu: over 0.5 s, no more than ~50 ms (generous: 150 ms) of cpu time
        used = int(read(pid, "cpuacct", "cpuacct.usage"))
        time.sleep(0.5)
        used = int(read(pid, "cpuacct", "cpuacct.usage")) - used
        assert used < 150_000_000, used
    finally:
        rt.delete(cid, force=True).ok()


def test_cpu_shares_and_cpuset_written(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    pid = started(rt, bundles, cid, SLEEPER,
                  **resources(cpu={"shares": 512, "cpus": "0", "mems": "0"}))
    try:
        assert read(pid, "cpu", "cpu.shares") == "512"
        assert read(pid, "cpuset", "cpuset.cpus") == "0"
        assert read(pid, "cpuset", "cpuset.mems") == "0"
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Cpus_allowed_list:\t0\n" in status, status
    finally:
        rt.delete(cid, force=True).ok()


# --- devices --------------------------------------------------------------------------
KMSG_PROBE = ("mknod /dev/mykmsg c 1 11 && echo mknod-ok; "
              "if true >/dev/mykmsg; then echo open-ok; fi; "
              "echo x > /dev/null && echo null-ok")


def _mknod_caps() -> dict[str, Any]:
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_MKNOD"]
    return {"process": {"capabilities": {k: caps for k in ("bounding", "effective",
                                                            "permitted")}}}


def test_denied_device_cannot_be_opened(rt: Runtime, bundles: BundleFactory,
                                        token: str) -> None:
    # /dev/kmsg (c 1:11) is in no default rule; opened write-only it needs no CAP_SYSLOG.
    control = rt.run(f"allow-{token}", bundles.make(["sh", "-c", KMSG_PROBE],
                                                     **_mknod_caps())).ok()
    assert control.stdout.split() == ["mknod-ok", "open-ok", "null-ok"], control

    for rules in ([{"allow": False, "access": "rwm"}],  # runc spec's default: deny all
                  [{"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rw"}]):
        config = bundles.config(["sh", "-c", KMSG_PROBE], **_mknod_caps())
        config["linux"]["resources"] = {"devices": rules}
        denied = rt.run(f"deny-{token}", bundles.write(config))
        assert denied.returncode == 0, denied
        # mknod is still allowed ("c *:* m" default), the open is not, /dev/null is
        assert denied.stdout.split() == ["mknod-ok", "null-ok"], (rules, denied)
        assert "Operation not permitted" in denied.stderr, (rules, denied)


def test_config_device_is_allowed_despite_deny_all(rt: Runtime, bundles: BundleFactory,
                                                   cid: str) -> None:
    # runc appends an allow rule for every linux.devices entry after the config's
    # rules, so a node the config asks for stays usable under "deny all".
    config = bundles.config(["sh", "-c", "head -c 4 /dev/myurandom | wc -c"])
    config["linux"]["devices"] = [{"path": "/dev/myurandom", "type": "c", "major": 1,
                                   "minor": 9, "fileMode": 0o666, "uid": 0, "gid": 0}]
    config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    result = rt.run(cid, bundles.write(config)).ok()
    assert result.stdout.strip() == "4", result


# --- where the cgroup goes, and that it goes away -----------------------------------
def _check_placement(rt: Runtime, bundles: BundleFactory, cid: str, cgroups_path: str | None,
                     expected: dict[str, str]) -> None:
    changes = {"linux": {"cgroupsPath": cgroups_path}} if cgroups_path is not None else {}
    pid = started(rt, bundles, cid, SLEEPER, **changes)
    try:
        lines = cgroup_lines(pid)
        assert set(lines) == set(hierarchies()), lines  # a folder in every hierarchy
        assert lines == expected, lines
        for member in container_folders(pid):
            assert member.is_dir(), member
            assert str(pid) in (member / "cgroup.procs").read_text().split(), member
        stored = json.loads((rt.root / cid / "state.json").read_text())["cgroup"]
        assert stored["driver"] == "v1"
        stored_paths = {h[0]: "/" + h[2] for h in stored["hierarchies"]}
        stored_paths[UNIFIED] = "/" + stored["unified"][2]
        assert stored_paths == expected, stored
    finally:
        rt.delete(cid, force=True).ok()
    for path in set(expected.values()):
        assert leftovers(path) == [], path


def test_absolute_cgroups_path_from_each_root(rt: Runtime, bundles: BundleFactory, cid: str,
                                              token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    _check_placement(rt, bundles, cid, path, {name: path for name in hierarchies()})
    assert leftovers(f"/pyruntime-test-{token}") == []  # the parent we made goes too


def test_relative_cgroups_path_under_our_own_cgroup(rt: Runtime, bundles: BundleFactory,
                                                    cid: str, token: str) -> None:
    own = own_cgroups()
    expected = {name: own[name].rstrip("/") + f"/pyruntime-test-{token}/c"
                for name in hierarchies()}
    _check_placement(rt, bundles, cid, f"pyruntime-test-{token}/c", expected)
    for name in hierarchies():
        parent = CGROUP_ROOT / name / own[name].lstrip("/") / f"pyruntime-test-{token}"
        assert not parent.exists(), parent


def test_empty_cgroups_path_is_the_id_under_our_own_cgroup(rt: Runtime, bundles: BundleFactory,
                                                          cid: str) -> None:
    own = own_cgroups()
    expected = {name: own[name].rstrip("/") + f"/{cid}" for name in hierarchies()}
    _check_placement(rt, bundles, cid, None, expected)


def test_create_then_delete_leaves_no_folder(rt: Runtime, bundles: BundleFactory, cid: str,
                                             token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    rt.create(cid, bundles.make(SLEEPER, **with_cgroups_path(
        path, memory={"limit": 64 * MiB}, pids={"limit": 20}))).ok()
    pid = int(rt.state(cid)["pid"])
    assert read(pid, "pids", "pids.max") == "20"
    assert len(leftovers(path)) == len(hierarchies())
    rt.delete(cid).ok()  # created, never started
    assert leftovers(path) == [] and leftovers(f"/pyruntime-test-{token}") == []


# --- kill --all and delete through the cgroup ---------------------------------------
def test_kill_all_kills_background_children(rt: Runtime, bundles: BundleFactory, cid: str,
                                            token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    rt.create(cid, bundles.make(["sh", "-c", "sleep 777 & sleep 1000"], edit=no_pid_namespace,
                                **with_cgroups_path(path))).ok()
    rt.start(cid).ok()
    procs = CGROUP_ROOT / "pids" / path.lstrip("/") / "cgroup.procs"
    wait_for(lambda: len(procs.read_text().split()) == 2, 10, "two processes in the cgroup")
    pids = [int(word) for word in procs.read_text().split()]
    rt("kill", "--all", cid, "KILL").ok()
    assert gone(pids), [p for p in pids if pid_exists(p)]
    rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert leftovers(path) == []


def test_delete_kills_what_the_init_left_behind(rt: Runtime, bundles: BundleFactory, cid: str,
                                                token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    rt.create(cid, bundles.make(["sh", "-c", "sleep 777 & sleep 1000"], edit=no_pid_namespace,
                                **with_cgroups_path(path))).ok()
    init = int(rt.state(cid)["pid"])
    rt.start(cid).ok()
    procs = CGROUP_ROOT / "pids" / path.lstrip("/") / "cgroup.procs"
    wait_for(lambda: len(procs.read_text().split()) == 2, 10, "two processes in the cgroup")
    pids = [int(word) for word in procs.read_text().split()]
    rt.kill(cid, "KILL").ok()  # the init only: no pid namespace, so its child lives on
    rt.wait_status(cid, "stopped")
    orphans = [p for p in pids if p != init]
    assert orphans and all(pid_exists(p) for p in orphans), orphans
    rt.delete(cid).ok()
    assert gone(orphans), orphans
    assert leftovers(path) == []


def test_delete_force_of_a_running_container_without_pid_namespace(
        rt: Runtime, bundles: BundleFactory, cid: str, token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    rt.create(cid, bundles.make(["sh", "-c", "sleep 777 & sleep 1000"], edit=no_pid_namespace,
                                **with_cgroups_path(path))).ok()
    rt.start(cid).ok()
    procs = CGROUP_ROOT / "pids" / path.lstrip("/") / "cgroup.procs"
    wait_for(lambda: len(procs.read_text().split()) == 2, 10, "two processes in the cgroup")
    pids = [int(word) for word in procs.read_text().split()]
    rt.delete(cid, force=True).ok()
    assert gone(pids), pids
    assert leftovers(path) == []
    assert not (rt.root / cid).exists()


# --- pause / resume -------------------------------------------------------------------
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n.tmp; mv /dev/shm/n.tmp /dev/shm/n; done"


def _counter(pid: int) -> int:
    """The container's counter, read from the host through its root (not an exec)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            text = Path(f"/proc/{pid}/root/dev/shm/n").read_text().strip()
            if text.isdigit():
                return int(text)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("no counter in the container's /dev/shm")
        time.sleep(0.02)


def test_pause_freezes_and_resume_thaws(rt: Runtime, bundles: BundleFactory, cid: str,
                                        token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    pid = started(rt, bundles, cid, ["sh", "-c", COUNTER], **with_cgroups_path(path))
    try:
        first = _counter(pid)
        wait_for(lambda: _counter(pid) > first, 5, "the counter moving")

        rt("pause", cid).ok()
        assert rt.status(cid) == "paused"
        assert read(pid, "freezer", "freezer.state") == "FROZEN"
        frozen = _counter(pid)
        time.sleep(0.5)
        assert _counter(pid) == frozen

        refused = rt("exec", cid, "true", timeout=10)
        assert refused.returncode == 255, refused
        assert_one_line_error(refused, "cannot exec in a paused container")
        again = rt("pause", cid)
        assert_one_line_error(again, "container already paused")
        assert rt.status(cid) == "paused"

        rt("resume", cid).ok()
        assert rt.status(cid) == "running"
        assert read(pid, "freezer", "freezer.state") == "THAWED"
        thawed = _counter(pid)
        wait_for(lambda: _counter(pid) > thawed, 5, "the counter moving again")
        assert_one_line_error(rt("resume", cid), "container not paused")
    finally:
        rt.delete(cid, force=True).ok()


def test_pause_of_a_created_container_is_refused(rt: Runtime, bundles: BundleFactory,
                                                 cid: str) -> None:
    rt.create(cid, bundles.make(SLEEPER)).ok()
    pid = int(rt.state(cid)["pid"])
    try:
        assert_one_line_error(rt("pause", cid), "container not running")
        assert rt.status(cid) == "created"
        assert read(pid, "freezer", "freezer.state") == "THAWED"
        assert_one_line_error(rt("resume", cid), "container not paused")
    finally:
        rt.delete(cid, force=True).ok()


def test_delete_force_of_a_paused_container(rt: Runtime, bundles: BundleFactory, cid: str,
                                            token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    pid = started(rt, bundles, cid, ["sh", "-c", "sleep 1000 & " + COUNTER],
                  **with_cgroups_path(path))
    _counter(pid)
    procs = CGROUP_ROOT / "freezer" / path.lstrip("/") / "cgroup.procs"
    rt("pause", cid).ok()
    pids = [int(word) for word in procs.read_text().split()]
    assert pid in pids and len(pids) >= 2, pids
    rt.delete(cid, force=True).ok()
    assert gone(pids), pids
    assert leftovers(path) == [] and leftovers(f"/pyruntime-test-{token}") == []


# --- ps -------------------------------------------------------------------------------
def test_ps_lists_the_init_and_its_children(rt: Runtime, bundles: BundleFactory,
                                            cid: str) -> None:
    pid = started(rt, bundles, cid, ["sh", "-c", "sleep 1001 & sleep 1002 & wait"])
    try:
        wait_for(lambda: len(json.loads(rt("ps", "-f", "json", cid).ok().stdout)) == 3, 10,
                 "three processes")
        listed = json.loads(rt("ps", "-f", "json", cid).ok().stdout)
        assert all(isinstance(p, int) for p in listed) and pid in listed, listed
        own = cgroup_lines(pid)
        for member in listed:
            assert cgroup_lines(member) == own, member
        commands = {Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[1] for p in listed
                    if p != pid}
        assert commands == {b"1001", b"1002"}, commands

        table = rt("ps", cid).ok().stdout.splitlines()
        header = table[0].split()
        assert header[:2] == ["UID", "PID"], table
        column = header.index("PID")
        assert sorted(int(row.split()[column]) for row in table[1:]) == sorted(listed), table
    finally:
        rt.delete(cid, force=True).ok()


def test_ps_of_an_unknown_container(rt: Runtime, token: str) -> None:
    assert_one_line_error(rt("ps", f"nope-{token}"), "does not exist")
    assert_one_line_error(rt("ps", "-f", "json", f"nope-{token}"), "does not exist")


# --- update ---------------------------------------------------------------------------
def test_update_flags_file_and_stdin(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    pid = started(rt, bundles, cid, SLEEPER,
                  **resources(memory={"limit": 64 * MiB}, pids={"limit": 20},
                              cpu={"shares": 1024}))
    try:
        rt("update", "--memory", "128m", "--pids-limit", "50", cid).ok()
        assert read(pid, "memory", "memory.limit_in_bytes") == str(128 * MiB)
        assert read(pid, "pids", "pids.max") == "50"

        changes = bundles.base_dir / "resources.json"
        changes.write_text(json.dumps({"cpu": {"shares": 256}, "pids": {"limit": 40}}))
        rt("update", "-r", str(changes), cid).ok()
        assert read(pid, "cpu", "cpu.shares") == "256"
        assert read(pid, "pids", "pids.max") == "40"
        assert read(pid, "memory", "memory.limit_in_bytes") == str(128 * MiB)  # kept

        rt("update", "-r", "-", cid, input=json.dumps({"memory": {"limit": 96 * MiB}})).ok()
        assert read(pid, "memory", "memory.limit_in_bytes") == str(96 * MiB)
        assert read(pid, "pids", "pids.max") == "40"
        assert read(pid, "cpu", "cpu.shares") == "256"

        rt("update", "--pids-limit", "30", cid).ok()  # a second update keeps the rest
        assert read(pid, "pids", "pids.max") == "30"
        assert read(pid, "memory", "memory.limit_in_bytes") == str(96 * MiB)
        assert read(pid, "cpu", "cpu.shares") == "256"

        kept = json.loads((rt.root / cid / "state.json").read_text())
        assert kept["config"]["linux"]["resources"] == {
            "memory": {"limit": 96 * MiB}, "pids": {"limit": 30}, "cpu": {"shares": 256}}
    finally:
        rt.delete(cid, force=True).ok()


def test_update_refuses_bad_values_and_changes_nothing(rt: Runtime, bundles: BundleFactory,
                                                       cid: str) -> None:
    pid = started(rt, bundles, cid, SLEEPER,
                  **resources(memory={"limit": 64 * MiB}, pids={"limit": 20}))

    def limits() -> tuple[str, str]:
        return (read(pid, "memory", "memory.limit_in_bytes"), read(pid, "pids", "pids.max"))

    try:
        before = limits()
        assert before == (str(64 * MiB), "20")
        assert_one_line_error(rt("update", "--memory", "lots", "--pids-limit", "50", cid),
                              "--memory", "lots")
        assert limits() == before
        assert_one_line_error(rt("update", "-r", "-", cid,
                                 input=json.dumps({"memory": {"limit": -5}})),
                              "memory.limit")
        assert limits() == before
        # a good memory limit with a bad pids limit: nothing at all is written
        assert_one_line_error(rt("update", "-r", "-", cid, input=json.dumps(
            {"memory": {"limit": 128 * MiB}, "pids": {"limit": "many"}})), "pids.limit")
        assert limits() == before
        assert_one_line_error(rt("update", "-r", "-", cid, input="{not json"), "json")
        assert limits() == before
        kept = json.loads((rt.root / cid / "state.json").read_text())
        assert kept["config"]["linux"]["resources"] == {"memory": {"limit": 64 * MiB},
                                                        "pids": {"limit": 20}}
    finally:
        rt.delete(cid, force=True).ok()


def _memsw_container(rt: Runtime, bundles: BundleFactory, cid: str) -> int:
    if not (CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes").exists():
        pytest.skip("no swap accounting (memory.memsw.*) on this kernel")
    pid = started(rt, bundles, cid, SLEEPER,
                  **resources(memory={"limit": 64 * MiB, "swap": 64 * MiB}))
    assert read(pid, "memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)
    return pid


def test_update_raises_memory_and_swap_together(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    pid = _memsw_container(rt, bundles, cid)
    try:
        result = rt("update", "--memory", "128m", "--memory-swap", "256m", cid)
        assert result.returncode == 0, result
        assert read(pid, "memory", "memory.limit_in_bytes") == str(128 * MiB)
        assert read(pid, "memory", "memory.memsw.limit_in_bytes") == str(256 * MiB)
    finally:
        rt.delete(cid, force=True).ok()


def test_update_memory_unlimited_lifts_the_swap_limit(rt: Runtime, bundles: BundleFactory,
                                                      cid: str) -> None:
    pid = _memsw_container(rt, bundles, cid)
    unlimited = (CGROUP_ROOT / "memory" / "memory.limit_in_bytes").read_text().strip()
    try:
        result = rt("update", "--memory", "-1", cid)
        assert result.returncode == 0, result
        assert read(pid, "memory", "memory.limit_in_bytes") == unlimited
        assert read(pid, "memory", "memory.memsw.limit_in_bytes") == unlimited
    finally:
        rt.delete(cid, force=True).ok()


def test_update_lowers_memory_and_swap_together(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    pid = _memsw_container(rt, bundles, cid)  # lowering: memory first fits the kernel
    try:
        rt("update", "--memory", "32m", "--memory-swap", "48m", cid).ok()
        assert read(pid, "memory", "memory.limit_in_bytes") == str(32 * MiB)
        assert read(pid, "memory", "memory.memsw.limit_in_bytes") == str(48 * MiB)
    finally:
        rt.delete(cid, force=True).ok()


def test_update_of_a_stopped_container_is_refused(rt: Runtime, bundles: BundleFactory,
                                                  cid: str) -> None:
    rt.create(cid, bundles.make(["true"], **resources(pids={"limit": 20}))).ok()
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    assert_one_line_error(rt("update", "--pids-limit", "50", cid), "stopped")
    rt.delete(cid).ok()
    assert_one_line_error(rt("update", "--pids-limit", "50", cid), "does not exist")


# --- exec -----------------------------------------------------------------------------
def test_exec_joins_the_containers_cgroup(rt: Runtime, bundles: BundleFactory, cid: str,
                                          token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    pid = started(rt, bundles, cid, SLEEPER, **with_cgroups_path(path, pids={"limit": 20}))
    try:
        pid_file = bundles.base_dir / "exec.pid"
        exec_detached(rt, "--pid-file", str(pid_file), cid, "sleep", "999")
        exec_pid = int(pid_file.read_text())
        assert exec_pid != pid
        assert cgroup_lines(exec_pid) == cgroup_lines(pid)
        assert cgroup_lines(exec_pid)["memory"] == path
        assert sorted(json.loads(rt("ps", "-f", "json", cid).ok().stdout)) == sorted(
            [pid, exec_pid])
        assert read(pid, "pids", "pids.current") == "2"
    finally:
        rt.delete(cid, force=True).ok()
    assert leftovers(path) == []


# --- refused input --------------------------------------------------------------------
def _refused(rt: Runtime, bundles: BundleFactory, cid: str, changes: dict[str, Any],
             *needles: str) -> str:
    result = rt.create(cid, bundles.make(SLEEPER, **changes))
    message = assert_one_line_error(result, *needles)
    assert not (rt.root / cid).exists()
    return message


@pytest.mark.parametrize("cgroups_path", ["../escape-{token}", "/pyruntime-test-{token}/../x",
                                          "pyruntime-test-{token}/a/../../b"])
def test_cgroups_path_with_dotdot_is_refused(rt: Runtime, bundles: BundleFactory, cid: str,
                                             token: str, cgroups_path: str) -> None:
    _refused(rt, bundles, cid, {"linux": {"cgroupsPath": cgroups_path.format(token=token)}},
             "linux.cgroupsPath", "..")
    assert token_folders(token) == []


def test_systemd_style_cgroups_path_is_refused(rt: Runtime, bundles: BundleFactory, cid: str,
                                               token: str) -> None:
    message = _refused(rt, bundles, cid,
                       {"linux": {"cgroupsPath": f"system.slice:pyruntime:{token}"}},
                       "linux.cgroupsPath")
    assert "systemd" in message, message


def test_resource_of_a_missing_controller_is_refused(rt: Runtime, bundles: BundleFactory,
                                                     cid: str, token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    if (CGROUP_ROOT / "hugetlb").is_dir():  # then a page size the kernel lacks
        limits = [{"pageSize": "4KB", "limit": 4 * MiB}]
        needles: tuple[str, ...] = ("hugetlb",)
    else:
        limits = [{"pageSize": "2MB", "limit": 4 * MiB}]
        needles = ("linux.resources.hugepageLimits", "hugetlb")
    _refused(rt, bundles, cid, with_cgroups_path(path, hugepageLimits=limits), *needles)
    assert leftovers(path) == [] and leftovers(f"/pyruntime-test-{token}") == []


def test_unified_resources_are_refused_on_v1(rt: Runtime, bundles: BundleFactory, cid: str,
                                             token: str) -> None:
    path = f"/pyruntime-test-{token}/c"
    _refused(rt, bundles, cid, with_cgroups_path(path, unified={"pids.max": "10"}),
             "linux.resources.unified")
    assert leftovers(path) == [] and leftovers(f"/pyruntime-test-{token}") == []
