"""The cgroup v2 device filter and ``events`` for real, in one VM boot (pure cgroup v2).

This file is both the test (on the host) and the script the guest runs
(``python -m vm.test_vm_devices_events`` with tests/ on the path): the guest
drives pyruntime's CLI on busybox containers and prints ``key=value`` lines
(values JSON), which the tests below assert.

What the guest checks, and why this way:
* the driver alone: a cgroup with [deny all, allow c 1:3 rwm] gets one attached
  device program (BPF_PROG_QUERY); a shell in it writes /dev/null, is refused
  /dev/zero (EPERM) and refused mknod (EPERM, though root: the cgroup says no);
* containers with resources.devices [deny all] and linux.devices /dev/myurandom
  (c 1:9).  runc's default allow list has c 1:9 and ``c *:* m`` and every
  linux.devices entry gets an allow rule, so /dev/myurandom is readable and
  mknod is the cgroup's to allow: it is capabilities that refuse mknod without
  CAP_MKNOD.  The denial is shown on a device nobody allowed: with CAP_MKNOD,
  ``mknod c 42:0`` works and opening it fails with EPERM (the filter); the
  control run adds an allow rule for c 42:0 and the open then gets ENXIO (no
  driver for major 42: the filter let it through);
* ``events --interval 200ms``: stats events, then an ``oom`` event when the
  container fills a tmpfs past memory.max, then the end when it stops.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

MiB = 1024 * 1024
GUEST_MODULE = "vm.test_vm_devices_events"


# --- the host side ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def guest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The one boot; under xdist the first worker boots and the others read its result."""
    from .harness import REPO_ROOT, VMResult, run_in_vm

    python = REPO_ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no {python} (run make setup)")

    def boot() -> VMResult:
        return run_in_vm([str(python), "-m", GUEST_MODULE], timeout=300,
                         env={"PYTHONPATH": str(REPO_ROOT / "tests")})

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        result = boot()
    else:
        shared = tmp_path_factory.getbasetemp().parent / "vm-devices-events.json"
        with open(shared.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if shared.exists():
                result = VMResult(**json.loads(shared.read_text()))
            else:
                result = boot()
                shared.write_text(json.dumps(dataclasses.asdict(result)))
    assert result.exit_status == 0, result
    facts: dict[str, Any] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key] = json.loads(value)
    exceptions = {k: v for k, v in facts.items() if k.endswith("_exception")}
    assert not exceptions, (exceptions, result.stderr[-3000:])
    return facts


def _needs_bpf(facts: dict[str, Any]) -> None:
    if facts.get("bpf_unavailable"):
        pytest.skip(f"the VM's kernel refuses cgroup device programs: {facts['bpf_unavailable']}")


@pytest.mark.vm
def test_driver_filter_is_attached_and_enforced(guest: dict[str, Any]) -> None:
    _needs_bpf(guest)
    assert guest["direct_attached"] == 1, guest
    assert guest["direct_null"] == "ok", guest
    assert "Operation not permitted" in guest["direct_zero"], guest
    assert "Operation not permitted" in guest["direct_mknod"], guest


@pytest.mark.vm
def test_container_with_deny_all_and_a_config_device(guest: dict[str, Any]) -> None:
    _needs_bpf(guest)
    plain = guest["plain"]
    assert plain["create_rc"] == 0 and plain["attached"] == 1, plain
    out = plain["output"]
    assert "null=ok" in out and "myurandom=4" in out, plain
    # runc's default caps have no CAP_MKNOD: mknod is refused before the cgroup is asked
    assert "mknod19=no" in out and "Operation not permitted" in out, plain


@pytest.mark.vm
def test_device_nobody_allowed_is_refused_and_the_control_passes(guest: dict[str, Any]) -> None:
    _needs_bpf(guest)
    denied, allowed = guest["denied"], guest["allowed"]
    assert "mknod42=ok" in denied["output"], denied  # runc's "c *:* m"
    assert "open42: Operation not permitted" in denied["output"], denied
    assert "mknod42=ok" in allowed["output"], allowed
    assert "open42: No such device or address" in allowed["output"], allowed  # no driver


