"""Crash safety: ``create`` and ``delete`` killed with SIGKILL at several moments (by
timing: pyruntime has no test hook), and many commands racing on one id.

Afterwards ``state`` tells something true (or "does not exist"), ``delete --force``
removes every trace (state folder, cgroups, mounts, processes: the leak guard and
explicit checks), and the id can be used again.  state.json is always valid JSON
or absent (written to a temporary file, fsync'ed, renamed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from integration.conftest import _cgroup_dirs, _marked_processes
from integration.helpers import BundleFactory, Runtime, pid_exists

from .conftest import force_delete, host_mounts, one_line_error_or_ok

pytestmark = pytest.mark.root

DELAYS_MS = [0, 2, 5, 10, 20, 40, 80, 150]


def assert_state_is_true(rt: Runtime, container_id: str) -> str:
    result = rt("state", container_id)
    one_line_error_or_ok(result)
    if result.returncode != 0:
        assert "does not exist" in result.stderr or "not exist" in result.stderr, result
        return "absent"
    state = json.loads(result.stdout)
    if state["status"] in ("created", "running"):
        assert pid_exists(state["pid"]), state
    return str(state["status"])


def assert_no_trace(rt: Runtime, container_id: str, mounts: set) -> None:
    deadline = time.monotonic() + 5
    while _marked_processes(rt.token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (rt.root / container_id).exists()
    assert not _marked_processes(rt.token), _marked_processes(rt.token)
    assert not {d for d in _cgroup_dirs(rt.token) if container_id in d}
    assert host_mounts() == mounts


def spawn(rt: Runtime, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(rt.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=rt.env)


def test_sigkill_create_at_many_moments(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["sleep", "60"])
    mounts = host_mounts()
    seen = {}
    for delay in DELAYS_MS:
        container = f"{cid}-{delay}"
        process = spawn(rt, "create", "--bundle", str(bundle), container)
        time.sleep(delay / 1000)
        process.send_signal(signal.SIGKILL)
        process.wait()
        seen[delay] = assert_state_is_true(rt, container)
        result = rt("delete", "--force", container)
        one_line_error_or_ok(result)
        assert_no_trace(rt, container, mounts)
        again = rt.create(container, bundle)  # the id is free again
        assert again.returncode == 0, (delay, again)
        rt("delete", "--force", container).ok()
        assert_no_trace(rt, container, mounts)
    print(seen)


def test_sigkill_delete_midway(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["sleep", "60"])
    mounts = host_mounts()
    for delay in [0, 2, 5, 10, 20, 40, 80]:
        container = f"{cid}-{delay}"
        rt.run_detached(container, bundle).ok()
        process = spawn(rt, "delete", "--force", container)
        time.sleep(delay / 1000)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert_state_is_true(rt, container)
        result = rt("delete", "--force", container)
        one_line_error_or_ok(result)
        assert_no_trace(rt, container, mounts)
        rt.create(container, bundle).ok()
        rt("delete", "--force", container).ok()
        assert_no_trace(rt, container, mounts)


def test_concurrent_commands_on_one_id(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """20 threads run create/start/kill/delete/state on one id while a reader checks
    that state.json is always valid JSON or absent."""
    bundle = bundles.make(["sleep", "60"])
    mounts = host_mounts()
    path = rt.root / cid / "state.json"
    stop = threading.Event()
    bad: list[str] = []
    results: list = []

    def reader() -> None:
        while not stop.is_set():
            try:
                text = path.read_text()
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                json.loads(text)
            except ValueError:
                bad.append(text)

    def worker(index: int) -> None:
        commands = [("create", "--bundle", str(bundle), cid), ("start", cid), ("kill", cid, "9"),
                    ("delete", "--force", cid), ("state", cid), ("delete", cid)]
        for round_ in range(4):
            argv = commands[(index + round_) % len(commands)]
            if argv[0] == "create":
                results.append(rt.create(cid, bundle))
            else:
                results.append(rt(*argv))

    threads = [threading.Thread(target=reader)] + [
        threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join(120)
    stop.set()
    threads[0].join(10)
    assert not bad, bad[:3]
    for result in results:
        assert "Traceback" not in result.stderr, result
    assert_state_is_true(rt, cid)
    force_delete(rt, cid)
    assert_no_trace(rt, cid, mounts)
