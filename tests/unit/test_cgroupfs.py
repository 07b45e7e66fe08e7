"""pyruntime.cgroups.detect.mount_sources: what a container's ``cgroup`` mount must show.

The three layouts a host may have are fixtures here (mountinfo and
/proc/self/cgroup as the kernel writes them), because the machine running
the tests has only one of them.
"""

from __future__ import annotations

import pytest

from pyruntime.cgroups.detect import mount_sources as host_hierarchies
from pyruntime.procfs import ProcFS
from unit_helpers import FakeProc

HYBRID_MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpuset,clone_children
33 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
50 22 0:40 / /var/lib/other/cgroup rw - cgroup cgroup rw,memory
"""
HYBRID_CGROUP = """\
12:pids:/user.slice/user-1000.slice/session-1.scope
6:cpuset:/
4:memory:/user.slice/user-1000.slice
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-1.scope
0::/user.slice/user-1000.slice/session-1.scope
"""
SESSION = "user.slice/user-1000.slice/session-1.scope"

V2_MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
V2_CGROUP = "0::/system.slice/containerd.service\n"

LEGACY_MOUNTINFO = """\
25 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs rw,mode=755
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuacct,cpu
29 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_cls,net_prio
30 25 0:27 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,devices
"""
LEGACY_CGROUP = """\
5:devices:/docker/abc
4:net_cls,net_prio:/docker/abc
3:cpu,cpuacct:/docker/abc
1:name=systemd:/docker/abc
"""


def _hierarchies(fake_proc: FakeProc, mountinfo: str, cgroup: str) -> list[tuple[str, ...]]:
    fake_proc.write("self", "mountinfo", mountinfo)
    fake_proc.write("self", "cgroup", cgroup)
    return [(h.name, h.fstype, h.controllers, h.host_path)
            for h in host_hierarchies(ProcFS(str(fake_proc.root)))]


def test_hybrid(fake_proc: FakeProc) -> None:
    assert _hierarchies(fake_proc, HYBRID_MOUNTINFO, HYBRID_CGROUP) == [
        ("unified", "cgroup2", "", f"/sys/fs/cgroup/unified/{SESSION}"),
        ("systemd", "cgroup", "name=systemd", f"/sys/fs/cgroup/systemd/{SESSION}"),
        ("cpu,cpuacct", "cgroup", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/user.slice"),
        ("memory", "cgroup", "memory", "/sys/fs/cgroup/memory/user.slice/user-1000.slice"),
        ("cpuset", "cgroup", "cpuset", "/sys/fs/cgroup/cpuset"),
        ("pids", "cgroup", "pids", f"/sys/fs/cgroup/pids/{SESSION}"),
    ]


def test_pure_v2(fake_proc: FakeProc) -> None:
    assert _hierarchies(fake_proc, V2_MOUNTINFO, V2_CGROUP) == [
        ("", "cgroup2", "", "/sys/fs/cgroup/system.slice/containerd.service")]


def test_legacy_v1_with_combined_controllers(fake_proc: FakeProc) -> None:
    """The mount says ``cpuacct,cpu``, /proc/self/cgroup says ``cpu,cpuacct``: same set."""
    assert _hierarchies(fake_proc, LEGACY_MOUNTINFO, LEGACY_CGROUP) == [
        ("systemd", "cgroup", "name=systemd", "/sys/fs/cgroup/systemd/docker/abc"),
        ("cpu,cpuacct", "cgroup", "cpuacct,cpu", "/sys/fs/cgroup/cpu,cpuacct/docker/abc"),
        ("net_cls,net_prio", "cgroup", "net_cls,net_prio",
         "/sys/fs/cgroup/net_cls,net_prio/docker/abc"),
        ("devices", "cgroup", "devices", "/sys/fs/cgroup/devices/docker/abc"),
    ]


def test_mount_root_below_the_hierarchy_root(fake_proc: FakeProc) -> None:
    """Inside a container whose cgroup mount shows only /docker/abc of the hierarchy."""
    mountinfo = ("30 25 0:27 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                 "31 25 0:28 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n")
    cgroup = "4:memory:/docker/abc/inner\n3:pids:/elsewhere\n"
    assert _hierarchies(fake_proc, mountinfo, cgroup) == [
        ("memory", "cgroup", "memory", "/sys/fs/cgroup/memory/inner"),
        ("pids", "cgroup", "pids", "/sys/fs/cgroup/pids"),
    ]


def test_sibling_cgroup_with_a_common_prefix_is_not_inside_the_mount(fake_proc: FakeProc) -> None:
    mountinfo = "30 25 0:27 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    cgroup = "4:memory:/docker/abcdef/x\n"
    [(_, _, _, host_path)] = _hierarchies(fake_proc, mountinfo, cgroup)
    assert host_path.startswith("/sys/fs/cgroup/memory")


def test_no_cgroup_mounts(fake_proc: FakeProc) -> None:
    assert _hierarchies(fake_proc, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/\n") == []
