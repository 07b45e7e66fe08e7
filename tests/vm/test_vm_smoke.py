"""Smoke tests of the VM harness: the guest has real cgroup v2, runs the host's
python and checkout, keeps its writes to itself and reports exit statuses.

Three boots in all: one probe of the environment (many checks, exit status 7),
one of the controllers at work (OOM kill, pids limit, cpu/cpuset), and one
deliberately broken boot.  Plus cheap checks of the harness itself (no boot).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from . import harness

REPO = harness.REPO_ROOT
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# A path in the checkout that the guest writes and the host must never see.
GUEST_FILE = REPO / "tests" / "vm" / f".guest-write-{uuid.uuid4().hex}"

PROBE = f"""
echo "uid=$(id -u)"
echo "cwd=$(pwd)"
echo "home=$HOME"
echo "path=$PATH"
echo "hostname=$(hostname)"
echo "kernel=$(uname -r)"
echo "rootfs=$(stat -f -c %T /)"
echo "cgroupfs=$(stat -f -c %T /sys/fs/cgroup)"
echo "mountinfo=$(grep ' /sys/fs/cgroup ' /proc/self/mountinfo)"
echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "subtree=$(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "python3=$(python3 -c 'import sys; print(sys.version_info[0])')"
if [ -x {VENV_PYTHON} ]; then
  echo "venv=$({VENV_PYTHON} -c 'import sys, pyruntime; print(sys.prefix, pyruntime.__name__)')"
fi
echo "guest_path={GUEST_FILE}"
echo from-guest > {GUEST_FILE} && echo "guest_file=$(cat {GUEST_FILE})"
echo "results_share=$VM_RESULTS"
echo to-stderr >&2
exit 7
"""


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[harness.VMResult, dict[str, str]]:
    """One boot for all the environment checks, shared by pytest-xdist workers too
    (their basetemps have a common parent), so ``-n 2`` does not boot it twice."""
    def boot() -> harness.VMResult:
        # A list command: exercises the argv form (and its quoting of a whole script).
        return harness.run_in_vm(["/bin/sh", "-c", PROBE], timeout=120)

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        res = boot()  # not distributed: basetemp's parent outlives this session
    else:
        res = _shared_by_workers(tmp_path_factory.getbasetemp().parent / "vm-probe.json", boot)
    facts = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    return res, facts


def _shared_by_workers(shared: Path, boot: Callable[[], harness.VMResult]) -> harness.VMResult:
    """The first xdist worker boots; the others read its result (same session dir)."""
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shared.exists():
            return harness.VMResult(**json.loads(shared.read_text()))
        res = boot()
        shared.write_text(json.dumps(dataclasses.asdict(res)))
        return res


@pytest.mark.vm
def test_exit_status_and_streams_come_back(probe: tuple[harness.VMResult, dict[str, str]]) -> None:
    res, facts = probe
    assert res.exit_status == 7, res
    assert res.stderr.strip() == "to-stderr"
    assert "vm-init: command exited 7" in res.console_log
    assert facts["results_share"] == harness.GUEST_RESULTS


@pytest.mark.vm
def test_runs_as_root_in_the_checkout(probe: tuple[harness.VMResult, dict[str, str]]) -> None:
    _, facts = probe
    assert facts["uid"] == "0"
    assert facts["cwd"] == str(REPO)
    assert facts["home"] == "/root"
    assert "/usr/bin" in facts["path"].split(":")
    assert facts["hostname"] == "pyruntime-vm"
    assert facts["rootfs"] == "overlayfs"


@pytest.mark.vm
def test_cgroup2_mounted_with_all_controllers_enabled(
    probe: tuple[harness.VMResult, dict[str, str]],
) -> None:
    _, facts = probe
    assert facts["cgroupfs"] == "cgroup2fs"
    assert " - cgroup2 " in facts["mountinfo"], facts["mountinfo"]
    controllers = facts["controllers"].split()
    assert {"memory", "pids", "cpu", "io", "cpuset"} <= set(controllers), controllers
    assert sorted(facts["subtree"].split()) == sorted(controllers)


@pytest.mark.vm
def test_host_python_and_venv_run(probe: tuple[harness.VMResult, dict[str, str]]) -> None:
    _, facts = probe
    assert facts["python3"] == "3"
    if not VENV_PYTHON.exists():
        pytest.skip(f"no {VENV_PYTHON} on the host (run make setup)")
    prefix, module = facts["venv"].split()
    assert Path(prefix) == REPO / ".venv" and module == "pyruntime"


@pytest.mark.vm
def test_guest_writes_do_not_reach_the_host(probe: tuple[harness.VMResult, dict[str, str]]) -> None:
    _, facts = probe
    guest_path = Path(facts["guest_path"])
    assert guest_path.parent == REPO / "tests" / "vm"
    assert facts["guest_file"] == "from-guest"  # the guest could write there...
    assert not guest_path.exists()  # ...and the host never sees it


@pytest.mark.vm
def test_v2_controllers_enforce_limits() -> None:
    res = harness.run_in_vm(["python3", "tests/vm/guest_cgroup_probe.py"], timeout=120).check()
    out = json.loads(res.stdout.splitlines()[-1])
    assert {"memory", "pids", "cpu", "cpuset"} <= set(out["child_controllers"])
    # memory.max: the hog is OOM-killed (SIGKILL) and memory.events counts it.
    assert out["memory_max"] == str(32 << 20)
    assert out["hog_returncode"] == -9, out
    assert out["memory_events"]["oom_kill"] >= 1, out
    # pids.max=3 (the forker counts as one): two forks succeed, then EAGAIN.
    assert out["forked"] == "2", out
    assert out["pids_events"]["max"] >= 1, out
    assert out["cpu_max"] == "50000 100000"
    assert out["cpu_weight"] == "42"
    assert out["cpuset_effective"] == "0"
    assert out["io_stat_exists"] and out["freeze_exists"]
    assert out["cleaned"]


@pytest.mark.vm
def test_boot_failure_is_an_error_with_the_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = harness.ensure_built()
    bad = tmp_path / "initrd.img"
    bad.write_bytes(b"not an initramfs at all\n" * 64)
    monkeypatch.setattr(harness, "_IMAGE", dataclasses.replace(image, initrd=bad))
    with pytest.raises(harness.VMBootError) as err:
        harness.run_in_vm("true", timeout=60)
    message = str(err.value)
    assert "without reporting an exit status" in message
    assert "Kernel panic" in message  # the console tail is in the error


# --- the harness itself, no boot --------------------------------------------------


def test_missing_qemu_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name: None if name == harness.QEMU else real_which(name)
    )
    with pytest.raises(harness.VMUnavailable, match="apt-get install qemu-system-x86"):
        harness.check_host_tools()


def test_cpio_newc_layout() -> None:
    cpio = harness._Cpio()
    cpio.file("init", b"abc", 0o755)
    data = cpio.finish()
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    mode = int(data[14:22], 16)
    size = int(data[54:62], 16)
    assert mode == 0o100755 and size == 3
    assert data[110:115] == b"init\x00"
    assert b"TRAILER!!!\x00" in data


def test_modinfo_depends_parsing() -> None:
    ko = b"junk\x00license=GPL\x00depends=virtio,virtio_ring\x00name=virtio_pci\x00"
    assert harness._modinfo_depends(ko) == ["virtio", "virtio_ring"]
    assert harness._modinfo_depends(b"\x00depends=\x00name=x\x00") == []
