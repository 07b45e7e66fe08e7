"""Runs INSIDE the VM (as root, cgroup2 at /sys/fs/cgroup): exercises the v2
controllers for real and prints one JSON object on its last stdout line.

Not a test module (pytest does not collect it); test_vm_smoke.py runs it with
``python3 tests/vm/guest_cgroup_probe.py`` through the guest's view of the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def join_self() -> None:
    """preexec_fn: the forked child moves itself ("0" = the writer) into CG."""
    (CG / "cgroup.procs").write_text("0")


def keyed(path: Path) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}


def run_in(cg: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    global CG
    CG = cg
    return subprocess.run(argv, preexec_fn=join_self, capture_output=True, text=True, timeout=60)


CG = ROOT
out: dict[str, object] = {}

# memory: a 32 MiB limit, no swap, and a process that touches 256 MiB is OOM-killed.
mem = ROOT / "vm-probe-memory"
mem.mkdir()
out["child_controllers"] = (mem / "cgroup.controllers").read_text().split()
(mem / "memory.max").write_text(str(32 << 20))
(mem / "memory.swap.max").write_text("0")
hog = run_in(mem, [sys.executable, "-c", "b = b'x' * (256 << 20); print(len(b))"])
out["hog_returncode"] = hog.returncode
out["hog_stdout"] = hog.stdout
out["memory_events"] = keyed(mem / "memory.events")
out["memory_max"] = (mem / "memory.max").read_text().strip()

# pids: pids.max=3 counts the python parent, so the third fork fails with EAGAIN.
pids = ROOT / "vm-probe-pids"
pids.mkdir()
(pids / "pids.max").write_text("3")
forker = r"""
import os, time
kids = []
try:
    for _ in range(10):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
except BlockingIOError:
    pass
print(len(kids))
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""
forks = run_in(pids, [sys.executable, "-c", forker])
out["forked"] = forks.stdout.strip()
out["forker_stderr"] = forks.stderr[-500:]
out["pids_events"] = keyed(pids / "pids.events")

# cpu and cpuset: limits are accepted and read back.
cpu = ROOT / "vm-probe-cpu"
cpu.mkdir()
(cpu / "cpu.max").write_text("50000 100000")
(cpu / "cpu.weight").write_text("42")
(cpu / "cpuset.cpus").write_text("0")
out["cpu_max"] = (cpu / "cpu.max").read_text().strip()
out["cpu_weight"] = (cpu / "cpu.weight").read_text().strip()
out["cpuset_effective"] = (cpu / "cpuset.cpus.effective").read_text().strip()
out["io_stat_exists"] = (cpu / "io.stat").exists()
out["freeze_exists"] = (cpu / "cgroup.freeze").exists()

for cg in (mem, pids, cpu):
    cg.rmdir()
out["cleaned"] = not any(cg.exists() for cg in (mem, pids, cpu))
print(json.dumps(out), flush=True)
