"""linux.netDevices for real: veth ends moved into containers, with their addresses.

Nothing here touches the host's network namespace.  Each test makes its own
namespace (``unshare --net`` around a ``sleep``, never ``ip netns add``, whose
bind mounts under /run/netns the other xdist worker's leak guard would see),
makes its veth pairs there and runs the pyruntime CLI inside it with
``nsenter --net``: the mount namespace is the host's, so --root, the bundles
and the rootfs are where they always are.  The addresses (10.213.0.0/24,
fd00:213::/64) exist only in these namespaces; killing the holder ends the
namespace and its veths.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Sequence

import pytest

from .helpers import BundleFactory, Result, Runtime, assert_one_line_error, wait_for

pytestmark = pytest.mark.root

CT_ADDRESS, HOST_ADDRESS, CT_ADDRESS6 = "10.213.0.2", "10.213.0.1", "fd00:213::2"
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]


class Netns:
    """A network namespace of the test's own, held by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"],
                                       stdin=subprocess.DEVNULL)
        own = os.stat("/proc/self/ns/net").st_ino
        wait_for(lambda: os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino != own, 5,
                 "the test's network namespace")
        self.path = f"/proc/{self.holder.pid}/ns/net"

    def enter(self) -> list[str]:
        return ["nsenter", f"--net={self.path}"]

    def run(self, *argv: str, check: bool = True, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.enter(), *argv], capture_output=True, text=True,
                              timeout=30, check=check, input=input)

    def ip(self, *args: str) -> str:
        return self.run("ip", *args).stdout

    def links(self) -> dict[str, dict[str, Any]]:
        return {link["ifname"]: link for link in json.loads(self.ip("-j", "addr", "show"))}

    def addresses(self, name: str) -> set[str]:
        return {f"{a['local']}/{a['prefixlen']}" for a in self.links()[name]["addr_info"]
                if a.get("scope") == "global"}

    def veth(self, inside: str, outside: str) -> None:
        """``inside`` (to be moved) gets the container's addresses, ``outside`` ours."""
        self.ip("link", "add", inside, "type", "veth", "peer", "name", outside)
        self.ip("addr", "add", f"{CT_ADDRESS}/24", "dev", inside)
        self.ip("addr", "add", f"{CT_ADDRESS6}/64", "dev", inside, "nodad")
        self.ip("addr", "add", f"{HOST_ADDRESS}/24", "dev", outside)
        self.ip("link", "set", outside, "up")

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


class NetnsRuntime(Runtime):
    """The test's runtime, run inside ``netns``: that is the runtime's namespace."""

    def __init__(self, rt: Runtime, netns: Netns) -> None:
        super().__init__(rt.root, rt.logs, rt.token)
        self.netns = netns

    def argv(self, *args: str) -> list[str]:
        return [*self.netns.enter(), *super().argv(*args)]

    def __call__(self, *args: str, timeout: float = 30.0, input: str | None = None,
                 global_args: Sequence[str] = ()) -> Result:
        argv = [*self.argv(*global_args, *args)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              env=self.env)
        return Result(argv, done.returncode, done.stdout, done.stderr)


@pytest.fixture
def netns() -> Iterator[Netns]:
    made = Netns()
    yield made
    made.close()


@pytest.fixture
def nrt(rt: Runtime, netns: Netns) -> NetnsRuntime:
    return NetnsRuntime(rt, netns)


def _bundle(bundles: BundleFactory, args: Sequence[str], devices: dict[str, Any],
            **changes: Any) -> Path:
    return bundles.make(args, process={"capabilities": {kind: CAPS for kind in
                                                        ("bounding", "effective", "permitted")}},
                        edit=lambda c: c["linux"].update(netDevices=devices), **changes)


def _connect(netns: Netns, text: str) -> None:
    """A TCP connection from the test's namespace to the container, until it listens."""
    code = ("import socket, sys, time\n"
            "for _ in range(200):\n"
            "    try:\n"
            f"        s = socket.create_connection(({CT_ADDRESS!r}, 8080), timeout=2)\n"
            "    except OSError:\n"
            "        time.sleep(0.05)\n"
            "        continue\n"
            f"    s.sendall({text!r}.encode()); s.close(); sys.exit(0)\n"
            "sys.exit(1)\n")
    netns.run("python3", "-c", code)


def test_a_device_moves_renamed_with_its_addresses_up_and_carries_traffic(
        nrt: NetnsRuntime, netns: Netns, bundles: BundleFactory, cid: str) -> None:
    netns.veth("vct", "vhost")
    script = ("ip -o link show ctr0; ip -o addr show ctr0; ip -o link show lo; "
              f"ping -c1 -W2 {HOST_ADDRESS} >/dev/null && echo PING-OK; "
              "echo LISTENING; nc -l -p 8080")
    bundle = _bundle(bundles, ["sh", "-c", script], {"vct": {"name": "ctr0"}})
    nrt.run_detached(cid, bundle).ok()
    try:
        wait_for(lambda: "LISTENING" in nrt.output(cid), 15, "the container's probes")
        _connect(netns, "hello-over-tcp\n")
        wait_for(lambda: nrt.status(cid) == "stopped", 15, "nc to end")
    finally:
        out = nrt.output(cid)
        nrt.delete(cid, force=True).ok()
    link_line = next(line for line in out.splitlines() if " ctr0@" in line and "link/" in line)
    assert ",UP" in link_line and "LOWER_UP" in link_line, out
    assert f"inet {CT_ADDRESS}/24" in out and f"inet6 {CT_ADDRESS6}/64" in out, out
    assert "lo: <LOOPBACK,UP" in out, out
    assert "PING-OK" in out and "hello-over-tcp" in out, out
    # deleted: nothing moved back (the kernel destroys a veth with its namespace)
    assert "vct" not in netns.links() and "ctr0" not in netns.links()


