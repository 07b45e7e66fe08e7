"""``linux.netDevices``: move host network devices into the container's network namespace.

config-linux.md asks for four things, done here in this order:

1. check that every move is possible before the first one (the device is in
   the runtime's network namespace, is not loopback nor netns-local, and its
   name in the container is free unless it is a ``%d`` template);
2. move it, renamed in the same RTM_NEWLINK as runc does (the kernel applies
   the name in the new namespace, after the move);
3. put back its permanent global-scope addresses: the kernel drops every
   address when a device changes namespace, so they are read before and added
   again after, inside the container's namespace;
4. set it up.

If a move fails, those before it are moved back (with their addresses and up
state), so a failed ``create`` leaves the host as it found it; the returned
``MovedDevices`` can also undo everything, until ``create`` has succeeded.
Nothing moves back at ``delete``: the kernel does that when the namespace dies.

How the container side is reached: the parent (``create``) does all of it,
while the intermediate waits (process/sync.py, NETNS_READY).  It opens a
netlink socket *inside* the container's namespace by setns(2)-ing its own
thread there just long enough to make the socket and setns-ing back; a
netlink socket stays bound to the namespace it was made in.  So there is no
helper process, every pyroute2 release from 0.7 on works the same (its own
``netns=`` support changed between releases, and forks), and both sockets are
in one process, which makes the undo simple.

pyroute2 costs 300-400 ms to import: it is imported inside functions, and only
when a config has ``linux.netDevices``.
"""

from __future__ import annotations

import os
import socket
import struct

from pyruntime.errors import ConfigError, PyRuntimeError, SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyruntime.plan.netdevices import NetDevicePlan
    from pyruntime.syscalls.linux import LinuxSyscalls

CLONE_NEWNET = 0x40000000
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
# the flags an address can be given (ip addr add ... nodad noprefixroute ...)
SETTABLE_ADDRESS_FLAGS = 0x02 | 0x04 | 0x10 | 0x100 | 0x200 | 0x400
RTM_GETLINK = 18
IFLA_NETNS_IMMUTABLE = 67  # Linux >= 6.15 reports netns-local devices so
SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS, ETHTOOL_GSSET_INFO, ETHTOOL_GFEATURES = 0x1B, 0x37, 0x3A
ETH_SS_FEATURES = 4


class Address:
    """One address to carry over, as netlink gave it."""

    __slots__ = ("family", "prefixlen", "address", "local", "broadcast", "flags")

    def __init__(self, message: Any) -> None:
        self.family: int = message["family"]
        self.prefixlen: int = message["prefixlen"]
        self.address: str | None = message.get_attr("IFA_ADDRESS")
        self.local: str | None = message.get_attr("IFA_LOCAL")
        self.broadcast: str | None = message.get_attr("IFA_BROADCAST")
        self.flags: int = message.get_attr("IFA_FLAGS") or message["flags"]

    def add_to(self, ipr: Any, index: int) -> None:
        fields: dict[str, Any] = {"address": self.address or self.local,
                                  "prefixlen": self.prefixlen}
        if self.local is not None:
            fields["local"] = self.local
        if self.broadcast is not None:
            fields["broadcast"] = self.broadcast
        if self.flags & SETTABLE_ADDRESS_FLAGS:
            fields["IFA_FLAGS"] = self.flags & SETTABLE_ADDRESS_FLAGS
        ipr.addr("add", index=index, **fields)

    def __str__(self) -> str:
        return f"{self.local or self.address}/{self.prefixlen}"


class HostDevice:
    """A device to move, as found in the runtime's network namespace."""

    __slots__ = ("plan", "index", "flags", "mac", "addresses", "container_index")

    def __init__(self, plan: NetDevicePlan, index: int, flags: int, mac: str | None,
                 addresses: list[Address]) -> None:
        self.plan = plan
        self.index = index
        self.flags = flags
        self.mac = mac
        self.addresses = addresses
        self.container_index = 0  # once moved


def _ipr() -> Any:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]  # no stubs, no py.typed

    return IPRoute()


def _errno(exc: BaseException) -> int:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    return getattr(exc, "errno", None) or 0


def check_devices(plans: list[NetDevicePlan]) -> list[HostDevice]:
    """The host side of the checks, before ``create`` makes anything: each device exists
    here and may leave this namespace.  ConfigError naming the entry otherwise."""
    if not plans:
        return []
    ipr = _ipr()
    try:
        return _inspect(ipr, plans)
    finally:
        ipr.close()


