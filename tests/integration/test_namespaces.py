"""linux.namespaces: new ones really are new, joined ones really are joined.

Namespaces are compared by inode of /proc/PID/ns/* (what the kernel says),
from outside, on a container held in ``created`` (its init is alive and
already in every namespace), and from inside with what the process sees.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import (BundleFactory, Runtime, host_namespace_inodes, parse_status,
                      probe_script, process_namespace_inodes, read_proc_status, sections)

pytestmark = pytest.mark.root

USERNS_MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def test_init_is_pid_1_of_its_pid_namespace(rt: Runtime, bundles: BundleFactory,
                                            cid: str) -> None:
    """Outside, the init's NSpid is "<host pid> 1"; inside, the process is PID 1."""
    rt.create(cid, bundles.make(["sh", "-c", "echo $$; cat /proc/self/status"])).ok()
    pid = rt.state(cid)["pid"]
    assert read_proc_status(pid)["NSpid"].split() == [str(pid), "1"]
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    out = rt.output(cid)
    assert out.splitlines()[0] == "1"
    rt.delete(cid).ok()


def test_new_namespaces_differ_from_the_hosts(rt: Runtime, bundles: BundleFactory,
                                              cid: str) -> None:
    """Every namespace asked for is new; the one not asked for (user) is the host's."""
    rt.create(cid, bundles.make(["true"])).ok()
    pid = rt.state(cid)["pid"]
    host, container = host_namespace_inodes(), process_namespace_inodes(pid)
    rt.delete(cid, force=True).ok()
    for kind in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert container[kind] != host[kind], kind
    assert container["user"] == host["user"]


def test_namespaces_not_listed_are_shared_with_the_host(rt: Runtime, bundles: BundleFactory,
                                                       cid: str) -> None:
    """Only mount is required: with just it, pid/net/ipc/uts/cgroup are the host's."""
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    bundle = bundles.make(["true"], mounts=mounts,
                          linux={"namespaces": [{"type": "mount"}], "maskedPaths": [],
                                 "readonlyPaths": []}, hostname=None)
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    host, container = host_namespace_inodes(), process_namespace_inodes(pid)
    rt.delete(cid, force=True).ok()
    assert container["mnt"] != host["mnt"]
    for kind in ("pid", "net", "ipc", "uts", "cgroup", "user"):
        assert container[kind] == host[kind], kind


