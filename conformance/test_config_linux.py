"""Checks of config-linux.md: namespaces, devices, masked/readonly paths, sysctl,
seccomp, cgroup resources, rootfs propagation."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from conformance.helpers import (Bundle, MountInfo, Runtime, clause, container_cgroup_file,
                                 make_bundle, new_id, ns_inode, run_probe, spawn_ns_holder)

MakeBundle = Callable[..., Bundle]
SLEEP = ["/bin/sleep", "300"]

#: spec namespace type -> name under /proc/PID/ns
NS_FILE = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}


def run_sh(rt: Runtime, b: Bundle, script: str) -> str:
    b.config["process"]["args"] = ["/bin/sh", "-c", script]
    return rt.run(b)


def started_pid(rt: Runtime, b: Bundle) -> tuple[str, int]:
    cid = new_id()
    rt.create_and_start(cid, b)
    return cid, int(rt.state(cid)["pid"])


def set_namespaces(b: Bundle, types: list[str]) -> None:
    b.config["linux"]["namespaces"] = [{"type": t} for t in types]
    if "network" not in types:
        # sysfs can only be mounted by the owner of the network namespace
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys"]


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


@clause("config-linux.md", "If `path` is not specified, the runtime MUST create a new "
        "[container namespace](glossary.md#container-namespace) of type `type`.")
@pytest.mark.parametrize("ns", ["pid", "network", "mount", "ipc", "uts", "cgroup"])
def test_namespace_new(rt: Runtime, bundle: MakeBundle, ns: str) -> None:
    """A listed namespace without path is a new one (inode differs from the runtime's)."""
    b = bundle(SLEEP)
    types = ["pid", "ipc", "uts", "mount", "network"]
    set_namespaces(b, types + ([ns] if ns not in types else []))
    _, pid = started_pid(rt, b)
    f = NS_FILE[ns]
    assert ns_inode(pid, f) != ns_inode("self", f), f"container shares the host {ns} namespace"


@clause("config-linux.md", "The following namespace types SHOULD be supported:")
def test_namespace_time(rt: Runtime, bundle: MakeBundle) -> None:
    """A new time namespace is supported (kernel >= 5.6)."""
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    b = bundle(SLEEP)
    b.config["linux"]["namespaces"].append({"type": "time"})
    cid = new_id()
    r = rt.create(cid, b)
    assert r.ok, f"create with a time namespace failed:\n{r}"
    assert rt.start(cid).ok
    pid = rt.state(cid)["pid"]
    assert ns_inode(pid, "time") != ns_inode("self", "time")


@clause("config-linux.md", "If a namespace type is not specified in the `namespaces` array, the "
        "container MUST inherit the [runtime namespace](glossary.md#runtime-namespace) of that "
        "type.")
@pytest.mark.parametrize("ns", ["pid", "network", "ipc", "uts", "cgroup"])
def test_namespace_inherited(rt: Runtime, bundle: MakeBundle, ns: str) -> None:
    """A namespace type left out of the list is the runtime's (same inode as the caller).
    (mount is not checked: a wrapper may run the runtime in its own mount namespace.)"""
    b = bundle(SLEEP)
    set_namespaces(b, [t for t in ["pid", "ipc", "uts", "mount", "network"] if t != ns])
    if ns == "uts":
        del b.config["hostname"]  # a hostname needs a private UTS namespace
    _, pid = started_pid(rt, b)
    f = NS_FILE[ns]
    assert ns_inode(pid, f) == ns_inode("self", f), f"container got a new {ns} namespace"


@clause("config-linux.md", "The runtime MUST place the container process in the namespace "
        "associated with that `path`.")
@pytest.mark.parametrize("ns,flag", [("network", "--net"), ("ipc", "--ipc"), ("uts", "--uts")])
def test_namespace_join_path(rt: Runtime, bundle: MakeBundle, ns: str, flag: str) -> None:
    """namespaces[].path joins the namespace another process holds."""
    holder = spawn_ns_holder(flag)
    try:
        b = bundle(SLEEP)
        f = NS_FILE[ns]
        b.config["linux"]["namespaces"] = [
            {"type": t["type"], "path": f"/proc/{holder.pid}/ns/{f}"} if t["type"] == ns else t
            for t in b.config["linux"]["namespaces"]]
        if ns == "uts":
            del b.config["hostname"]
        _, pid = started_pid(rt, b)
        assert ns_inode(pid, f) == ns_inode(holder.pid, f), f"{ns} namespace not joined"
    finally:
        holder.stop()


@clause("config-linux.md", "The runtime MUST [generate an error](runtime.md#errors) if `path` is "
        "not associated with a namespace of type `type`.")
def test_namespace_path_wrong_type(rt: Runtime, bundle: MakeBundle) -> None:
    """A network namespace entry whose path is a uts namespace makes create fail."""
    holder = spawn_ns_holder("--uts", "--net")
    try:
        b = bundle(SLEEP)
        b.config["linux"]["namespaces"] = [
            {"type": "network", "path": f"/proc/{holder.pid}/ns/uts"} if t["type"] == "network"
            else t for t in b.config["linux"]["namespaces"]]
        cid = new_id()
        r = rt.create(cid, b)
        assert not r.ok, f"create joined a uts namespace as network namespace:\n{r}"
        assert not rt.state_result(cid).ok
    finally:
        holder.stop()


@clause("config-linux.md", "If a `namespaces` field contains duplicated namespaces with same "
        "`type`, the runtime MUST [generate an error](runtime.md#errors).")
def test_namespace_duplicate_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """Two uts entries make create fail."""
    b = bundle(SLEEP)
    b.config["linux"]["namespaces"].append({"type": "uts"})
    cid = new_id()
    r = rt.create(cid, b)
    assert not r.ok, f"duplicate namespaces accepted:\n{r}"


@clause("config-linux.md", "**`user`** the container will be able to remap user and group IDs "
        "from the host to local users and groups within the container.")
def test_user_namespace_mappings(rt: Runtime, rootfs_template: Path) -> None:
    """A new user namespace with uidMappings/gidMappings: the maps are the configured ones
    and the process is uid 0 inside."""
    # The mapped root (host uid 200000) must be able to traverse the bundle path, and
    # pytest's temp dirs are 0700: build this bundle under a world-traversable dir.
    base = Path(tempfile.mkdtemp(prefix="conformance-userns-"))
    os.chmod(base, 0o755)
    try:
        _check_user_namespace(rt, make_bundle(base, rootfs_template, SLEEP))
    finally:
        rt.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _check_user_namespace(rt: Runtime, b: Bundle) -> None:
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    _, pid = started_pid(rt, b)
    assert ns_inode(pid, "user") != ns_inode("self", "user")
    uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
    gid_map = Path(f"/proc/{pid}/gid_map").read_text().split()
    assert uid_map == ["0", "200000", "65536"], uid_map
    assert gid_map == ["0", "200000", "65536"], gid_map
    status = Path(f"/proc/{pid}/status").read_text()
    assert re.search(r"^Uid:\s+200000\s", status, re.M), "process is not host uid 200000"


# --------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------

STAT = "stat -L -c '%n|%F|%t|%T|%a|%u|%g' "


def stat_lines(out: str) -> dict[str, list[str]]:
    return {f[0]: f[1:] for f in (line.split("|") for line in out.splitlines()) if len(f) == 7}


@clause("config-linux.md", "**`devices`** (array of objects, OPTIONAL) lists devices that MUST "
        "be available in the container.")
def test_devices_created(rt: Runtime, bundle: MakeBundle) -> None:
    """A char device and a fifo from linux.devices exist with type, major:minor, mode, owner."""
    b = bundle()
    b.config["linux"]["devices"] = [
        {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
         "uid": 1000, "gid": 1001},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0},
    ]
    st = stat_lines(run_sh(rt, b, STAT + "/dev/conf-null /dev/conf-fifo"))
    assert st.get("/dev/conf-null") == ["character special file", "1", "3", "640", "1000",
                                        "1001"], st
    fifo = st.get("/dev/conf-fifo")
    assert fifo is not None and fifo[0] == "fifo" and fifo[3] == "600", st


