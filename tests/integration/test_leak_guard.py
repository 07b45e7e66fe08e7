"""The leak guard itself: if it could not see a leak, every "nothing is left"
claim of the other tests would be empty.  Each test leaks on purpose, checks
that ``find_leaks`` reports it, then cleans up so the real guard passes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import Snapshot, clean_up, find_leaks
from .helpers import BundleFactory, Runtime, pid_exists

pytestmark = pytest.mark.root


def test_guard_sees_a_container_left_behind(rt: Runtime, bundles: BundleFactory, cid: str,
                                            token: str, work_dir: Path) -> None:
    before = Snapshot(rt.root, token, work_dir)
    rt.create(cid, bundles.make(["true"])).ok()
    pid = rt.state(cid)["pid"]
    leaks = find_leaks(before, rt, token, work_dir, grace=0.2)
    assert leaks.state_entries == [cid]
    assert pid in leaks.processes, "the waiting init carries the token in its environment"
    clean_up(leaks, rt)
    assert not pid_exists(pid)
    assert not (rt.root / cid).exists()


def test_guard_sees_a_running_process_left_behind(rt: Runtime, bundles: BundleFactory,
                                                  cid: str, token: str, work_dir: Path) -> None:
    """A container process that exec'd (no token in its command line) is still found
    through its environment."""
    before = Snapshot(rt.root, token, work_dir)
    rt.run_detached(cid, bundles.make(["sleep", "1000"])).ok()
    pid = rt.state(cid)["pid"]
    leaks = find_leaks(before, rt, token, work_dir, grace=0.2)
    assert pid in leaks.processes
    clean_up(leaks, rt)
    assert not pid_exists(pid)


def test_guard_sees_a_mount_left_behind(rt: Runtime, test_dir: Path, token: str,
                                        work_dir: Path) -> None:
    before = Snapshot(rt.root, token, work_dir)
    target = test_dir / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leak", str(target)], check=True, timeout=10)
    leaks = find_leaks(before, rt, token, work_dir, grace=0)
    assert [point for _, point in leaks.mounts] == [str(target)]
    clean_up(leaks, rt)
    assert not find_leaks(before, rt, token, work_dir, grace=0)


def test_guard_sees_a_cgroup_left_behind(rt: Runtime, token: str, work_dir: Path) -> None:
    hierarchy = next((p for p in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"),
                                  Path("/sys/fs/cgroup")) if (p / "cgroup.procs").exists()), None)
    if hierarchy is None:
        pytest.skip("no writable cgroup hierarchy")
    before = Snapshot(rt.root, token, work_dir)
    leaked = hierarchy / f"c-{token}"
    leaked.mkdir()
    try:
        leaks = find_leaks(before, rt, token, work_dir, grace=0)
        assert leaks.cgroups == [str(leaked)]
    finally:
        leaked.rmdir()
    assert not find_leaks(before, rt, token, work_dir, grace=0)