def test_hostname_and_domainname(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Set in the container's uts namespace, never in the host's."""
    host_name = socket.gethostname()
    name = f"h-{rt.token}"
    bundle = bundles.make(probe_script({"hostname": "hostname",
                                        "domainname": "cat /proc/sys/kernel/domainname"}),
                          hostname=name, domainname="example.test")
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["hostname"] == f"{name}\n"
    assert out["domainname"] == "example.test\n"
    assert socket.gethostname() == host_name


def test_user_namespace(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """uidMappings 0 -> 100000 (65536): root inside, uid 100000 on the host."""
    bundle = bundles.make(
        probe_script({"uid_map": "cat /proc/self/uid_map", "gid_map": "cat /proc/self/gid_map",
                      "id": "id -u; id -g"}),
        edit=lambda c: c["mounts"].pop(),  # no /sys/fs/cgroup: v1 cannot be mounted in a userns
        linux={"namespaces": [{"type": t} for t in
                              ("pid", "network", "ipc", "uts", "mount", "user", "cgroup")],
               "uidMappings": USERNS_MAPPING, "gidMappings": USERNS_MAPPING})
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    status = read_proc_status(pid)
    assert status["Uid"].split() == ["100000"] * 4
    assert status["Gid"].split() == ["100000"] * 4
    assert process_namespace_inodes(pid)["user"] != host_namespace_inodes()["user"]
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    out = sections(rt.output(cid))
    rt.delete(cid).ok()
    assert out["uid_map"].split() == ["0", "100000", "65536"]
    assert out["gid_map"].split() == ["0", "100000", "65536"]
    assert out["id"] == "0\n0\n"


def test_user_namespace_with_a_non_root_user(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """process.user is an id inside the namespace: 1000 inside is 101000 outside."""
    bundle = bundles.make(
        ["cat", "/proc/self/status"], edit=lambda c: c["mounts"].pop(),
        process={"user": {"uid": 1000, "gid": 1000}},
        linux={"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount",
                                                   "user")],
               "uidMappings": USERNS_MAPPING, "gidMappings": USERNS_MAPPING})
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    assert read_proc_status(pid)["Uid"].split() == ["101000"] * 4
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    inside = parse_status(rt.output(cid))
    rt.delete(cid).ok()
    assert inside["Uid"].split() == ["1000"] * 4


@pytest.fixture
def netns_file(test_dir: Path) -> Iterator[Path]:
    """A network namespace kept alive by a bind mount on a file (as ``ip netns``
    does), unmounted and removed afterwards."""
    path = test_dir / "netns"
    path.touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True, timeout=10)
    yield path
    subprocess.run(["umount", str(path)], check=True, timeout=10)
    path.unlink()


def test_joining_an_existing_network_namespace(rt: Runtime, bundles: BundleFactory, cid: str,
                                               netns_file: Path) -> None:
    """namespaces[].path: the container's net namespace is that one, same inode
    from inside (readlink) and outside (/proc/PID/ns/net)."""
    inode = netns_file.stat().st_ino
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    namespaces.append({"type": "network", "path": str(netns_file)})
    bundle = bundles.make(probe_script({"ns": "readlink /proc/self/ns/net",
                                        "links": "ls /sys/class/net"}),
                          linux={"namespaces": namespaces})
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    assert process_namespace_inodes(pid)["net"] == inode
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    out = sections(rt.output(cid))
    rt.delete(cid).ok()
    assert out["ns"] == f"net:[{inode}]\n"
    assert out["links"].split() == ["lo"]


def test_loopback_is_up_in_a_new_network_namespace(rt: Runtime, bundles: BundleFactory,
                                                   cid: str) -> None:
    """runc brings lo up: IFF_UP (0x1) in its flags, 127.0.0.1 answers (ping needs
    CAP_NET_RAW, granted here); and lo is the only link."""
    caps = ["CAP_NET_RAW"]
    bundle = bundles.make(probe_script({"flags": "cat /sys/class/net/lo/flags",
                                        "links": "ls /sys/class/net",
                                        "ping": "ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ok"}),
                          process={"capabilities": {"bounding": caps, "effective": caps,
                                                    "permitted": caps}})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert int(out["flags"], 16) & 0x1
    assert out["links"].split() == ["lo"]
    assert out["ping"] == "ok\n"


def test_new_ipc_namespace_is_empty(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A SysV queue made on the host is invisible inside (ipc namespace)."""
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True, timeout=10)
    if made.returncode != 0:
        pytest.skip("ipcmk is not available")
    queue_id = made.stdout.split(":")[-1].strip()
    try:
        out = rt.run(cid, bundles.make(["cat", "/proc/sysvipc/msg"])).ok().stdout
    finally:
        subprocess.run(["ipcrm", "-q", queue_id], timeout=10)
    assert len(out.strip().splitlines()) == 1, out  # only the header line


def test_namespaced_sysctls(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """linux.sysctl is written in the container's net and ipc namespaces, and the
    host's values do not change."""
    host_values = {p: Path(p).read_text() for p in ("/proc/sys/net/ipv4/ip_forward",
                                                   "/proc/sys/kernel/msgmax")}
    new_msgmax = "4099" if host_values["/proc/sys/kernel/msgmax"].strip() != "4099" else "4098"
    bundle = bundles.make(probe_script({"forward": "cat /proc/sys/net/ipv4/ip_forward",
                                        "msgmax": "cat /proc/sys/kernel/msgmax"}),
                          linux={"sysctl": {"net.ipv4.ip_forward": "1",
                                            "kernel.msgmax": new_msgmax}})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["forward"] == "1\n"
    assert out["msgmax"] == f"{new_msgmax}\n"
    assert {p: Path(p).read_text() for p in host_values} == host_values


def test_new_cgroup_namespace_is_rooted_at_the_containers_cgroup(
        rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Inside a new cgroup namespace every /proc/self/cgroup path is "/"."""
    out = rt.run(cid, bundles.make(["cat", "/proc/self/cgroup"])).ok().stdout
    assert out and all(line.rsplit(":", 1)[1] == "/" for line in out.splitlines()), out
