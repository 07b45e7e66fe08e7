"""pyruntime's cgroup v2 driver for real: one VM boot (pure cgroup v2 host) in which
tests/vm/guest_pyruntime_cgroups.py drives pyruntime's CLI on a busybox container
with memory, pids and cpu limits and prints ``key=value`` lines; the tests here
assert them.  The boot is shared by the tests (and by pytest-xdist workers).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from pathlib import Path

import pytest

from .harness import REPO_ROOT, VMResult, run_in_vm

GUEST_SCRIPT = "tests/vm/guest_pyruntime_cgroups.py"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
MiB = 1024 * 1024

pytestmark = pytest.mark.vm


def _boot() -> VMResult:
    return run_in_vm([str(VENV_PYTHON), GUEST_SCRIPT], timeout=180)


@pytest.fixture(scope="session")
def guest(tmp_path_factory: pytest.TempPathFactory) -> tuple[VMResult, dict[str, object]]:
    """The one boot; under xdist the first worker boots and the others read its result."""
    if not VENV_PYTHON.exists():
        pytest.skip(f"no {VENV_PYTHON} (run make setup)")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        result = _boot()
    else:
        shared = tmp_path_factory.getbasetemp().parent / "vm-pyruntime-cgroups.json"
        with open(shared.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if shared.exists():
                result = VMResult(**json.loads(shared.read_text()))
            else:
                result = _boot()
                shared.write_text(json.dumps(dataclasses.asdict(result)))
    facts: dict[str, object] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            try:
                facts[key] = json.loads(value)
            except json.JSONDecodeError:
                facts[key] = value
    return result, facts


def _facts(guest: tuple[VMResult, dict[str, object]]) -> dict[str, object]:
    result, facts = guest
    assert result.exit_status == 0, result
    exceptions = {k: v for k, v in facts.items() if k.endswith("_exception")}
    assert not exceptions, exceptions
    return facts


def test_container_cgroup_has_the_limits(guest: tuple[VMResult, dict[str, object]]) -> None:
    facts = _facts(guest)
    assert facts["rootfs_rc"] == 0 and facts["mode"] == 1, facts  # one cgroup2 mount
    assert facts["create_rc"] == 0 and facts["start_rc"] == 0, facts
    assert facts["proc_cgroup"] == "0::/pyruntime-vm/c1", facts
    assert facts["folder_exists"] is True and facts["init_in_procs"] is True, facts
    assert facts["memory_max"] == 32 * MiB, facts
    assert facts["pids_max"] == 10, facts
    assert facts["cpu_max"] == "10000 100000", facts


def test_memory_limit_oom_kills(guest: tuple[VMResult, dict[str, object]]) -> None:
    facts = _facts(guest)
    assert facts["oom_exec_rc"] == 137, facts  # the exec'd dd died of SIGKILL
    assert isinstance(facts["oom_kill"], int) and facts["oom_kill"] >= 1, facts
    assert facts["init_alive_after_oom"] is True, facts


def test_pids_limit_stops_forks(guest: tuple[VMResult, dict[str, object]]) -> None:
    facts = _facts(guest)
    assert facts["forks_rc"] != 0 and facts["forks_stderr_cant_fork"] is True, facts
    assert isinstance(facts["pids_events_max"], int) and facts["pids_events_max"] >= 1, facts


def test_update_changes_memory_max(guest: tuple[VMResult, dict[str, object]]) -> None:
    facts = _facts(guest)
    assert facts["update_rc"] == 0, facts
    assert facts["memory_max_updated"] == 64 * MiB, facts
    assert facts["pids_max_after_update"] == 10, facts  # not named: unchanged


def test_pause_and_resume_use_cgroup_freeze(guest: tuple[VMResult, dict[str, object]]) -> None:
    facts = _facts(guest)
    assert facts["pause_rc"] == 0, facts
    assert (facts["freeze_paused"], facts["frozen_paused"]) == (1, 1), facts
    assert facts["status_paused"] == "paused", facts
    assert facts["exec_paused_rc"] == 255, facts
    assert "cannot exec in a paused container" in str(facts["exec_paused_stderr"]), facts
    assert facts["resume_rc"] == 0, facts
    assert (facts["freeze_resumed"], facts["frozen_resumed"]) == (0, 0), facts
    assert facts["status_resumed"] == "running", facts


def test_kill_all_and_delete(guest: tuple[VMResult, dict[str, object]]) -> None:
    facts = _facts(guest)
    # init, its "sleep 777" and the sleeps the pids check left (no pid namespace)
    assert isinstance(facts["procs_before_kill"], int) and 3 <= facts["procs_before_kill"] <= 10
    assert facts["kill_all_rc"] == 0 and facts["all_gone"] is True, facts
    assert facts["procs_after_kill"] == "", facts
    assert facts["status_killed"] == "stopped", facts
    assert facts["delete_rc"] == 0 and facts["delete_stderr"] == "", facts
    assert facts["folder_after_delete"] is False, facts
    assert facts["parent_after_delete"] is False, facts  # /pyruntime-vm was made by us
    assert facts["state_after_delete"] is False, facts


def test_cpu_quota_throttles(guest: tuple[VMResult, dict[str, object]]) -> None:
    assert _facts(guest)["throttled_more"] is True


def test_device_rules_run_on_v2_and_leave_nothing(guest: tuple[VMResult, dict[str, object]]
                                                  ) -> None:
    facts = _facts(guest)
    assert facts["devices_rc"] == 0 and facts["devices_stderr"] == "", facts
    assert facts["devices_cgroup_left"] is False and facts["devices_state_left"] is False


def test_guest_run_time(guest: tuple[VMResult, dict[str, object]]) -> None:
    result, facts = guest
    assert isinstance(facts.get("seconds"), (int, float)), facts
    assert result.duration < 150, result.duration  # TCG is slow; a hang would be far more