def test_templates_let_the_kernel_pick_free_names(
        nrt: NetnsRuntime, netns: Netns, bundles: BundleFactory, cid: str) -> None:
    netns.ip("link", "add", "va", "type", "veth", "peer", "name", "vb")
    netns.ip("link", "add", "vc", "type", "veth", "peer", "name", "vd")
    bundle = _bundle(bundles, ["sh", "-c", "ls /sys/class/net"],
                     {"va": {"name": "eth%d"}, "vc": {"name": "eth%d"}})
    result = nrt.run(cid, bundle)
    assert result.returncode == 0, result
    assert {"eth0", "eth1", "lo"} <= set(result.stdout.split()), result
    nrt.delete(cid)


def test_a_joined_network_namespace_gets_no_devices(
        nrt: NetnsRuntime, netns: Netns, bundles: BundleFactory, cid: str) -> None:
    """A namespace joined by path is someone else's: devices are refused there, and
    nothing moves."""
    netns.veth("vct", "vhost")
    target = Netns()
    try:
        namespaces = [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")]
        namespaces.append({"type": "network", "path": target.path})
        bundle = _bundle(bundles, ["true"], {"vct": {"name": "joined0"}},
                         linux={"namespaces": namespaces})
        result = nrt.create(cid, bundle)
        assert result.returncode != 0 and "new network namespace" in result.stderr, result
        assert "vct" in netns.links() and "joined0" not in target.links()
        assert not (nrt.root / cid).exists()
    finally:
        target.close()


def test_a_plain_container_gets_lo_up(nrt: NetnsRuntime, bundles: BundleFactory,
                                      cid: str) -> None:
    result = nrt.run(cid, bundles.make(["cat", "/sys/class/net/lo/flags"]))
    assert result.returncode == 0 and int(result.stdout, 16) & 1, result
    nrt.delete(cid)


def test_a_failure_after_the_move_moves_the_devices_back(
        nrt: NetnsRuntime, netns: Netns, bundles: BundleFactory, cid: str) -> None:
    """A createRuntime hook runs after the move; its failure aborts the create, and
    the device comes back with its name and addresses before its namespace dies."""
    netns.veth("vct", "vhost")
    netns.ip("link", "set", "vct", "up")
    bundle = _bundle(bundles, ["true"], {"vct": {"name": "ctr0"}},
                     hooks={"createRuntime": [{"path": "/bin/false"}]})
    result = nrt.create(cid, bundle)
    assert result.returncode != 0, result
    links = netns.links()
    assert "vct" in links and "UP" in links["vct"]["flags"], links
    assert netns.addresses("vct") == {f"{CT_ADDRESS}/24", f"{CT_ADDRESS6}/64"}
    nrt.delete(cid, force=True)


BAD = {
    "name too long": ({"vct": {"name": "a-name-too-long-"}},
                      ('linux.netDevices["vct"].name', "longer than 15")),
    "name with a slash": ({"vct": {"name": "ctr/0"}},
                          ('linux.netDevices["vct"].name', "'/'")),
    "missing device": ({"vct": {"name": "ctr0"}, "nosuch0": {}},
                       ('linux.netDevices["nosuch0"]', "no network device nosuch0")),
    "taken name": ({"vct": {"name": "ctr0"}, "vother": {"name": "lo"}},
                   ('linux.netDevices["vother"]', "lo already exists")),
    "loopback": ({"vct": {}, "lo": {"name": "lo2"}}, ('linux.netDevices["lo"]', "loopback")),
    "netns-local bridge": ({"vct": {}, "br9": {}}, ('linux.netDevices["br9"]', "netns-local")),
    "no network namespace": ({"vct": {}}, ('linux.netDevices["vct"]', "network namespace")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_moves_nothing(case: str, nrt: NetnsRuntime, netns: Netns,
                                 bundles: BundleFactory, cid: str) -> None:
    devices, needles = BAD[case]
    netns.veth("vct", "vhost")
    netns.ip("link", "add", "vother", "type", "veth", "peer", "name", "vpeer")
    netns.ip("link", "add", "br9", "type", "bridge")
    changes: dict[str, Any] = {}
    if case == "no network namespace":
        changes["linux"] = {"namespaces": [{"type": k} for k in ("pid", "ipc", "uts", "mount")]}
    before = set(netns.links())
    result = nrt.create(cid, _bundle(bundles, ["true"], devices, **changes))
    assert_one_line_error(result, *needles)
    assert set(netns.links()) == before
    assert netns.addresses("vct") == {f"{CT_ADDRESS}/24", f"{CT_ADDRESS6}/64"}
    assert not (nrt.root / cid).exists()
