"""The cgroup drivers against fake cgroupfs trees (plain folders and files).

A real cgroupfs folder can be rmdir'ed with its interface files in it; a
plain one cannot, so the drivers' ``rmdir`` is swapped for one that first
deletes the plain files (never done on a real cgroupfs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyruntime import cgroups
from pyruntime.cgroups import detect, fs, paths
from pyruntime.cgroups.v1 import CgroupV1, Hierarchy
from pyruntime.cgroups.v2 import CgroupV2
from pyruntime.errors import ConfigError, PyRuntimeError
from pyruntime.plan import cgroups as plan
from pyruntime.procfs import ProcFS
from unit_helpers import FakeProc

V2_FILES = {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
            "cgroup.subtree_control": "", "cgroup.procs": "", "cgroup.freeze": "0\n",
            "cgroup.events": "populated 0\nfrozen 0\n"}
V1_FILES = {"tasks": "", "cgroup.procs": "", "notify_on_release": "0\n"}

UNIFIED_MOUNTINFO = """\
22 1 0:21 / /sys rw - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
LEGACY_MOUNTINFO = "\n".join(HYBRID_MOUNTINFO.splitlines()[:-1]) + "\n"


def _fake_rmdir(path: str) -> None:
    """rmdir for a fake tree: plain files go (as a cgroupfs rmdir would take them)."""
    if os.path.isdir(path):
        for entry in os.scandir(path):
            if entry.is_file():
                os.unlink(entry.path)
    fs.rmdir(path)


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


