"""State and ids: hostile ids are refused before anything is made; the state is
root's alone; a tampered state.json never turns ``kill`` or ``delete --force``
against a process outside the container.

Defences in pyruntime: state.check_id (runc's alphabet); folders 0700, files 0600;
signalling opens a pidfd, then checks the pid's start time (and pid namespace for
--all) before it signals; state.json is parsed strictly (State.from_json).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from integration.helpers import BundleFactory, Runtime, pid_exists

from .conftest import force_delete, in_process, one_line_error_or_ok, read_state_file, state_file

pytestmark = pytest.mark.root

BAD_IDS = ["a/b", "../escape", "..", ".", "x/../../escape", "/abs", "new\nline", "tab\tid",
           "", "é", "a" * 2000, "sp ace", "-dash-first"]


@pytest.mark.parametrize("command", ["create", "state", "start", "kill", "delete", "exec"])
def test_hostile_ids_are_refused(rt: Runtime, bundles: BundleFactory, command: str,
                                 test_dir: Path) -> None:
    bundle = bundles.make(["true"])
    before = sorted(os.listdir(test_dir))
    for bad in BAD_IDS:
        if bad.startswith("-"):
            continue  # a flag to the parser: usage error, covered by the CLI tests
        argv = {"create": ["create", "--bundle", str(bundle), bad], "exec": ["exec", bad, "true"],
                "kill": ["kill", bad, "9"], "delete": ["delete", "--force", bad]}.get(
                    command, [command, bad])
        result = rt(*argv)
        one_line_error_or_ok(result)
        assert result.returncode != 0, (bad, result)
    assert sorted(os.listdir(test_dir)) == before
    assert not rt.root.exists() or os.listdir(rt.root) == []


def test_nul_in_id_is_refused(rt: Runtime, bundles: BundleFactory) -> None:
    """argv cannot carry NUL: the in-process CLI gets it."""
    bundle = bundles.make(["true"])
    for argv in (["create", "--bundle", str(bundle), "a\x00b"], ["state", "a\x00b"],
                 ["delete", "--force", "\x00"]):
        result = in_process(rt, argv)
        one_line_error_or_ok(result)
        assert result.returncode != 0 and "invalid container id" in result.stderr, result
    assert not rt.root.exists() or os.listdir(rt.root) == []


def test_state_is_not_readable_by_others(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    rt.root.mkdir(mode=0o755)  # an engine's --root may be world-readable
    rt.create(cid, bundles.make(["sleep", "30"])).ok()
    try:
        folder = rt.root / cid
        assert folder.stat().st_mode & 0o077 == 0
        assert state_file(rt, cid).stat().st_mode & 0o077 == 0
        for name in os.listdir(folder):
            assert (folder / name).stat().st_mode & 0o077 == 0, name
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                for attempt in (lambda: os.listdir(folder),
                                lambda: open(folder / "state.json").read(),
                                lambda: os.open(folder / "exec.fifo", os.O_WRONLY | os.O_NONBLOCK)):
                    try:
                        attempt()
                        code = 1
                    except PermissionError:
                        pass
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "uid 65534 read the container's state"
        # and fresh --root folders pyruntime makes itself are 0700
        other = Runtime(rt.root.parent / "fresh-root", rt.logs, rt.token)
        other.create(f"{cid}-fresh", bundles.make(["true"])).ok()
        force_delete(other, f"{cid}-fresh")
        other = other.root
        assert other.stat().st_mode & 0o077 == 0
    finally:
        force_delete(rt, cid)


def start_time(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[19])


TAMPERS = {
    "host-pid": lambda s, host: {**s, "pid": host},
    "host-pid-no-start-time": lambda s, host: {**s, "pid": host, "startTime": 0},
    "huge-pid": lambda s, host: {**s, "pid": 2 ** 62},
    "pid-string": lambda s, host: {**s, "pid": "abc"},
    "pid-null": lambda s, host: {**s, "pid": None},
    "pid-float": lambda s, host: {**s, "pid": float(host)},
    "pid-list": lambda s, host: {**s, "pid": [host]},
    "no-pid": lambda s, host: {k: v for k, v in s.items() if k != "pid"},
    "garbage": lambda s, host: "{not json",
    "array": lambda s, host: [s],
    "empty": lambda s, host: "",
    "cgroup-garbage": lambda s, host: {**s, "pid": host, "cgroup": {"driver": "v9", "x": [1]}},
    "cgroup-host": lambda s, host: {**s, "pid": host, "cgroup": {**(s.get("cgroup") or {}),
                                                               "paths": {"": "/"}}},
    "status-running-host": lambda s, host: {**s, "pid": host, "status": "running"},
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_state_never_hits_a_host_process(rt: Runtime, bundles: BundleFactory, cid: str,
                                                  tamper: str) -> None:
    host = subprocess.Popen(["sleep", "120"])
    rt.create(cid, bundles.make(["sleep", "60"])).ok()
    original = state_file(rt, cid).read_text()
    real = read_state_file(rt, cid)
    try:
        changed = TAMPERS[tamper](real, host.pid)
        state_file(rt, cid).write_text(changed if isinstance(changed, str) else json.dumps(changed))
        for argv in (("kill", cid, "KILL"), ("kill", "--all", cid, "KILL"), ("state", cid),
                     ("delete", "--force", cid)):
            result = rt(*argv)
            one_line_error_or_ok(result)
            assert host.poll() is None, f"{tamper}: {argv} killed a host process: {result}"
    finally:
        if (rt.root / cid).is_dir():
            state_file(rt, cid).write_text(original)
        force_delete(rt, cid)
        if pid_exists(real["pid"]) and start_time(real["pid"]) == real["startTime"]:
            os.kill(real["pid"], 9)  # the tampered delete left the real init behind
        alive = host.poll() is None
        host.kill()
        host.wait()
    assert alive
