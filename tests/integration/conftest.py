"""Fixtures of the integration tests: a shared busybox rootfs, per-test folders,
a runtime runner with its own ``--root``, and the leak guard.

Tests here start real containers as root.  They are skipped (not failed) when
not root or when /bin/busybox (Debian's busybox-static) is missing.

Folders live under /tmp/pyruntime-it-XXXX (mode 0755), not under pytest's
tmp_path: pytest makes /tmp/pytest-of-root 0700, and a container in a user
namespace (host uid 100000) could not even reach its rootfs through it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import helpers
from .helpers import BundleFactory, Runtime

WORK_PREFIX = "/tmp/pyruntime-it-"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is None:
        return
    if os.geteuid() != 0:
        pytest.skip("needs root (real namespaces and mounts)")
    if not os.access("/bin/busybox", os.X_OK):
        pytest.skip("needs /bin/busybox: apt-get install busybox-static")


# --- session: one rootfs per xdist worker ------------------------------------------
@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    """This worker's world-traversable scratch folder, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix=WORK_PREFIX.rsplit("/", 1)[1], dir="/tmp"))
    path.chmod(0o755)
    yield path
    if not _mounts_under(path):  # never rm -rf through a mount left behind
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(work_dir: Path) -> Path:
    """The busybox rootfs every container shares (read-only root unless copied)."""
    if os.geteuid() != 0 or not os.access("/bin/busybox", os.X_OK):
        pytest.skip("needs root and /bin/busybox")
    path = work_dir / "rootfs"
    subprocess.run(["sh", str(helpers.BUILD_ROOTFS), str(path)], check=True, timeout=60,
                   capture_output=True)
    for folder in helpers.ROOTFS_EXTRA_DIRS:  # mount points, so mounts never write here
        (path / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return path


# --- per test -------------------------------------------------------------------
@pytest.fixture
def token() -> str:
    """Unique per test: in every container id, folder and container environment."""
    return helpers.new_token()


@pytest.fixture
def test_dir(work_dir: Path, token: str) -> Iterator[Path]:
    path = work_dir / token
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    yield path
    if not _mounts_under(path):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rt(test_dir: Path, token: str) -> Runtime:
    logs = test_dir / "logs"
    logs.mkdir()
    return Runtime(test_dir / "state", logs, token)


@pytest.fixture
def bundles(test_dir: Path, rootfs: Path, token: str) -> BundleFactory:
    return BundleFactory(test_dir, rootfs, token)


@pytest.fixture
def cid(token: str) -> str:
    """The test's main container id."""
    return f"c-{token}"


# --- the leak guard ------------------------------------------------------------------
def _mountinfo() -> list[helpers.MountLine]:
    return helpers.parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return [m.mount_point for m in _mountinfo()
            if m.mount_point == str(path) or m.mount_point.startswith(prefix)]


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _marked_processes(token: str) -> dict[int, str]:
    """Processes whose command line or environment carries the test's token."""
    needle = token.encode()
    found: dict[int, str] = {}
    own = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == own:
            continue
        cmdline = _read_bytes(f"/proc/{name}/cmdline")
        if needle in cmdline or needle in _read_bytes(f"/proc/{name}/environ"):
            if helpers.pid_exists(int(name)):
                found[int(name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _cgroup_dirs(token: str, depth: int = 4) -> set[str]:
    """cgroup folders (any hierarchy, a few levels down: v1 hierarchies nest the
    caller's own cgroup) whose name carries the test's token, as every container
    id of the test does.

    Folders merely named "pyruntime..." are not counted: they are shared parents,
    or belong to another session running at the same time (the lead's, another
    xdist worker's), and would make the guard fail tests at random.
    """
    found: set[str] = set()

    def walk(folder: str, level: int) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if token in entry.name:
                found.add(entry.path)
            if level < depth:
                walk(entry.path, level + 1)

    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        walk(str(hierarchy), 1)
    return found


class Snapshot:
    """What the host holds that a container of this test could have left."""

    def __init__(self, root: Path, token: str, work_dir: Path) -> None:
        self.mounts = {(m.mount_id, m.mount_point) for m in _mountinfo()
                       if _is_ours(m.mount_point, work_dir)}
        self.state_entries = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        self.cgroups = _cgroup_dirs(token)
        self.processes = _marked_processes(token)


def _is_ours(mount_point: str, work_dir: Path) -> bool:
    """Other xdist workers mount under their own /tmp/pyruntime-it-*: not ours to judge."""
    if mount_point.startswith(WORK_PREFIX):
        return mount_point == str(work_dir) or mount_point.startswith(str(work_dir) + "/")
    return True


class Leaks:
    def __init__(self, before: Snapshot, after: Snapshot) -> None:
        self.mounts = sorted(after.mounts - before.mounts)
        self.state_entries = sorted(set(after.state_entries) - set(before.state_entries))
        self.cgroups = sorted(after.cgroups - before.cgroups)
        self.processes = {pid: cmd for pid, cmd in after.processes.items()
                          if pid not in before.processes}

    def __bool__(self) -> bool:
        return bool(self.mounts or self.state_entries or self.cgroups or self.processes)

    def describe(self) -> str:
        parts = []
        if self.mounts:
            parts.append(f"mounts: {[point for _, point in self.mounts]}")
        if self.state_entries:
            parts.append(f"--root entries: {self.state_entries}")
        if self.cgroups:
            parts.append(f"cgroups: {self.cgroups}")
        if self.processes:
            parts.append(f"processes: {self.processes}")
        return "; ".join(parts)


def find_leaks(before: Snapshot, rt: Runtime, token: str, work_dir: Path,
               grace: float = 3.0) -> Leaks:
    """Compare with ``before``; processes get ``grace`` seconds (the kernel kills the
    rest of a pid namespace after its init dies, but not instantly)."""
    deadline = time.monotonic() + grace
    while True:
        leaks = Leaks(before, Snapshot(rt.root, token, work_dir))
        if not leaks.processes or time.monotonic() > deadline:
            return leaks
        time.sleep(0.05)


def clean_up(leaks: Leaks, rt: Runtime) -> None:
    """Leave the host clean for the next test, whatever this one left."""
    for entry in leaks.state_entries:
        try:
            rt("delete", "--force", entry, timeout=15)
        except subprocess.TimeoutExpired:
            pass
    for pid in leaks.processes:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    for _, point in reversed(leaks.mounts):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=15)
    for entry in leaks.state_entries:
        shutil.rmtree(rt.root / entry, ignore_errors=True)


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves a mount, a state folder, a cgroup or a process.

    Only for tests marked ``root``; set up before (and torn down after) every
    fixture the test asks for, so their own clean-up has run by then.
    """
    if request.node.get_closest_marker("root") is None or os.geteuid() != 0:
        yield
        return
    rt: Runtime = request.getfixturevalue("rt")
    token: str = request.getfixturevalue("token")
    work_dir: Path = request.getfixturevalue("work_dir")
    before = Snapshot(rt.root, token, work_dir)
    yield
    leaks = find_leaks(before, rt, token, work_dir)
    if leaks:
        clean_up(leaks, rt)
        pytest.fail(f"left behind: {leaks.describe()}", pytrace=False)