@clause("config-linux.md", "If a [file][] already exists at `path` that does not match the "
        "requested device, the runtime MUST generate an error.")
def test_devices_conflicting_file_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """A device whose path is an existing regular file in the rootfs makes create fail."""
    b = bundle(SLEEP)
    b.config["linux"]["devices"] = [{"path": "/etc/secret", "type": "c", "major": 1, "minor": 3}]
    cid = new_id()
    r = rt.create(cid, b)
    assert not r.ok, f"device over an existing regular file accepted:\n{r}"


DEFAULT_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                   "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


@clause("config-linux.md", "In addition to any devices configured with this setting, the runtime "
        "MUST also supply:")
@pytest.mark.parametrize("path", list(DEFAULT_DEVICES))
def test_default_device(rt: Runtime, bundle: MakeBundle, path: str) -> None:
    """Each default device is a character device with the standard major:minor."""
    st = stat_lines(run_sh(rt, bundle(), STAT + path))
    major, minor = DEFAULT_DEVICES[path]
    got = st.get(path)
    assert got is not None, f"{path} missing"
    assert got[0] == "character special file", got
    assert (int(got[1], 16), int(got[2], 16)) == (major, minor), got


@clause("config-linux.md", "A [bind-mount or symlink of the container's `/dev/pts/ptmx`][devpts].")
def test_default_device_ptmx(rt: Runtime, bundle: MakeBundle) -> None:
    """/dev/ptmx is a symlink to pts/ptmx or the same device (5:2) as /dev/pts/ptmx."""
    out = run_sh(rt, bundle(), "readlink /dev/ptmx; " + STAT + "/dev/ptmx /dev/pts/ptmx")
    first = out.splitlines()[0] if out else ""
    if first in ("pts/ptmx", "/dev/pts/ptmx"):
        return
    st = stat_lines(out)
    assert st.get("/dev/ptmx") and st["/dev/ptmx"][:3] == st.get("/dev/pts/ptmx", [None])[:3], out