def _inspect(ipr: Any, plans: list[NetDevicePlan]) -> list[HostDevice]:
    devices = []
    for plan in plans:
        try:
            indexes = ipr.link_lookup(ifname=plan.host_name)
            links = ipr.get_links(*indexes) if indexes else []  # get_links() lists them all
        except Exception as exc:  # pyroute2's NetlinkError: no such index, or the like
            raise SyscallError("look up network device", plan.host_name, _errno(exc)) from exc
        if not links:
            raise ConfigError(plan.field, f"no network device {plan.host_name} in the "
                                          "runtime's network namespace")
        link = links[0]
        if link["flags"] & IFF_LOOPBACK:
            raise ConfigError(plan.field, f"{plan.host_name} is a loopback device, which "
                                          "cannot leave its network namespace")
        if _netns_local(link["index"], plan.host_name):
            raise ConfigError(plan.field, f"{plan.host_name} is netns-local: the kernel "
                                          "does not let it leave its network namespace")
        addresses = [Address(message) for message in ipr.get_addr(index=link["index"])
                     if message["index"] == link["index"]
                     and message["scope"] == RT_SCOPE_UNIVERSE
                     and (message.get_attr("IFA_FLAGS") or message["flags"]) & IFA_F_PERMANENT]
        devices.append(HostDevice(plan, link["index"], link["flags"],
                                  link.get_attr("IFLA_ADDRESS"), addresses))
    return devices


def _netns_local(index: int, name: str) -> bool:
    """NETIF_F_NETNS_LOCAL (bridges, ovs internal ports, ...): Linux >= 6.15 says so in
    IFLA_NETNS_IMMUTABLE, which pyroute2 does not decode yet; older kernels have it as
    the ethtool feature "netns-local".  Between the two (6.12-6.14) nobody says, and
    the move itself fails (and what moved before is moved back)."""
    immutable = _link_attribute_u8(index, IFLA_NETNS_IMMUTABLE)
    if immutable is not None:
        return immutable != 0
    return bool(_ethtool_feature(name, b"netns-local"))


