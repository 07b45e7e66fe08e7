"""Runs INSIDE the VM (root, pure cgroup v2 at /sys/fs/cgroup): pyruntime's own CLI
drives a busybox container with limits, and this prints what the v2 host shows as
``key=value`` lines (one line each, values JSON-encoded when not plain words).

Not a test module: test_vm_pyruntime_cgroups.py runs it with the venv's python
through the guest's view of the checkout.  Every step goes on after a failure, so
that one boot reports everything; the test asserts the lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYRUNTIME = str(REPO / ".venv" / "bin" / "pyruntime")
WORK = Path("/tmp/vm-cg")
ROOTFS = WORK / "rootfs"
STATE = WORK / "state"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUPS_PATH = "/pyruntime-vm/c1"
MiB = 1024 * 1024


def emit(key: str, value: Any) -> None:
    text = value if isinstance(value, str) and value and "\n" not in value and \
        " " not in value else json.dumps(value)
    print(f"{key}={text}", flush=True)


def pyruntime(*args: str, stdin: str | None = None, timeout: float = 60,
              detach_streams: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [PYRUNTIME, "--root", str(STATE), *args]
    if detach_streams:  # processes left running keep the streams they get: files, not pipes
        out, err = WORK / "detached.out", WORK / "detached.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            done = subprocess.run(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                  timeout=timeout, text=True)
        return subprocess.CompletedProcess(argv, done.returncode, out.read_text(),
                                           err.read_text())
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def config(args: list[str], resources: dict[str, Any], cgroups_path: str,
           pid_namespace: bool = True) -> dict[str, Any]:
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")
                  if pid_namespace or t != "pid"]
    return {
        "ociVersion": "1.3.0",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/bin:/sbin:/usr/bin"], "cwd": "/",
                    "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective",
                                                               "permitted")},
                    "noNewPrivileges": True},
        "root": {"path": str(ROOTFS), "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "mode=755", "size=65536k"]}],
        "linux": {"namespaces": namespaces, "cgroupsPath": cgroups_path,
                  "resources": resources},
    }


def bundle(name: str, cfg: dict[str, Any]) -> str:
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    return str(folder)


def status(container_id: str) -> str:
    done = pyruntime("state", container_id)
    if done.returncode != 0:
        return f"error:{done.stderr.strip()}"
    return str(json.loads(done.stdout)["status"])


def read(folder: Path, name: str) -> str:
    try:
        return (folder / name).read_text().strip()
    except OSError as exc:
        return f"error:{exc.strerror}"


def keyed(text: str) -> dict[str, int]:
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            result[key] = int(value)
    return result


def alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] not in ("Z", "X")


def wait(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def step(name: str, func: Any) -> None:
    """Run one group of checks; an exception is reported, not fatal."""
    try:
        func()
    except Exception as exc:  # noqa: BLE001 - reported to the host as a value
        emit(f"{name}_exception", f"{type(exc).__name__}: {exc}")


def main() -> int:
    start = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(["sh", str(REPO / "bundles" / "build-rootfs.sh"), str(ROOTFS)],
                           capture_output=True, text=True, timeout=60)
    emit("rootfs_rc", built.returncode)
    emit("mode", Path("/proc/self/mountinfo").read_text().count(" - cgroup2 "))
    resources = {"memory": {"limit": 32 * MiB}, "pids": {"limit": 10},
                 "cpu": {"quota": 10000, "period": 100000}}
    # no pid namespace: "sleep 777" outlives a kill of the init alone, so only a
    # kill of the whole cgroup (kill --all) takes both
    c1 = bundle("c1", config(["sh", "-c", "sleep 777 & exec sleep 1000"], resources,
                             CGROUPS_PATH, pid_namespace=False))
    created = pyruntime("create", "--bundle", c1, "c1", detach_streams=True)
    emit("create_rc", created.returncode)
    pid = json.loads(pyruntime("state", "c1").stdout or "{}").get("pid", 0)
    emit("start_rc", pyruntime("start", "c1").returncode)
    line = Path(f"/proc/{pid}/cgroup").read_text().strip() if pid else ""
    emit("proc_cgroup", line)
    folder = CGROUP_ROOT / line.removeprefix("0::").lstrip("/")
    emit("folder_exists", folder.is_dir() and folder != CGROUP_ROOT)

    def limits() -> None:
        emit("memory_max", read(folder, "memory.max"))
        emit("pids_max", read(folder, "pids.max"))
        emit("cpu_max", read(folder, "cpu.max"))
        emit("init_in_procs", str(pid) in read(folder, "cgroup.procs").split())

    def throttling() -> None:
        """cpu.max "10000 100000" = 10% of a cpu: a busy second gets throttled."""
        before = keyed(read(folder, "cpu.stat")).get("nr_throttled", 0)
        pyruntime("exec", "c1", "timeout", "1", "sh", "-c", "while :; do :; done")
        emit("throttled_more", keyed(read(folder, "cpu.stat")).get("nr_throttled", 0) > before)

    def oom() -> None:
        # dd's 100 MiB buffer is filled by read(2): far past 32 MiB, OOM-killed
        hog = pyruntime("exec", "c1", "dd", "if=/dev/zero", "of=/dev/null", "bs=100M",
                        "count=1")
        emit("oom_exec_rc", hog.returncode)
        emit("oom_kill", keyed(read(folder, "memory.events")).get("oom_kill", 0))
        emit("init_alive_after_oom", alive(pid))

    def pids_limit() -> None:
        forks = pyruntime("exec", "c1", "sh", "-c",
                          "i=0; while [ $i -lt 20 ]; do sleep 300 & i=$((i+1)); done",
                          detach_streams=True)
        emit("forks_rc", forks.returncode)
        emit("forks_stderr_cant_fork", "can't fork" in forks.stderr)
        emit("pids_events_max", keyed(read(folder, "pids.events")).get("max", 0))

    def update() -> None:
        emit("update_rc", pyruntime("update", "--memory", "64m", "c1").returncode)
        emit("memory_max_updated", read(folder, "memory.max"))
        emit("pids_max_after_update", read(folder, "pids.max"))

    def pause() -> None:
        emit("pause_rc", pyruntime("pause", "c1").returncode)
        emit("freeze_paused", read(folder, "cgroup.freeze"))
        emit("frozen_paused", keyed(read(folder, "cgroup.events")).get("frozen", -1))
        emit("status_paused", status("c1"))
        refused = pyruntime("exec", "c1", "true")
        emit("exec_paused_rc", refused.returncode)
        emit("exec_paused_stderr", refused.stderr.strip())
        emit("resume_rc", pyruntime("resume", "c1").returncode)
        emit("freeze_resumed", read(folder, "cgroup.freeze"))
        emit("frozen_resumed", keyed(read(folder, "cgroup.events")).get("frozen", -1))
        emit("status_resumed", status("c1"))

    def kill_all() -> None:
        members = [int(w) for w in read(folder, "cgroup.procs").split() if w.isdigit()]
        emit("procs_before_kill", len(members))
        emit("kill_all_rc", pyruntime("kill", "--all", "c1", "KILL").returncode)
        emit("all_gone", wait(lambda: not any(alive(p) for p in members)))
        emit("procs_after_kill", read(folder, "cgroup.procs"))
        emit("status_killed", status("c1"))

    def delete() -> None:
        done = pyruntime("delete", "c1")
        emit("delete_rc", done.returncode)
        emit("delete_stderr", done.stderr.strip())
        emit("folder_after_delete", folder.exists())
        emit("parent_after_delete", (CGROUP_ROOT / "pyruntime-vm").exists())
        emit("state_after_delete", (STATE / "c1").exists())

    def devices_filtered() -> None:
        """Device rules on v2 become an eBPF filter (tests/vm/test_vm_devices_events.py
        checks its effect); here: a container with them runs, and nothing is left."""
        cfg = config(["true"], {"devices": [{"allow": False, "access": "rwm"}]},
                     "/pyruntime-vm-dev/c2")
        done = pyruntime("run", "--bundle", bundle("c2", cfg), "c2")
        emit("devices_rc", done.returncode)
        emit("devices_stderr", done.stderr.strip())
        emit("devices_cgroup_left", (CGROUP_ROOT / "pyruntime-vm-dev").exists())
        emit("devices_state_left", (STATE / "c2").exists())

    for name, func in (("limits", limits), ("throttling", throttling), ("oom", oom), ("pids", pids_limit),
                       ("update", update), ("pause", pause), ("kill", kill_all),
                       ("delete", delete), ("devices", devices_filtered)):
        step(name, func)
    if (STATE / "c1").exists():  # a step failed midway
        pyruntime("delete", "--force", "c1")
    emit("seconds", round(time.monotonic() - start, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