@pytest.mark.vm
def test_events_stats_and_oom_on_v2(guest: dict[str, Any]) -> None:
    assert guest["stats_rc"] == 0, guest
    stats = guest["stats"]
    assert stats["type"] == "stats" and stats["data"]["memory"]["usage"]["limit"] == 64 * MiB
    assert stats["data"]["pids"]["limit"] == 20 and stats["data"]["pids"]["current"] >= 1
    assert guest["events_rc"] == 0, guest
    kinds = [event["type"] for event in guest["events"]]
    assert "oom" in kinds, guest
    assert kinds[:kinds.index("oom")].count("stats") >= 2, kinds
    assert guest["status_after_events"] == "stopped", guest
    assert guest["memory_events_oom_kill"] >= 1, guest


# --- the guest side ------------------------------------------------------------------------
WORK = Path("/tmp/devev")
ROOTFS = WORK / "rootfs"
STATE = WORK / "state"
CG = Path("/sys/fs/cgroup")


def emit(key: str, value: Any) -> None:
    print(f"{key}={json.dumps(value)}", flush=True)


def _pyruntime(*args: str, out: Path | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """pyruntime's CLI; ``out``: stdout and stderr to a file (create leaves a process
    holding them, so a pipe would never reach EOF)."""
    repo = Path(__file__).resolve().parents[2]
    argv = [str(repo / ".venv" / "bin" / "pyruntime"), "--root", str(STATE), *args]
    if out is None:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    with open(out, "w") as handle:
        done = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(argv, done.returncode, out.read_text(), "")


def _config(name: str, script: str, resources: dict[str, Any], caps: list[str],
            devices: list[dict[str, Any]] | None = None) -> Path:
    config = {
        "ociVersion": "1.3.0",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0},
                    "args": ["sh", "-c", script], "env": ["PATH=/bin:/sbin:/usr/bin"],
                    "cwd": "/", "noNewPrivileges": True,
                    "capabilities": {k: caps for k in ("bounding", "effective", "permitted")}},
        "root": {"path": str(ROOTFS), "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "mode=755", "size=65536k"]},
                   {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                    "options": ["nosuid", "nodev", "mode=1777", "size=512m"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
                  "cgroupsPath": f"/pyruntime-devev/{name}", "resources": resources,
                  "devices": devices or []},
    }
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _status(container_id: str) -> str:
    done = _pyruntime("state", container_id)
    return str(json.loads(done.stdout)["status"]) if done.returncode == 0 else done.stderr


def _attached(folder: Path) -> int:
    from pyruntime.syscalls import _bpf

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return len(_bpf.attached_device_programs(fd, str(folder)))
    finally:
        os.close(fd)


def _container(name: str, script: str, resources: dict[str, Any], caps: list[str],
               devices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """create, count the programs on its cgroup, start, wait until it stops, delete."""
    bundle = _config(name, script, resources, caps, devices)
    log = WORK / f"{name}.out"
    created = _pyruntime("create", "--bundle", str(bundle), name, out=log)
    facts: dict[str, Any] = {"create_rc": created.returncode}
    if created.returncode == 0:
        facts["attached"] = _attached(CG / "pyruntime-devev" / name)
        facts["start_rc"] = _pyruntime("start", name).returncode
        deadline = time.monotonic() + 60
        while _status(name) != "stopped" and time.monotonic() < deadline:
            time.sleep(0.1)
        _pyruntime("delete", "--force", name)
    facts["output"] = log.read_text()
    return facts


def _direct() -> None:
    """The driver without a container: a shell in a filtered cgroup."""
    from pyruntime.cgroups import CgroupV2
    from pyruntime.errors import PyRuntimeError

    manager = CgroupV2(str(CG), "devev-direct")
    manager.create()
    try:
        manager.apply_device_rules([("devices.deny", "a *:* rwm"),
                                    ("devices.allow", "c 1:3 rwm")])
    except PyRuntimeError as exc:
        emit("bpf_unavailable", str(exc))
        manager.remove()
        return
    emit("direct_attached", _attached(Path(manager.folder)))

    def in_cgroup(command: str) -> str:
        script = f"echo $$ > {manager.folder}/cgroup.procs && {command}"
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
        return "ok" if done.returncode == 0 else done.stderr.strip()

    emit("direct_null", in_cgroup("echo x > /dev/null"))
    emit("direct_zero", in_cgroup("head -c 1 /dev/zero"))
    emit("direct_mknod", in_cgroup(f"mknod {WORK}/n19 c 1 9"))
    manager.remove()


def _devices() -> None:
    myurandom = [{"path": "/dev/myurandom", "type": "c", "major": 1, "minor": 9,
                  "fileMode": 0o666, "uid": 0, "gid": 0}]
    deny_all = {"devices": [{"allow": False, "access": "rwm"}]}
    checks = ("echo hi > /dev/null && echo null=ok; "
              "echo myurandom=$(head -c 4 /dev/myurandom | wc -c); "
              "mknod /dev/n19 c 1 9 && echo mknod19=ok || echo mknod19=no; ")
    emit("plain", _container("plain", checks, deny_all, ["CAP_KILL"], myurandom))
    probe = ("mknod /dev/x42 c 42 0 && echo mknod42=ok; "
             "head -c 1 /dev/x42 2>&1 | sed 's/^.*: /open42: /'")
    emit("denied", _container("denied", probe, deny_all, ["CAP_KILL", "CAP_MKNOD"], myurandom))
    allow42 = {"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 42, "minor": 0,
                            "access": "r"}]}
    emit("allowed", _container("allowed", probe, allow42, ["CAP_KILL", "CAP_MKNOD"]))


