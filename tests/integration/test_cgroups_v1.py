"""The v1 driver on this host's real hierarchies (hybrid: v1 controllers plus a
controller-less cgroup2 at /sys/fs/cgroup/unified).

Each test makes its own ``pyruntime-test-<token>`` cgroup (relative: under our
own cgroup in each hierarchy) and removes it, processes killed first, even
when the test fails; the leak guard then checks nothing named for us is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyruntime import cgroups
from pyruntime.cgroups import CgroupV1
from pyruntime.errors import ConfigError
from pyruntime.procfs import ProcFS

pytestmark = pytest.mark.root
MiB = 1024 * 1024


def _v1_host() -> bool:
    try:
        return cgroups.detect_mode(ProcFS()) in ("hybrid", "legacy")
    except Exception:
        return False


class Cgroup:
    """A CgroupV1 for this test, plus the processes it started there."""

    def __init__(self, manager: CgroupV1) -> None:
        self.manager = manager
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str]) -> subprocess.Popen[str]:
        """Start ``argv`` gated on a line of stdin, so it acts only once inside."""
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        self.manager.add_pid(process.pid)
        return process

    def file(self, controller: str, name: str) -> str:
        folder = self.manager.folder_of(controller)
        assert folder is not None
        return Path(folder, name).read_text()

    def folders(self) -> list[Path]:
        unified = [self.manager.unified] if self.manager.unified else []
        return [Path(self.manager.root, h.mount, h.path)
                for h in self.manager.hierarchies + unified]

    def close(self) -> None:
        try:
            self.manager.kill()
        except Exception:
            pass
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream:
                    stream.close()
        deadline = time.monotonic() + 5
        while self.manager.pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.manager.remove()


@pytest.fixture
def cgroup(token: str) -> Iterator[Cgroup]:
    if not _v1_host():
        pytest.skip("needs cgroup v1 hierarchies (a hybrid or legacy host)")
    procfs = ProcFS()
    manager = cgroups.manager_for(cgroups.detect_mode(procfs), f"pyruntime-test-{token}",
                                  "unused", procfs)
    assert isinstance(manager, CgroupV1)
    handle = Cgroup(manager)
    try:
        yield handle
    finally:
        handle.close()
        assert [str(p) for p in handle.folders() if p.exists()] == []


def _gated(code: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", "import sys; sys.stdin.readline()\n" + code]


def _release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def test_limits_membership_freeze_kill_remove(cgroup: Cgroup, token: str) -> None:
    cgroups.setup(cgroup.manager, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}})
    assert all(folder.is_dir() for folder in cgroup.folders())
    assert cgroup.file("memory", "memory.limit_in_bytes") == f"{64 * MiB}\n"
    assert cgroup.file("pids", "pids.max") == "20\n"
    sleeper = cgroup.start(["sleep", "60"])
    membership = Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines()
    for hierarchy in cgroup.manager.hierarchies:
        wanted = ",".join(hierarchy.controllers)
        line = [entry for entry in membership if entry.split(":")[1] == wanted]
        assert line and line[0].endswith(f"/pyruntime-test-{token}"), (wanted, membership)
    assert f"0::/pyruntime-test-{token}" in membership or cgroup.manager.unified is None
    assert cgroup.manager.pids() == [sleeper.pid]
    assert cgroup.file("pids", "pids.current") == "1\n"

    cgroup.manager.freeze()
    assert cgroup.file("freezer", "freezer.state") == "FROZEN\n"
    state = [line for line in Path(f"/proc/{sleeper.pid}/status").read_text().splitlines()
             if line.startswith("State:")]
    assert state == ["State:\tD (disk sleep)"]  # a frozen task sleeps uninterruptibly
    cgroup.manager.thaw()
    assert cgroup.file("freezer", "freezer.state") == "THAWED\n"
    assert sleeper.poll() is None

    cgroup.manager.kill()
    assert sleeper.wait(timeout=10) == -9
    stats = cgroup.manager.stats()
    assert stats["memory"]["usage"]["limit"] == 64 * MiB
    assert stats["pids"]["limit"] == 20
    cgroup.close()
    assert [str(p) for p in cgroup.folders() if p.exists()] == []
    cgroup.processes.clear()


FORK_BOMB = """
import os, time
forks = 0
while forks < 100:
    try:
        pid = os.fork()
    except OSError as error:
        print(forks, error.errno, flush=True)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    forks += 1
else:
    print(forks, 0, flush=True)
time.sleep(60)
"""


def test_pids_max_stops_a_fork_bomb(cgroup: Cgroup) -> None:
    cgroups.setup(cgroup.manager, {"pids": {"limit": 20}})
    bomb = cgroup.start(_gated(FORK_BOMB))
    _release(bomb)
    assert bomb.stdout is not None
    forks, error = bomb.stdout.readline().split()
    # 20 tasks: the bomb and 19 children; fork number 20 gets EAGAIN
    assert (int(forks), int(error)) == (19, 11)
    assert cgroup.file("pids", "pids.current") == "20\n"
    assert len(cgroup.manager.pids()) == 20
    cgroup.manager.kill()
    assert bomb.wait(timeout=10) == -9


def test_oom_kill_at_the_memory_limit(cgroup: Cgroup) -> None:
    if "SwapTotal:             0 kB" not in Path("/proc/meminfo").read_text():
        pytest.skip("swap would delay the oom kill")
    cgroups.setup(cgroup.manager, {"memory": {"limit": 64 * MiB}})
    hog = cgroup.start(_gated("bytearray(200 * 1024 * 1024)\nprint('survived')"))
    _release(hog)
    assert hog.wait(timeout=30) == -9
    assert hog.stdout is not None and hog.stdout.read() == ""
    assert int(cgroup.file("memory", "memory.failcnt")) > 0
    oom = dict(line.split() for line in cgroup.file("memory", "memory.oom_control").splitlines())
    assert oom["oom_kill"] == "1" and oom["oom_kill_disable"] == "0"
    assert cgroup.manager.stats()["memory"]["oom_control"]["oom_kill"] == 1


def test_json_round_trip_removes_every_folder(cgroup: Cgroup) -> None:
    cgroups.setup(cgroup.manager, {"pids": {"limit": 5}})
    again = cgroups.from_json(cgroup.manager.to_json())
    assert isinstance(again, CgroupV1)
    again.remove()
    assert [str(p) for p in cgroup.folders() if p.exists()] == []
    cgroup.manager.made.clear()


def test_missing_controller_leaves_nothing(cgroup: Cgroup) -> None:
    if cgroup.manager.folder_of("hugetlb") is not None:
        pytest.skip("this host mounts hugetlb on v1")
    with pytest.raises(ConfigError, match="hugetlb is not mounted"):
        cgroups.setup(cgroup.manager, {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    assert [str(p) for p in cgroup.folders() if p.exists()] == []
    assert os.path.isdir("/sys/fs/cgroup/pids")