@clause("config-linux.md", "In addition to any devices configured with this setting, the runtime "
        "MUST also supply:")
def test_default_devices_usable(rt: Runtime, bundle: MakeBundle) -> None:
    """The default devices work: read zero/urandom, write null, writing full gives ENOSPC."""
    out = run_sh(rt, bundle(), "head -c 4 /dev/zero | od -An -tx1 | tr -d ' \\n'; echo; "
                                "head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok;"
                                " echo x > /dev/full 2>&1 || echo full-refused")
    lines = out.split()
    assert lines[:2] == ["00000000", "4"] and "null-ok" in lines and "full-refused" in out, out


# --------------------------------------------------------------------------
# Masked and read-only paths
# --------------------------------------------------------------------------


@clause("config-linux.md", "**`maskedPaths`** (array of strings, OPTIONAL) will mask over the "
        "provided paths inside the container so that they cannot be read.")
def test_masked_paths(rt: Runtime, bundle: MakeBundle) -> None:
    """A masked file and a masked directory show none of their content; /proc/kcore too."""
    b = bundle()
    b.config["linux"]["maskedPaths"] = ["/etc/secret", "/masked-dir", "/proc/kcore"]
    out = run_sh(rt, b, "cat /etc/secret 2>&1; cat /masked-dir/inside 2>&1; ls /masked-dir; "
                        "head -c 16 /proc/kcore 2>/dev/null | wc -c")
    assert "TOP-SECRET" not in out and "MASKED-DIR-CONTENT" not in out, out
    assert out.split()[-1] == "0", f"/proc/kcore readable: {out}"