def _link_attribute_u8(index: int, attribute: int) -> int | None:
    """One RTM_GETLINK by hand, for an attribute pyroute2 leaves undecoded."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0) as sock:
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)
        sock.send(struct.pack("=IHHII", 16 + len(body), RTM_GETLINK, 1, 1, 0) + body)
        reply = sock.recv(65536)
    length, kind = struct.unpack_from("=IH", reply)
    offset = 32  # nlmsghdr + ifinfomsg
    if kind != 16:  # RTM_NEWLINK; else NLMSG_ERROR
        return None
    while offset + 4 <= min(length, len(reply)):
        size, number = struct.unpack_from("=HH", reply, offset)
        if size < 4:
            break
        if number & 0x3FFF == attribute and size >= 5:
            return reply[offset + 4]
        offset += (size + 3) & ~3
    return None


def _ethtool_feature(name: str, feature: bytes) -> bool | None:
    """Whether ethtool feature ``feature`` is active on ``name``; None if unknown."""
    import array
    import fcntl

    def call(sock: socket.socket, buffer: array.array[int]) -> None:
        ifreq = struct.pack("16sP", name.encode(), buffer.buffer_info()[0]).ljust(40, b"\0")
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            info = array.array("B", struct.pack("=IIQI", ETHTOOL_GSSET_INFO, 0,
                                                1 << ETH_SS_FEATURES, 0))
            call(sock, info)
            count = struct.unpack_from("=I", info, 16)[0]
            strings = array.array("B", struct.pack("=III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES,
                                                   count) + bytes(32 * count))
            call(sock, strings)
            names = [bytes(strings[12 + 32 * i:44 + 32 * i]).split(b"\0")[0]
                     for i in range(count)]
            if feature not in names:
                return None
            bit = names.index(feature)
            blocks = (count + 31) // 32
            features = array.array("B", struct.pack("=II", ETHTOOL_GFEATURES, blocks)
                                   + bytes(16 * blocks))
            call(sock, features)
            active = struct.unpack_from("=I", features, 8 + 16 * (bit // 32) + 8)[0]
            return bool(active & (1 << bit % 32))
    except OSError:
        return None


class MovedDevices:
    """The devices moved so far, and the two sockets and namespaces to move them back."""

    __slots__ = ("host", "container", "own_fd", "target_fd", "moved")

    def __init__(self, host: Any, container: Any, own_fd: int, target_fd: int) -> None:
        self.host = host
        self.container = container
        self.own_fd = own_fd
        self.target_fd = target_fd
        self.moved: list[HostDevice] = []

    def move(self, device: HostDevice) -> None:
        """Move, rename, addresses, up; a half-done move is still recorded for the undo."""
        plan = device.plan
        before = {link["index"] for link in self.container.get_links()}
        try:
            self.host.link("set", index=device.index, net_ns_fd=self.target_fd,
                           ifname=plan.name)
        except Exception as exc:
            self._find_arrival(device, before)  # moved, but the rename failed
            raise SyscallError("move network device", plan.host_name, _errno(exc)) from exc
        if not self._find_arrival(device, before):
            raise PyRuntimeError(f"move network device {plan.host_name}: it is not in the "
                                 "container's network namespace after the move")
        for address in device.addresses:
            try:
                address.add_to(self.container, device.container_index)
            except Exception as exc:
                raise SyscallError(f"add address {address} to network device",
                                   plan.host_name, _errno(exc)) from exc
        try:
            self.container.link("set", index=device.container_index, state="up")
        except Exception as exc:
            raise SyscallError("set up network device", plan.host_name, _errno(exc)) from exc

    def _find_arrival(self, device: HostDevice, before: set[int]) -> bool:
        """The device's index in the container: the one link that is new there (its
        ifindex is kept unless taken, and a template's final name is the kernel's)."""
        new = [link for link in self.container.get_links() if link["index"] not in before]
        same_mac = [link for link in new if link.get_attr("IFLA_ADDRESS") == device.mac]
        found = same_mac or new
        if len(found) != 1:
            return False
        device.container_index = found[0]["index"]
        self.moved.append(device)
        return True

    def undo(self) -> None:
        """Move every moved device back, last first, with its name, addresses and up
        state.  Best effort and never raises: it runs while a create is failing."""
        while self.moved:
            device = self.moved.pop()
            try:
                before = {link["index"] for link in self.host.get_links()}
                self.container.link("set", index=device.container_index,
                                    net_ns_fd=self.own_fd, ifname=device.plan.host_name)
                back = [link["index"] for link in self.host.get_links()
                        if link["index"] not in before]
                if len(back) != 1:
                    continue
                for address in device.addresses:
                    address.add_to(self.host, back[0])
                if device.flags & IFF_UP:
                    self.host.link("set", index=back[0], state="up")
            except Exception:  # e.g. the namespace is gone: nothing left to move back
                continue

    def close(self) -> None:
        """Drop the sockets and namespace descriptors (they keep the namespace alive)."""
        for ipr in (self.host, self.container):
            try:
                ipr.close()
            except Exception:
                pass
        for fd in (self.own_fd, self.target_fd):
            if fd >= 0:
                os.close(fd)
        self.own_fd = self.target_fd = -1


def move_devices(sys: LinuxSyscalls, plans: list[NetDevicePlan], pid: int) -> MovedDevices:
    """Move ``plans`` into the network namespace of process ``pid`` (the intermediate,
    waiting in it).  Everything is checked again first, now against the container's
    namespace too; on failure nothing stays moved.  The caller closes (or undoes) the
    result."""
    own_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(own_fd)
        raise
    host = container = None
    try:
        if os.fstat(own_fd).st_ino == os.fstat(target_fd).st_ino:
            raise ConfigError(plans[0].field, "the container's network namespace is the "
                                              "runtime's own: there is nowhere to move it")
        host = _ipr()
        devices = _inspect(host, plans)
        container = _socket_in(sys, target_fd, own_fd)
        names = {link.get_attr("IFLA_IFNAME") for link in container.get_links()}
        for device in devices:
            if not device.plan.is_template and device.plan.name in names:
                raise ConfigError(device.plan.field, f"{device.plan.name} already exists in "
                                                     "the container's network namespace")
    except BaseException:
        for ipr in (host, container):
            if ipr is not None:
                ipr.close()
        os.close(own_fd)
        os.close(target_fd)
        raise
    moved = MovedDevices(host, container, own_fd, target_fd)
    try:
        for device in devices:
            moved.move(device)
    except BaseException:
        moved.undo()
        moved.close()
        raise
    return moved


def _socket_in(sys: LinuxSyscalls, target_fd: int, own_fd: int) -> Any:
    """A netlink socket of the namespace ``target_fd``: made there, used from here."""
    sys.setns(target_fd, CLONE_NEWNET, "the container's network namespace")
    try:
        return _ipr()
    finally:
        sys.setns(own_fd, CLONE_NEWNET, "the runtime's network namespace")