def _events() -> None:
    script = "sleep 2; head -c 200m /dev/zero > /dev/shm/x; echo head=$?; exit 0"
    resources = {"memory": {"limit": 64 * MiB, "swap": 64 * MiB}, "pids": {"limit": 20}}
    bundle = _config("oom", script, resources, ["CAP_KILL"])
    created = _pyruntime("create", "--bundle", str(bundle), "oom", out=WORK / "oom.out")
    emit("oom_create_rc", created.returncode)
    stats = _pyruntime("events", "--stats", "oom")
    emit("stats_rc", stats.returncode)
    emit("stats", json.loads(stats.stdout) if stats.returncode == 0 else stats.stderr)
    repo = Path(__file__).resolve().parents[2]
    watcher = subprocess.Popen([str(repo / ".venv" / "bin" / "pyruntime"), "--root", str(STATE),
                                "events", "--interval", "200ms", "oom"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the watcher's python starts slowly under TCG
    _pyruntime("start", "oom")
    try:
        out, err = watcher.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        watcher.kill()
        out, err = watcher.communicate()
    emit("events_rc", watcher.returncode)
    emit("events_stderr", err)
    emit("events", [json.loads(line) for line in out.splitlines() if line.strip()])
    emit("status_after_events", _status("oom"))
    events_file = CG / "pyruntime-devev" / "oom" / "memory.events"
    counters = dict(line.split() for line in events_file.read_text().splitlines())
    emit("memory_events_oom_kill", int(counters.get("oom_kill", 0)))
    emit("oom_output", (WORK / "oom.out").read_text())
    _pyruntime("delete", "--force", "oom")


def guest_main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo))
    built = subprocess.run(["sh", str(repo / "bundles" / "build-rootfs.sh"), str(ROOTFS)],
                           capture_output=True, text=True, timeout=120)
    emit("rootfs_rc", built.returncode)
    for name, step in (("direct", _direct), ("devices", _devices), ("events", _events)):
        try:
            step()
        except Exception as exc:  # reported to the host as a value, the boot goes on
            emit(f"{name}_exception", f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(guest_main())