@clause("config-linux.md", "**`readonlyPaths`** (array of strings, OPTIONAL) will set the "
        "provided paths as readonly inside the container.")
def test_readonly_paths(rt: Runtime, bundle: MakeBundle) -> None:
    """Files under a read-only path can be read but not written; /proc/sys likewise."""
    b = bundle()
    b.config["linux"]["readonlyPaths"] = ["/ro-dir", "/proc/sys"]
    out = run_sh(rt, b, "cat /ro-dir/file; touch /ro-dir/new 2>/dev/null && echo ro-dir-written;"
                        " echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-written;"
                        " touch /tmp/ok && echo rest-writable")
    assert "read only" in out, out
    assert "ro-dir-written" not in out and "sys-written" not in out, out
    assert "rest-writable" in out, out


# --------------------------------------------------------------------------
# Sysctl, seccomp
# --------------------------------------------------------------------------


@clause("config-linux.md", "**`sysctl`** (object, OPTIONAL) allows kernel parameters to be "
        "modified at runtime for the container.")
def test_sysctl(rt: Runtime, bundle: MakeBundle) -> None:
    """Namespaced sysctls (net, ipc) have the configured values inside; the host's are kept."""
    host_fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    b = bundle()
    want = {"net.ipv4.ip_forward": "1" if host_fwd == "0" else "0",
            "kernel.shm_rmid_forced": "1"}
    b.config["linux"]["sysctl"] = want
    p = run_probe(rt, b, sysctls=list(want))
    for k, v in want.items():
        assert p.get(f"sysctl.{k}") == v, f"{k}={p.get(f'sysctl.{k}')}, want {v}"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == host_fwd


@clause("config-linux.md", "**`errnoRet`** *(uint, OPTIONAL)* - the errno return code to use.")
def test_seccomp_errno(rt: Runtime, bundle: MakeBundle) -> None:
    """defaultAction ALLOW plus mkdir/mkdirat -> ERRNO(EACCES): mkdir fails with EACCES,
    other syscalls work, and the process runs in seccomp filter mode."""
    b = bundle()
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    out = run_sh(rt, b, "mkdir /tmp/x 2>&1; touch /tmp/y && echo touch-ok; "
                        "grep Seccomp: /proc/self/status")
    assert "Permission denied" in out, f"mkdir not refused with EACCES: {out}"
    assert "touch-ok" in out and re.search(r"Seccomp:\s+2", out), out


# --------------------------------------------------------------------------
# cgroups
# --------------------------------------------------------------------------


def cgroup_value(pid: int, controller: str, names: list[str]) -> str:
    for name in names:
        p = container_cgroup_file(pid, controller, name)
        if p is not None:
            return p.read_text().strip()
    pytest.skip(f"the container's {controller} cgroup is not visible from here "
                f"(host layout; looked for {names})")


@clause("config-linux.md", "**`limit`** *(int64, OPTIONAL)* - specifies the maximum number of "
        "tasks in the cgroup")
def test_resources_pids_limit(rt: Runtime, bundle: MakeBundle) -> None:
    """resources.pids.limit 42 is the container cgroup's pids.max."""
    b = bundle(SLEEP)
    b.config["linux"]["resources"] = {"pids": {"limit": 42}}
    _, pid = started_pid(rt, b)
    assert cgroup_value(pid, "pids", ["pids.max"]) == "42"


@clause("config-linux.md", "**`limit`** *(int64, OPTIONAL)* - sets limit of memory usage")
def test_resources_memory_limit(rt: Runtime, bundle: MakeBundle) -> None:
    """resources.memory.limit 64 MiB is the container cgroup's memory limit."""
    b = bundle(SLEEP)
    b.config["linux"]["resources"] = {"memory": {"limit": 64 * 1024 * 1024}}
    _, pid = started_pid(rt, b)
    assert cgroup_value(pid, "memory", ["memory.limit_in_bytes", "memory.max"]) == str(64 << 20)


