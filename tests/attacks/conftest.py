"""Fixtures of the attack suite: the integration suite's (rootfs, rt, bundles, cid,
token and the autouse leak guard), plus what attacks need: a canary folder on the
host, images with hostile content, and pyruntime run *in-process* in a forked
child so that a test can weaken one defence (``weakened`` tests) without any
switch in the shipped runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from integration.conftest import (bundles, cid, leak_guard, pytest_runtest_setup,  # noqa: F401
                                  rootfs, rt, test_dir, token, work_dir)
from integration.helpers import ENV_MARKER, PYRUNTIME, Result, Runtime

__all__ = ["bundles", "cid", "leak_guard", "pytest_runtest_setup", "rootfs", "rt", "test_dir",
           "token", "work_dir"]

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "weakened: runs pyruntime with one defence patched "
                                       "out inside the test process, to show the check bites")


# --- host-side evidence -------------------------------------------------------------
class Canary:
    """A host folder outside every rootfs: any change to it is an escape."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(mode=0o755)
        (path / "file").write_text("canary\n")
        (path / "sub").mkdir()
        self.before = self.snapshot()

    def snapshot(self) -> list[tuple[str, int, int, int, str]]:
        entries = []
        for folder, dirs, files in os.walk(self.path):
            for name in sorted(dirs + files):
                full = os.path.join(folder, name)
                info = os.lstat(full)
                content = ""
                if os.path.isfile(full) and not os.path.islink(full):
                    content = Path(full).read_text(errors="replace")
                entries.append((os.path.relpath(full, self.path), info.st_mode, info.st_ino,
                                info.st_mtime_ns, content))
        return sorted(entries)

    def assert_untouched(self) -> None:
        after = self.snapshot()
        assert after == self.before, f"host canary changed: {self.diff(after)}"

    def changed(self) -> bool:
        return self.snapshot() != self.before

    def diff(self, after: list[tuple[str, int, int, int, str]]) -> str:
        old, new = set(self.before), set(after)
        return f"added {sorted(e[0] for e in new - old)}, removed {sorted(e[0] for e in old - new)}"


@pytest.fixture
def canary(test_dir: Path) -> Canary:
    return Canary(test_dir / "canary")


def host_mounts() -> set[tuple[str, str]]:
    text = Path("/proc/self/mountinfo").read_text()
    result = set()
    for line in text.splitlines():
        fields = line.split()
        result.add((fields[4], line.partition(" - ")[2].split()[0]))
    return result


# --- running pyruntime -----------------------------------------------------------------
def one_line_error_or_ok(result: Result) -> None:
    """Whatever pyruntime says on failure is one line and never a traceback."""
    assert "Traceback" not in result.stderr, result
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line]
        assert len(lines) == 1, result


def in_process(rt: Runtime, argv: Sequence[str], patch: Callable[[], None] | None = None,
               timeout: float = 30.0, before: Callable[[], None] | None = None) -> Result:
    """``pyruntime --root ROOT argv`` as ``pyruntime.cli.main`` in a forked child, after
    ``patch()`` has weakened it there (the parent and the shipped files are untouched)."""
    out, err = rt.logs / f"inproc-{time.monotonic_ns()}.out", rt.logs / f"inproc-{time.monotonic_ns()}.err"
    full = ["--root", str(rt.root), *argv]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        status = 111
        try:
            os.environ[ENV_MARKER] = rt.token
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            if patch is not None:
                patch()
            if before is not None:
                before()
            from pyruntime import cli

            status = cli.main(full)
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException as exc:  # noqa: BLE001
            try:
                os.write(2, f"in_process: {exc!r}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(status if isinstance(status, int) else 1)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError(f"in-process pyruntime {argv} timed out")
        time.sleep(0.01)
    return Result(["pyruntime(in-process)", *full], os.waitstatus_to_exitcode(status),
                  out.read_text(), err.read_text())


def run_shell(rt: Runtime, script: str, *args: str, timeout: float = 30.0,
              env: dict[str, str] | None = None, detached: bool = False) -> Result:
    """``sh -c script sh args`` with the runtime's environment: for callers that hand
    pyruntime extra descriptors or capabilities, as an engine might.  ``detached``:
    the streams go to files (a container left running holds them)."""
    argv = ["sh", "-c", script, "sh", *args]
    if detached:
        out = rt.logs / f"shell-{time.monotonic_ns()}.out"
        err = out.with_suffix(".err")
        with open(out, "w") as stdout, open(err, "w") as stderr:
            done = subprocess.run(argv, stdout=stdout, stderr=stderr, timeout=timeout,
                                  stdin=subprocess.DEVNULL, env=env or rt.env)
        return Result(argv, done.returncode, out.read_text(), err.read_text())
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env or rt.env)
    return Result(argv, done.returncode, done.stdout, done.stderr)


def force_delete(rt: Runtime, container_id: str) -> None:
    try:
        rt("delete", "--force", container_id, timeout=20)
    except subprocess.TimeoutExpired:
        pass


def state_file(rt: Runtime, container_id: str) -> Path:
    return rt.root / container_id / "state.json"


def read_state_file(rt: Runtime, container_id: str) -> dict:
    return json.loads(state_file(rt, container_id).read_text())


def pyruntime_argv() -> list[str]:
    return [PYRUNTIME]


def copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, symlinks=True)