@pytest.fixture(autouse=True)
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder the drivers make gets its interface files, as the kernel would give:
    v2 ones (controllers = what the parent enabled) under a ``cg2`` or ``unified``
    folder, v1 ones elsewhere, with empty cpuset.cpus/mems under ``cpuset``."""
    real = fs.make_dir

    def make_dir(path: str) -> bool:
        made = real(path)
        if not made:
            return made
        folder = Path(path)
        if "/cg2/" in path or "/unified/" in path:
            control = folder.parent / "cgroup.subtree_control"
            enabled = control.read_text().replace("+", "") if control.exists() else ""
            _folder(folder, {**V2_FILES, "cgroup.controllers": enabled})
        elif "/cpuset/" in path:
            _folder(folder, {**V1_FILES, "cpuset.cpus": "\n", "cpuset.mems": "\n"})
        else:
            _folder(folder, V1_FILES)
        return made

    monkeypatch.setattr(fs, "make_dir", make_dir)


def _v2(root: Path, path: str) -> CgroupV2:
    manager = CgroupV2(str(root), path)
    manager.rmdir = _fake_rmdir
    return manager


# --- detect_mode and paths -------------------------------------------------------------
@pytest.mark.parametrize(("mountinfo", "mode"), [
    (UNIFIED_MOUNTINFO, "unified"), (HYBRID_MOUNTINFO, "hybrid"), (LEGACY_MOUNTINFO, "legacy")])
def test_detect_mode(fake_proc: FakeProc, mountinfo: str, mode: str) -> None:
    fake_proc.write("self", "mountinfo", mountinfo)
    fake_proc.write("self", "cgroup", "0::/\n")
    assert cgroups.detect_mode(ProcFS(str(fake_proc.root))) == mode


def test_detect_mode_without_cgroups(fake_proc: FakeProc) -> None:
    fake_proc.write("self", "mountinfo", "22 1 0:21 / /sys rw - sysfs sysfs rw\n")
    fake_proc.write("self", "cgroup", "")
    with pytest.raises(detect.NoCgroupsError):
        cgroups.detect_mode(ProcFS(str(fake_proc.root)))


V1_CGROUP = ("6:freezer:/\n5:pids:/user.slice/session-1.scope\n4:memory:/ms\n"
             "3:cpuset:/\n2:cpu,cpuacct:/cs\n1:name=systemd:/user.slice/session-1.scope\n"
             "0::/user.slice/session-1.scope\n")


@pytest.mark.parametrize(("mode", "mountinfo", "own", "given", "expected"), [
    ("unified", UNIFIED_MOUNTINFO, "0::/user.slice/session-1.scope\n", "box/c1",
     {"": "user.slice/box/c1"}),
    ("unified", UNIFIED_MOUNTINFO, "0::/user.slice/session-1.scope\n", "/abs/c1",
     {"": "abs/c1"}),
    ("unified", UNIFIED_MOUNTINFO, "0::/\n", "", {"": "cid"}),
    ("hybrid", HYBRID_MOUNTINFO, V1_CGROUP, "box/c1",
     {"cpu,cpuacct": "cs/box/c1", "cpuset": "box/c1", "memory": "ms/box/c1",
      "freezer": "box/c1", "pids": "user.slice/session-1.scope/box/c1",
      "systemd": "user.slice/session-1.scope/box/c1",
      "unified": "user.slice/session-1.scope/box/c1"}),
    ("legacy", LEGACY_MOUNTINFO, V1_CGROUP, "/abs/./c1//",
     {"cpu,cpuacct": "abs/c1", "cpuset": "abs/c1", "memory": "abs/c1", "freezer": "abs/c1",
      "pids": "abs/c1", "systemd": "abs/c1"}),
    ("legacy", LEGACY_MOUNTINFO, V1_CGROUP, None,
     {"cpu,cpuacct": "cs/cid", "cpuset": "cid", "memory": "ms/cid", "freezer": "cid",
      "pids": "user.slice/session-1.scope/cid", "systemd": "user.slice/session-1.scope/cid"}),
])
def test_paths(fake_proc: FakeProc, mode: str, mountinfo: str, own: str, given: str | None,
               expected: dict[str, str]) -> None:
    fake_proc.write("self", "mountinfo", mountinfo)
    fake_proc.write("self", "cgroup", own)
    manager = cgroups.manager_for(mode, given, "cid", ProcFS(str(fake_proc.root)), "/fake")
    if isinstance(manager, CgroupV2):
        got = {"": manager.path}
    else:
        got = {h.mount: h.path for h in manager.hierarchies}
        if manager.unified:
            got["unified"] = manager.unified.path
        assert ("unified" in got) == (mode == "hybrid")
    assert got == expected


@pytest.mark.parametrize(("given", "problem"), [
    ("a/../b", 'must not contain ".."'), ("..", 'must not contain ".."'),
    ("a\0b", "must not contain a nul byte"), ("/", "must name a cgroup below the root"),
    ("./", "must name a cgroup below the root"),
    ("system.slice:runc:c1", "'system.slice:runc:c1' is a systemd slice:prefix:name path; "
                             "the systemd cgroup driver is not supported"),
])
def test_bad_paths(given: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        paths.inner_path(given, "cid")
    assert (info.value.field, info.value.problem) == ("linux.cgroupsPath", problem)


def test_path_with_colons_not_systemd_style() -> None:
    assert paths.inner_path("a:b", "cid") == "a:b"
    assert paths.inner_path("/x/a:b:c", "cid") == "/x/a:b:c"


# --- v2 -------------------------------------------------------------------------------
@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    root = _folder(tmp_path / "cg2", V2_FILES)
    _folder(root / "existing", V2_FILES)
    return root


def test_v2_create_enables_controllers_and_removes_only_its_folders(v2_root: Path) -> None:
    before = _tree(v2_root)
    manager = _v2(v2_root, "existing/a/b")
    manager.create(["memory", "pids"])
    assert manager.made == ["existing/a", "existing/a/b"]
    assert (v2_root / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (v2_root / "existing" / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (v2_root / "existing/a/cgroup.controllers").read_text() == "memory pids"
    manager.remove()
    assert _tree(v2_root) == before and manager.made == []


def test_v2_enables_only_missing_controllers(v2_root: Path) -> None:
    (v2_root / "cgroup.subtree_control").write_text("memory pids\n")
    manager = _v2(v2_root, "existing")
    manager.create(["memory", "pids", "cpu"])
    assert (v2_root / "cgroup.subtree_control").read_text() == "+cpu"
    assert manager.made == []


def test_v2_unavailable_controller(v2_root: Path) -> None:
    (v2_root / "existing" / "cgroup.controllers").write_text("memory\n")
    manager = _v2(v2_root, "existing/new")
    with pytest.raises(ConfigError) as info:
        manager.create(["memory", "pids"])
    assert info.value.field == "linux.resources.pids"
    assert info.value.problem == (f"cgroup controller pids is not available in "
                                  f"{v2_root / 'existing'}")
    assert not (v2_root / "existing" / "new").exists() and manager.made == []


def test_v2_failed_create_removes_what_it_made(v2_root: Path) -> None:
    manager = _v2(v2_root, "x/y")
    (v2_root / "x").mkdir()  # made by "someone else", without interface files: reading fails
    manager.create([])  # no controllers: nothing to read
    assert manager.made == ["x/y"]
    manager.remove()
    other = _v2(v2_root, "x/z/w")
    with pytest.raises(PyRuntimeError):
        other.create(["memory"])  # x has no cgroup.controllers
    assert not (v2_root / "x" / "z").exists() and other.made == []


def test_v2_apply_writes_lines_and_skips_optional(v2_root: Path) -> None:
    folder = v2_root / "existing"
    for name in ("memory.max", "io.max", "io.weight", "pids.max"):
        (folder / name).write_text("")
    manager = _v2(v2_root, "existing")
    files = plan.v2_files({
        "memory": {"limit": 100, "swap": 100}, "pids": {"limit": 20},
        "blockIO": {"weight": 10,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1},
                                              {"major": 8, "minor": 16, "rate": 2}]}})
    manager.apply(files)  # memory.swap.max "0" and io.bfq.weight missing: skipped
    assert (folder / "memory.max").read_text() == "100"
    assert (folder / "io.max").read_text() == "8:16 rbps=2"  # the last of two writes
    assert (folder / "io.weight").read_text() == "1"
    assert not (folder / "memory.swap.max").exists()
    (folder / "io.bfq.weight").write_text("")
    manager.apply(files)
    assert (folder / "io.bfq.weight").read_text() == "10"


def test_v2_apply_missing_file_names_it(v2_root: Path) -> None:
    manager = _v2(v2_root, "existing")
    with pytest.raises(PyRuntimeError, match="open .*existing/memory.max: no such file"):
        manager.apply({"memory.max": "1"})


def test_v2_pids_freeze_kill_stats(v2_root: Path) -> None:
    folder = v2_root / "existing"
    manager = _v2(v2_root, "existing")
    manager.add_pid(4242)
    assert manager.pids() == [4242]
    (folder / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    manager.freeze()
    assert (folder / "cgroup.freeze").read_text() == "1" and manager.is_frozen()
    (folder / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    manager.thaw()
    assert (folder / "cgroup.freeze").read_text() == "0"
    (folder / "cgroup.kill").write_text("")
    manager.kill()
    assert (folder / "cgroup.kill").read_text() == "1"
    (folder / "memory.current").write_text("4096\n")
    (folder / "memory.max").write_text("max\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (folder / "pids.current").write_text("2\n")
    (folder / "cpu.stat").write_text("usage_usec 5\nuser_usec 3\nsystem_usec 2\n"
                                     "nr_periods 4\nnr_throttled 1\nthrottled_usec 7\n")
    (folder / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    stats = manager.stats()
    assert stats["memory"]["usage"] == {"usage": 4096, "limit": 2**64 - 1, "failcnt": 3}
    assert stats["memory"]["events"]["oom_kill"] == 1
    assert stats["pids"] == {"current": 2, "limit": 0}
    assert stats["cpu"]["usage"] == {"total": 5000, "user": 3000, "kernel": 2000}
    assert stats["cpu"]["throttling"] == {"periods": 4, "throttledPeriods": 1,
                                          "throttledTime": 7000}
    assert stats["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 10},
        {"major": 8, "minor": 0, "op": "Write", "value": 20}]


def test_v2_freeze_timeout(v2_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pyruntime.cgroups.v2.FREEZE_TIMEOUT", 0.05)
    manager = _v2(v2_root, "existing")
    with pytest.raises(PyRuntimeError, match="timed out"):
        manager.freeze()
    assert (v2_root / "existing" / "cgroup.freeze").read_text() == "0"


def test_v2_kill_falls_back_to_signals(v2_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    (v2_root / "existing" / "cgroup.procs").write_text("11\n12\n")
    monkeypatch.setattr("pyruntime.cgroups.v2.FREEZE_TIMEOUT", 0.02)  # never "frozen 1"
    manager = _v2(v2_root, "existing")
    manager.kill()  # no cgroup.kill file: (try to) freeze, signal each
    assert sent == [(11, 9), (12, 9)]


def test_v2_remove_takes_sub_cgroups_of_its_leaf(v2_root: Path) -> None:
    manager = _v2(v2_root, "c1")
    manager.create([])
    _folder(v2_root / "c1" / "inner" / "deeper", V2_FILES)
    manager.remove()
    assert not (v2_root / "c1").exists()


def test_v2_json_round_trip(v2_root: Path) -> None:
    manager = _v2(v2_root, "existing/a")
    manager.create([])
    again = cgroups.from_json(manager.to_json())
    assert isinstance(again, CgroupV2)
    assert (again.root, again.path, again.made) == (str(v2_root), "existing/a", ["existing/a"])
    with pytest.raises(PyRuntimeError, match="unknown cgroup driver 'v9' in state"):
        cgroups.from_json({"driver": "v9"})


# --- v1 -------------------------------------------------------------------------------
@pytest.fixture
def v1_root(tmp_path: Path) -> Path:
    root = tmp_path / "cg1"
    for mount in ("cpu,cpuacct", "memory", "pids", "freezer", "devices", "systemd"):
        _folder(root / mount, V1_FILES)
    _folder(root / "cpuset", {**V1_FILES, "cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
    _folder(root / "unified", V2_FILES)
    _folder(root / "memory" / "ms", V1_FILES)
    return root


def _v1(root: Path, path: str = "box/c1", unified: bool = True) -> CgroupV1:
    mounts = {"cpu,cpuacct": ("cpu", "cpuacct"), "cpuset": ("cpuset",),
              "memory": ("memory",), "pids": ("pids",), "freezer": ("freezer",),
              "devices": ("devices",), "systemd": ("name=systemd",)}
    hierarchies = [Hierarchy(mount, controllers, f"ms/{path}" if mount == "memory" else path)
                   for mount, controllers in mounts.items()]
    manager = CgroupV1(str(root), hierarchies, Hierarchy("unified", (), path) if unified else None)
    manager.rmdir = _fake_rmdir
    return manager


def test_v1_create_everywhere_copies_cpuset_and_removes(v1_root: Path) -> None:
    before = _tree(v1_root)
    manager = _v1(v1_root)
    manager.create(["memory", "pids"])
    for mount in ("cpu,cpuacct", "cpuset", "pids", "freezer", "devices", "systemd", "unified"):
        assert (v1_root / mount / "box" / "c1").is_dir()
    assert (v1_root / "memory" / "ms" / "box" / "c1").is_dir()
    assert "memory/ms" not in manager.made and "memory/ms/box" in manager.made
    for folder in ("box", "box/c1"):
        assert (v1_root / "cpuset" / folder / "cpuset.cpus").read_text() == "0-3"
        assert (v1_root / "cpuset" / folder / "cpuset.mems").read_text() == "0"
    manager.remove()
    assert _tree(v1_root) == before and manager.made == []


def test_v1_missing_controller_is_named(v1_root: Path) -> None:
    manager = _v1(v1_root)
    with pytest.raises(ConfigError) as info:
        manager.create(["memory", "hugetlb"])
    assert str(info.value) == ("config.json: linux.resources.hugepageLimits: cgroup controller "
                               "hugetlb is not mounted on this host")
    assert not (v1_root / "pids" / "box").exists()


def test_v1_apply_and_devices(v1_root: Path) -> None:
    manager = _v1(v1_root, "c2", unified=False)
    manager.create([])
    leaf = v1_root / "memory" / "ms" / "c2"
    (leaf / "memory.limit_in_bytes").write_text("")
    (v1_root / "pids" / "c2" / "pids.max").write_text("")
    (v1_root / "devices" / "c2" / "devices.allow").write_text("")
    (v1_root / "devices" / "c2" / "devices.deny").write_text("")
    rules = plan.v1_device_rules([{"allow": False, "access": "rwm"},
                                          {"allow": True, "type": "c", "major": 1, "minor": 3}])
    manager.apply(plan.v1_files({"memory": {"limit": 67108864},
                                         "pids": {"limit": 20}}), rules)
    assert (leaf / "memory.limit_in_bytes").read_text() == "67108864"
    assert (v1_root / "pids" / "c2" / "pids.max").read_text() == "20"
    assert (v1_root / "devices" / "c2" / "devices.deny").read_text() == "a *:* rwm"
    assert (v1_root / "devices" / "c2" / "devices.allow").read_text() == "c 1:3 rwm"
    with pytest.raises(ConfigError, match="controller net_cls is not mounted"):
        manager.apply({"net_cls": {"net_cls.classid": "1"}})
    manager.remove()


def test_v1_blkio_falls_back_to_bfq_names(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _folder(root / "blkio" / "c", {**V1_FILES, "blkio.bfq.weight": ""})
    manager = CgroupV1(str(root), [Hierarchy("blkio", ("blkio",), "c")])
    manager.apply({"blkio": {"blkio.weight": "500"}})
    assert (root / "blkio" / "c" / "blkio.bfq.weight").read_text() == "500"


def test_v1_pids_freeze_kill(v1_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = _v1(v1_root)
    manager.create([])
    manager.add_pid(77)
    for mount in ("pids", "freezer", "systemd", "unified"):
        assert (v1_root / mount / "box" / "c1" / "cgroup.procs").read_text() == "77"
    assert (v1_root / "memory" / "ms" / "box" / "c1" / "cgroup.procs").read_text() == "77"
    assert manager.pids() == [77]
    state = v1_root / "freezer" / "box" / "c1" / "freezer.state"
    state.write_text("THAWED\n")
    manager.freeze()
    assert state.read_text() == "FROZEN" and manager.is_frozen()
    manager.thaw()
    assert state.read_text() == "THAWED" and not manager.is_frozen()
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    manager.kill(15)
    assert sent == [(77, 15)] and state.read_text() == "THAWED"
    manager.remove()


def test_v1_freeze_gives_up_thawed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cg"
    _folder(root / "freezer" / "c", {**V1_FILES, "freezer.state": "THAWED"})
    manager = CgroupV1(str(root), [Hierarchy("freezer", ("freezer",), "c")])
    monkeypatch.setattr("pyruntime.cgroups.v1.FREEZE_ATTEMPTS", 3)
    real_read = fs.read_file
    monkeypatch.setattr(fs, "read_file", lambda folder, name: "FREEZING\n"
                        if name == "freezer.state" else real_read(folder, name))
    with pytest.raises(PyRuntimeError, match="stuck in FREEZING"):
        manager.freeze()
    assert (root / "freezer" / "c" / "freezer.state").read_text() == "THAWED"
    with pytest.raises(PyRuntimeError, match="freezer cgroup controller is not mounted"):
        CgroupV1(str(root), []).freeze()


def test_v1_json_round_trip(v1_root: Path) -> None:
    manager = _v1(v1_root)
    manager.create([])
    again = cgroups.from_json(manager.to_json())
    assert isinstance(again, CgroupV1)
    assert again.to_json() == manager.to_json()
    again.rmdir = _fake_rmdir
    again.remove()
    assert not (v1_root / "pids" / "box").exists()


def test_v1_stats(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _folder(root / "memory" / "c", {"memory.usage_in_bytes": "100\n",
                                    "memory.limit_in_bytes": "200\n", "memory.failcnt": "3\n",
                                    "memory.max_usage_in_bytes": "150\n",
                                    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n"
                                                          "oom_kill 1\n"})
    _folder(root / "pids" / "c", {"pids.current": "2\n", "pids.max": "max\n"})
    _folder(root / "blkio" / "c", {"blkio.throttle.io_service_bytes": "8:0 Read 5\nTotal 5\n"})
    manager = CgroupV1(str(root), [Hierarchy("memory", ("memory",), "c"),
                                   Hierarchy("pids", ("pids",), "c"),
                                   Hierarchy("blkio", ("blkio",), "c")])
    stats = manager.stats()
    assert stats["memory"]["usage"] == {"usage": 100, "limit": 200, "max": 150, "failcnt": 3}
    assert stats["memory"]["oom_control"]["oom_kill"] == 1
    assert stats["pids"] == {"current": 2, "limit": 0}
    assert stats["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 5}]


# --- setup ------------------------------------------------------------------------------
def test_setup_v2_checks_before_making_anything(v2_root: Path) -> None:
    manager = _v2(v2_root, "c9")
    with pytest.raises(ConfigError):
        cgroups.setup(manager, {"memory": {"limit": -7}})
    assert not (v2_root / "c9").exists()


def test_setup_v2_removes_on_failed_write(v2_root: Path) -> None:
    manager = _v2(v2_root, "c9")
    with pytest.raises(PyRuntimeError, match="memory.max"):
        cgroups.setup(manager, {"memory": {"limit": 100}})  # fake folder lacks memory.max
    assert not (v2_root / "c9").exists()
    assert (v2_root / "cgroup.subtree_control").read_text() == "+memory"


def test_setup_v1(v1_root: Path) -> None:
    manager = _v1(v1_root, "c3", unified=False)
    with pytest.raises(ConfigError, match="cannot be used on cgroup v1"):
        cgroups.setup(manager, {"unified": {"memory.max": "1"}})
    with pytest.raises(PyRuntimeError, match="pids.max"):
        cgroups.setup(manager, {"pids": {"limit": 5}})
    assert not (v1_root / "pids" / "c3").exists()
