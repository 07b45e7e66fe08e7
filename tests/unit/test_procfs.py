"""pyruntime.procfs: facts about processes, from a procfs whose root is a parameter.

These decide whether a container is alive (pid reuse is detected by start
time) and what to signal for ``kill --all``, so the parsers must survive
hostile command names and escaped mount paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyruntime import procfs
from pyruntime.procfs import MountInfo, ProcFS, parse_stat
from unit_helpers import FakeProc, stat_line


@pytest.mark.parametrize("comm", [
    "sleep", "my prog", "a (b) c", "x) Z 9 9", ")", "((", "tab\there", "evil) Z 1 2 3 4 5 6 7 8 9 10"
    " 11 12 13 14 15 16 17 18 999"])
def test_parse_stat_with_any_command_name(comm: str) -> None:
    """The name is in parentheses and may hold anything, including ``) Z``."""
    info = parse_stat(7, stat_line(7, comm, "S", 3, 123456))
    assert (info.pid, info.state, info.ppid, info.start_time) == (7, "S", 3, 123456)
    assert not info.is_zombie


def test_parse_stat_on_the_real_proc() -> None:
    info = ProcFS().process(os.getpid())
    assert info is not None
    assert info.ppid == os.getppid()
    assert info.state in "RS"
    assert info.start_time > 0


@pytest.mark.parametrize(("letter", "zombie"), [("Z", True), ("X", True), ("S", False),
                                                ("R", False), ("D", False), ("T", False)])
def test_zombie_states(letter: str, zombie: bool) -> None:
    assert parse_stat(1, stat_line(1, state=letter)).is_zombie is zombie


def test_process_lookup(fake_proc: FakeProc) -> None:
    fake_proc.add(10, start_time=55)
    fake_proc.write(11, "stat", "garbage")
    fake_proc.write(12, "stat", "12 (x) S")
    proc = ProcFS(str(fake_proc.root))
    info = proc.process(10)
    assert info is not None and info.start_time == 55
    assert proc.process(11) is None
    assert proc.process(12) is None
    assert proc.process(13) is None
    assert proc.process(0) is None
    assert proc.process(-1) is None


def test_is_alive_requires_the_same_start_time_and_no_zombie(fake_proc: FakeProc) -> None:
    fake_proc.add(10, start_time=55)
    fake_proc.add(20, state="Z", start_time=55)
    proc = ProcFS(str(fake_proc.root))
    assert proc.is_alive(10, 55)
    assert not proc.is_alive(10, 56)  # pid reused by a newer process
    assert not proc.is_alive(20, 55)
    assert not proc.is_alive(30, 55)


# --- mountinfo ------------------------------------------------------------------------
def test_mountinfo_line_with_optional_fields() -> None:
    line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue"
    mount = MountInfo(line)
    assert (mount.mount_id, mount.parent_id) == (36, 35)
    assert (mount.root, mount.mount_point, mount.options) == ("/mnt1", "/mnt2", "rw,noatime")
    assert (mount.fstype, mount.source, mount.super_options) == ("ext3", "/dev/root",
                                                                 "rw,errors=continue")


def test_mountinfo_octal_escapes() -> None:
    line = (r"40 1 0:5 /a\134b /mnt/with\040space\011tab\012nl\134040 rw - tmpfs my\040src rw"
            "\n")
    mount = MountInfo(line)
    assert mount.root == "/a\\b"
    assert mount.mount_point == "/mnt/with space\ttab\nnl\\040"
    assert mount.source == "my src"


def _kernel_escape(text: str) -> str:
    """What the kernel's seq_path(" \\t\\n\\\\") does to a path."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


@given(st.text(alphabet=st.sampled_from("ab/ \t\n\\0134"), min_size=1, max_size=30))
def test_mountinfo_unescape_inverts_the_kernel(path: str) -> None:
    line = f"1 0 0:1 / {_kernel_escape(path)} rw - tmpfs tmpfs rw"
    assert MountInfo(line).mount_point == path


def test_mountinfo_without_source_or_super_options() -> None:
    mount = MountInfo("5 1 0:1 / /x rw - fuse")
    assert (mount.fstype, mount.source, mount.super_options) == ("fuse", "", "")


def test_read_mountinfo_real_and_fixture(fake_proc: FakeProc) -> None:
    fake_proc.write("self", "mountinfo", "1 0 0:1 / / rw - ext4 /dev/sda rw\n\n"
                                         "2 1 0:2 / /proc rw - proc proc rw\n")
    mounts = procfs.read_mountinfo(ProcFS(str(fake_proc.root)))
    assert [m.mount_point for m in mounts] == ["/", "/proc"]
    real = procfs.read_mountinfo(ProcFS())
    assert any(m.mount_point == "/proc" and m.fstype == "proc" for m in real)


def test_read_cgroup_paths(fake_proc: FakeProc) -> None:
    fake_proc.write(7, "cgroup", "12:cpu,cpuacct:/a\n1:name=systemd:/user.slice/x:y\n0::/b\n")
    paths = procfs.read_cgroup_paths(ProcFS(str(fake_proc.root)), 7)
    assert paths == {"cpu,cpuacct": "/a", "name=systemd": "/user.slice/x:y", "": "/b"}


# --- namespaces -------------------------------------------------------------------------
def test_pids_in_namespace_by_inode(fake_proc: FakeProc, tmp_path: Path) -> None:
    """Namespace files are magic links in /proc; symlinks to shared files give the
    same inode-equality semantics that ``os.stat`` sees there."""
    targets = tmp_path / "ns"
    targets.mkdir()
    (targets / "pid-a").write_text("")
    (targets / "pid-b").write_text("")
    for pid, target in ((1, "pid-a"), (2, "pid-a"), (3, "pid-b"), (40, "pid-a")):
        folder = fake_proc.add(pid)
        (folder / "ns").mkdir()
        (folder / "ns" / "pid").symlink_to(targets / target)
    fake_proc.add(5)  # no ns folder: vanished or unreadable
    (fake_proc.root / "self").mkdir()
    (fake_proc.root / "self" / "ns").mkdir()
    (fake_proc.root / "self" / "ns" / "pid").symlink_to(targets / "pid-a")
    proc = ProcFS(str(fake_proc.root))
    inode = os.stat(targets / "pid-a").st_ino
    assert proc.namespace_inode(1, "pid") == inode
    assert proc.namespace_inode(5, "pid") is None
    assert sorted(proc.pids()) == [1, 2, 3, 5, 40]
    assert sorted(proc.pids_in_namespace("pid", inode)) == [1, 2, 40]


def test_namespace_inode_on_the_real_proc() -> None:
    proc = ProcFS()
    inode = proc.namespace_inode("self", "pid")
    assert inode == os.stat("/proc/self/ns/pid").st_ino
    assert os.getpid() in proc.pids_in_namespace("pid", inode)