@clause("config-linux.md", "In the case of an absolute path (starting with `/`), the runtime MUST "
        "take the path to be relative to the cgroups mount point.")
def test_cgroups_path_absolute(rt: Runtime, bundle: MakeBundle) -> None:
    """An absolute cgroupsPath is where the container's (pids) cgroup is."""
    b = bundle(SLEEP)
    want = f"/conformance-{new_id()}"
    b.config["linux"]["cgroupsPath"] = want
    b.config["linux"]["resources"] = {"pids": {"limit": 100}}
    _, pid = started_pid(rt, b)
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else [""]):
            paths[c] = path
    got = paths.get("pids", paths.get(""))
    assert got == want, f"cgroup path {got}, want {want} (/proc/{pid}/cgroup: {paths})"


# --------------------------------------------------------------------------
# Rootfs propagation
# --------------------------------------------------------------------------


def root_mount(rt: Runtime, b: Bundle) -> MountInfo:
    return run_probe(rt, b).mount_at("/")


PROPAGATION = ("**`rootfsPropagation`** (string, OPTIONAL) sets the rootfs's mount propagation.")


@clause("config-linux.md", "**`shared`**: the rootfs mount belongs to a new peer group.")
def test_rootfs_propagation_shared(rt: Runtime, bundle: MakeBundle) -> None:
    """rootfsPropagation shared: / of the container is shared (mountinfo shared:N)."""
    b = bundle()
    b.config["linux"]["rootfsPropagation"] = "shared"
    m = root_mount(rt, b)
    assert any(o.startswith("shared:") for o in m.optional), f"/ is not shared: {m}"


@clause("config-linux.md", "**`private`**: the rootfs mount doesn't receive mount propagation "
        "events from the host")
def test_rootfs_propagation_private(rt: Runtime, bundle: MakeBundle) -> None:
    """rootfsPropagation private: / has no shared/master tags."""
    b = bundle()
    b.config["linux"]["rootfsPropagation"] = "private"
    m = root_mount(rt, b)
    assert not [o for o in m.optional if o.startswith(("shared:", "master:"))], m


@clause("config-linux.md", "**`slave`**: the rootfs mount receives propagation events from the "
        "host (e.g. if something is mounted on the host it will also appear in the container) "
        "but not the other way around.")
def test_rootfs_propagation_slave(rt: Runtime, bundle: MakeBundle) -> None:
    """rootfsPropagation slave: / does not send events (no shared:N). It receives them
    (master:N) only if the bundle's host mount is shared, which is checked when it is."""
    b = bundle()
    b.config["linux"]["rootfsPropagation"] = "slave"
    m = root_mount(rt, b)
    assert not [o for o in m.optional if o.startswith("shared:")], f"/ is shared: {m}"
    host = [MountInfo.parse(line) for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    best = max((h for h in host if str(b.path).startswith(h.mountpoint.rstrip("/") + "/")
                or h.mountpoint == "/"), key=lambda h: len(h.mountpoint))
    if any(o.startswith("shared:") for o in best.optional):
        assert any(o.startswith("master:") for o in m.optional), f"/ is not a slave: {m}"


@clause("config-linux.md", "**`unbindable`**: the rootfs mount is a private mount that cannot be "
        "bind-mounted.")
def test_rootfs_propagation_unbindable(rt: Runtime, bundle: MakeBundle) -> None:
    """rootfsPropagation unbindable: / is tagged unbindable."""
    b = bundle()
    b.config["linux"]["rootfsPropagation"] = "unbindable"
    m = root_mount(rt, b)
    assert "unbindable" in m.optional, f"/ is not unbindable: {m}"
