"""The root filesystem: root.readonly, mounts[], masked and read-only paths, /dev.

Checked from inside through /proc/self/mountinfo (what the kernel has really
mounted, with which flags) and by trying the operation (a write that must
fail); from outside, that the host's folders and mount table are untouched.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import (BundleFactory, Runtime, bind, mount_at, parse_mountinfo, probe_script,
                      sections, wait_for)

pytestmark = pytest.mark.root

MOUNTINFO = "cat /proc/self/mountinfo"


def host_mount_points() -> set[str]:
    return {m.mount_point for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text())}


# --- root ------------------------------------------------------------------------
def test_readonly_root(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """root.readonly: / is mounted ro, and a write fails with EROFS."""
    bundle = bundles.make(probe_script({
        "write": f"touch /written-{rt.token} 2>&1; echo status=$?", "mounts": MOUNTINFO}))
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert "Read-only file system" in out["write"]
    assert "status=1" in out["write"]
    assert "ro" in mount_at(parse_mountinfo(out["mounts"]), "/").options
    assert not (bundles.rootfs / f"written-{rt.token}").exists()


def test_writable_root(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """root.readonly false: the write lands in the rootfs folder on the host."""
    rootfs = bundles.private_rootfs()
    bundle = bundles.make(probe_script({"write": "echo hi > /written && echo ok",
                                        "mounts": MOUNTINFO}),
                          rootfs=rootfs, root={"readonly": False})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["write"] == "ok\n"
    assert "rw" in mount_at(parse_mountinfo(out["mounts"]), "/").options
    assert (rootfs / "written").read_text() == "hi\n"


def test_the_old_root_is_not_reachable(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """After pivot_root the host's tree is gone: no mount outside the config's
    remains, and nothing of the host's / (e.g. this test's folder) is visible."""
    bundle = bundles.make(probe_script({"mounts": MOUNTINFO,
                                        "host": f"ls -d {bundles.base_dir} 2>&1; true"}))
    out = sections(rt.run(cid, bundle).ok().stdout)
    points = {m.mount_point for m in parse_mountinfo(out["mounts"])}
    allowed_prefixes = ("/proc", "/dev", "/sys")
    assert all(p == "/" or p.startswith(allowed_prefixes) for p in points), points
    assert "No such file or directory" in out["host"]


# --- masked and read-only paths ------------------------------------------------------
def test_masked_paths(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A masked file is /dev/null (char 1:3, reads empty); a masked folder is an
    empty read-only tmpfs.  (This kernel has no /proc/kcore: /proc/keys and
    /proc/timer_list, which it has and which are in the list, stand in.)"""
    bundle = bundles.make(probe_script({
        "keys": "stat -c '%F %t:%T' /proc/keys; wc -c < /proc/keys",
        "timer_list": "stat -c '%F %t:%T' /proc/timer_list",
        "kcore": "stat -c '%F %t:%T' /proc/kcore 2>/dev/null; true",
        "firmware": "ls -A /sys/firmware | wc -l",
        "mounts": MOUNTINFO}))
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["keys"].split("\n")[:2] == ["character special file 1:3", "0"]
    assert out["timer_list"] == "character special file 1:3\n"
    if os.path.exists("/proc/kcore"):
        assert out["kcore"] == "character special file 1:3\n"
    else:
        assert out["kcore"] == "", "a masked path that does not exist must not be created"
    assert out["firmware"].strip() == "0"
    firmware = mount_at(parse_mountinfo(out["mounts"]), "/sys/firmware")
    assert firmware.fstype == "tmpfs" and "ro" in firmware.options


def test_unmasked_paths_are_the_real_ones(rt: Runtime, bundles: BundleFactory,
                                          cid: str) -> None:
    """The control of test_masked_paths: without maskedPaths, /proc/keys is the
    kernel's file and /sys/firmware is not empty (as on this host)."""
    if not os.listdir("/sys/firmware"):
        pytest.skip("this host's /sys/firmware is empty")
    bundle = bundles.make(probe_script({"keys": "stat -c '%F' /proc/keys",
                                        "firmware": "ls -A /sys/firmware | wc -l"}),
                          linux={"maskedPaths": []})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["keys"] == "regular empty file\n"
    assert int(out["firmware"]) > 0


def test_readonly_paths(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """/proc/sys is a read-only bind: writing the (namespaced, harmless) hostname
    sysctl fails with EROFS, and mountinfo says ro."""
    bundle = bundles.make(probe_script({
        "write": "{ echo changed > /proc/sys/kernel/hostname; } 2>&1; echo status=$?; hostname",
        "mounts": MOUNTINFO}))
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert "Read-only file system" in out["write"]
    assert out["write"].endswith("status=1\npyruntime\n")
    mounts = parse_mountinfo(out["mounts"])
    assert "ro" in mount_at(mounts, "/proc/sys").options
    for path in ("/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"):
        if os.path.exists(path):  # this kernel has no /proc/sysrq-trigger, for one
            assert "ro" in mount_at(mounts, path).options, path


def test_without_readonly_paths_proc_sys_is_writable(rt: Runtime, bundles: BundleFactory,
                                                     cid: str) -> None:
    """The control of test_readonly_paths: the same write works without them."""
    bundle = bundles.make(["sh", "-c", "echo changed > /proc/sys/kernel/hostname; hostname"],
                          linux={"readonlyPaths": []})
    assert rt.run(cid, bundle).ok().stdout == "changed\n"


# --- mounts[] ---------------------------------------------------------------------
def test_tmpfs_with_size_and_mode(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Flags go to mount(2)'s flags, the rest (size, mode) to the filesystem's data."""
    tmpfs = {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "noexec", "noatime", "size=2m", "mode=1770"]}
    bundle = bundles.make(probe_script({"mode": "stat -c %a /scratch", "mounts": MOUNTINFO}),
                          extra_mounts=[tmpfs])
    out = sections(rt.run(cid, bundle).ok().stdout)
    scratch = mount_at(parse_mountinfo(out["mounts"]), "/scratch")
    assert scratch.fstype == "tmpfs"
    assert {"nosuid", "nodev", "noexec", "noatime", "rw"} <= scratch.options
    assert {"size=2048k", "mode=1770"} <= scratch.super_options
    assert out["mode"] == "1770\n"


def test_readonly_tmpfs(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    tmpfs = {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["ro", "size=1m"]}
    bundle = bundles.make(probe_script({"write": "touch /scratch/x 2>&1; echo status=$?",
                                        "mounts": MOUNTINFO}), extra_mounts=[tmpfs])
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert "status=1" in out["write"]
    assert "ro" in mount_at(parse_mountinfo(out["mounts"]), "/scratch").options


def test_bind_mounts_ro_and_rw(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A host folder bound rw and ro: its file is visible through both; a write
    through rw reaches the host, one through ro fails; the host's own mount of
    the folder stays writable."""
    host = bundles.host_dir()
    (host / "hello.txt").write_text(f"hello {rt.token}\n")
    script = probe_script({
        "rw": "cat /mnt/rw/hello.txt; echo from-inside > /mnt/rw/new.txt && echo wrote",
        "ro": "cat /mnt/ro/hello.txt; { echo x > /mnt/ro/ro.txt; } 2>&1; echo status=$?",
        "mounts": MOUNTINFO})
    bundle = bundles.make(script, extra_mounts=[bind(host, "/mnt/rw", "rbind", "rw"),
                                                bind(host, "/mnt/ro", "rbind", "ro")])
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["rw"] == f"hello {rt.token}\nwrote\n"
    assert out["ro"].startswith(f"hello {rt.token}\n")
    assert "Read-only file system" in out["ro"] and "status=1" in out["ro"]
    mounts = parse_mountinfo(out["mounts"])
    assert "ro" in mount_at(mounts, "/mnt/ro").options
    assert "rw" in mount_at(mounts, "/mnt/rw").options
    assert (host / "new.txt").read_text() == "from-inside\n"
    assert not (host / "ro.txt").exists()
    (host / "host-write").write_text("still writable")  # the host side is not made ro


def test_bind_mount_of_a_file(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A file source is bound onto a file (e.g. /etc/hostname, as engines do)."""
    host = bundles.host_dir()
    (host / "hostname").write_text(f"bound-{rt.token}\n")
    bundle = bundles.make(["cat", "/etc/hostname"],
                          extra_mounts=[bind(host / "hostname", "/etc/hostname", "bind", "ro")])
    assert rt.run(cid, bundle).ok().stdout == f"bound-{rt.token}\n"
    assert (bundles.rootfs / "etc/hostname").read_text() == "busybox\n"


def test_mount_flags_on_a_bind_mount(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A bind mount ignores flags but MS_REC: they need a remount, which must happen."""
    host = bundles.host_dir()
    bundle = bundles.make(["cat", "/proc/self/mountinfo"], extra_mounts=[
        bind(host, "/mnt/a", "rbind", "nosuid", "nodev", "noexec", "ro")])
    mounts = parse_mountinfo(rt.run(cid, bundle).ok().stdout)
    assert {"ro", "nosuid", "nodev", "noexec"} <= mount_at(mounts, "/mnt/a").options


def test_mount_propagation_options(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Propagation options are separate mount(2) calls after the mount: rshared
    makes a peer group, runbindable marks it, rprivate and the default share
    nothing with anyone."""
    host = bundles.host_dir()
    bundle = bundles.make(["cat", "/proc/self/mountinfo"], extra_mounts=[
        bind(host, "/mnt/a", "rbind"),
        bind(host, "/mnt/b", "rbind", "rprivate"),
        bind(host, "/mnt/c", "rbind", "rshared"),
        bind(host, "/mnt/d", "rbind", "runbindable")])
    mounts = parse_mountinfo(rt.run(cid, bundle).ok().stdout)
    assert mount_at(mounts, "/mnt/c").is_shared
    assert "unbindable" in mount_at(mounts, "/mnt/d").optional
    for private in ("/mnt/a", "/mnt/b"):
        line = mount_at(mounts, private)
        assert not line.is_shared and "unbindable" not in line.optional, line


def test_container_mounts_do_not_reach_the_host(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    """Even a shared bind mount inside: the host's mount table gains nothing while
    the container runs (checked mid-run, the leak guard checks after)."""
    host = bundles.host_dir()
    marker = bundles.host_dir("marker")
    script = ("mount -t tmpfs inner /mnt/c && echo mounted > /shared/ready; "
              "while [ ! -e /shared/stop ]; do sleep 0.05; done")
    bundle = bundles.make(["sh", "-c", script],
                          process={"capabilities": {"bounding": ["CAP_SYS_ADMIN"],
                                                    "effective": ["CAP_SYS_ADMIN"],
                                                    "permitted": ["CAP_SYS_ADMIN"]}},
                          extra_mounts=[bind(host, "/mnt/c", "rbind", "rshared"),
                                        bind(marker, "/shared")])
    before = host_mount_points()
    rt.create(cid, bundle).ok()
    rt.start(cid).ok()
    wait_for(lambda: (marker / "ready").exists(), what="the container's own mount")
    assert (marker / "ready").read_text() == "mounted\n"
    during = host_mount_points()
    (marker / "stop").touch()
    rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert {p for p in during - before if p.startswith(str(bundles.base_dir))} == set()
    assert not any(host.iterdir())


def test_missing_mount_destination_is_created_in_the_rootfs(rt: Runtime, bundles: BundleFactory,
                                                            cid: str) -> None:
    rootfs = bundles.private_rootfs()
    tmpfs = {"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs"}
    bundle = bundles.make(["cat", "/proc/self/mountinfo"], rootfs=rootfs, extra_mounts=[tmpfs])
    mounts = parse_mountinfo(rt.run(cid, bundle).ok().stdout)
    assert mount_at(mounts, "/new/deep/dir").fstype == "tmpfs"
    assert (rootfs / "new/deep/dir").is_dir()


# --- symlinks in the rootfs -----------------------------------------------------------
def _escaping_rootfs(bundles: BundleFactory, relative: bool) -> tuple[Path, Path, str]:
    """A rootfs whose /evil points at a host folder (absolutely or with ../..)."""
    rootfs = bundles.private_rootfs()
    outside = bundles.host_dir("outside")
    (outside / "sentinel").write_text("host")
    target = ("../" * 12 + str(outside).lstrip("/")) if relative else str(outside)
    (rootfs / "evil").symlink_to(target)
    return rootfs, outside, target


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "dotdot"])
def test_symlinked_mount_destination_never_reaches_the_host(
        rt: Runtime, bundles: BundleFactory, cid: str, relative: bool) -> None:
    """rootfs/evil -> a host folder, and a tmpfs mounted at /evil: whatever
    pyruntime does (mount inside the rootfs, or refuse), the host folder is not
    mounted over and not written to (CVE-2021-30465 class)."""
    rootfs, outside, _ = _escaping_rootfs(bundles, relative)
    tmpfs = {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}
    bundle = bundles.make(["sh", "-c", "touch /evil/from-container"], rootfs=rootfs,
                          extra_mounts=[tmpfs])
    before = host_mount_points()
    rt.run(cid, bundle)  # may fail: the point is what happens on the host
    assert str(outside) not in host_mount_points() - before
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]
    assert not (rt.root / cid).exists()


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "dotdot"])
def test_symlinked_mount_destination_is_resolved_inside_the_rootfs(
        rt: Runtime, bundles: BundleFactory, cid: str, relative: bool) -> None:
    """runc's behaviour (securejoin): the link is followed *within* the rootfs, the
    missing folder is made there, and the tmpfs lands on it; the container sees
    it through /evil.  Images rely on this (e.g. /var/run -> /run)."""
    rootfs, outside, _ = _escaping_rootfs(bundles, relative)
    tmpfs = {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}
    bundle = bundles.make(["sh", "-c", "touch /evil/from-container && cat /proc/self/mountinfo"],
                          rootfs=rootfs, extra_mounts=[tmpfs])
    result = rt.run(cid, bundle).ok()
    mounts = parse_mountinfo(result.stdout)
    assert mount_at(mounts, str(outside)).fstype == "tmpfs"
    assert (rootfs / str(outside).lstrip("/")).is_dir()
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]


def test_symlink_to_an_existing_folder_in_the_rootfs(rt: Runtime, bundles: BundleFactory,
                                                     cid: str) -> None:
    """The common case (/var/run -> /run): the mount lands on the link's target."""
    rootfs = bundles.private_rootfs()
    (rootfs / "var/run").symlink_to("../run")
    tmpfs = {"destination": "/var/run", "type": "tmpfs", "source": "tmpfs"}
    bundle = bundles.make(["cat", "/proc/self/mountinfo"], rootfs=rootfs, extra_mounts=[tmpfs])
    mounts = parse_mountinfo(rt.run(cid, bundle).ok().stdout)
    assert mount_at(mounts, "/run").fstype == "tmpfs"


# --- /dev -------------------------------------------------------------------------
def test_dev_contents(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """The default devices (char, right numbers, 0666), the standard links, ptmx
    through the container's own devpts, and nothing of the host's /dev."""
    devices = "null zero full random urandom tty"
    links = "fd stdin stdout stderr ptmx"
    bundle = bundles.make(probe_script({
        "devices": f"for d in {devices}; do stat -c '%n %F %t:%T %a' /dev/$d; done",
        "links": f"for l in {links}; do echo $l $(readlink /dev/$l); done",
        "list": "ls -A /dev",
        "zero": "head -c 4 /dev/zero | od -An -tx1",
    }))
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["devices"].splitlines() == [
        "/dev/null character special file 1:3 666", "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666", "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666", "/dev/tty character special file 5:0 666"]
    assert out["links"].splitlines() == [
        "fd /proc/self/fd", "stdin /proc/self/fd/0", "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2", "ptmx pts/ptmx"]
    assert set(out["list"].split()) == {*devices.split(), *links.split(), "core", "pts", "shm",
                                        "mqueue"}
    assert out["zero"].split() == ["00", "00", "00", "00"]


def test_linux_devices(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """linux.devices: each node with its type, major:minor, mode and owner."""
    devices = [
        {"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640,
         "uid": 0, "gid": 5},
        {"path": "/dev/myloop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/sub/myfifo", "type": "p", "fileMode": 0o620},
    ]
    bundle = bundles.make(probe_script({
        "stat": "for d in myzero myloop sub/myfifo; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done",
        "read": "head -c 2 /dev/myzero | od -An -tx1"}),
        linux={"devices": devices})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["stat"].splitlines() == [
        "/dev/myzero character special file 1:5 640 0:5",
        "/dev/myloop block special file 7:c8 600 0:0",
        "/dev/sub/myfifo fifo 0:0 620 0:0"]
    assert out["read"].split() == ["00", "00"]


# --- more of mounts[] and root ----------------------------------------------------
def test_relative_bind_source_is_relative_to_the_bundle(rt: Runtime, bundles: BundleFactory,
                                                        cid: str) -> None:
    config = bundles.config(["cat", "/mnt/a/data.txt"],
                            extra_mounts=[bind("data", "/mnt/a", "rbind", "ro")])
    bundle = bundles.write(config)
    (bundle / "data").mkdir()
    (bundle / "data" / "data.txt").write_text(f"in bundle {rt.token}\n")
    assert rt.run(cid, bundle).ok().stdout == f"in bundle {rt.token}\n"


@pytest.fixture
def host_dir_with_submount(bundles: BundleFactory) -> Iterator[Path]:
    """A host folder with a tmpfs mounted on its sub/ (unmounted afterwards)."""
    host = bundles.host_dir()
    (host / "sub").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "sub", str(host / "sub")], check=True, timeout=10)
    try:
        yield host
    finally:
        subprocess.run(["umount", str(host / "sub")], check=True, timeout=10)


@pytest.mark.parametrize("option, sub_readonly", [("ro", False), ("rro", True)])
def test_recursive_readonly(rt: Runtime, bundles: BundleFactory, cid: str,
                            host_dir_with_submount: Path, option: str,
                            sub_readonly: bool) -> None:
    """``ro`` on an rbind makes the top mount read-only; ``rro`` (mount_setattr with
    AT_RECURSIVE) makes the submounts read-only too."""
    bundle = bundles.make(["cat", "/proc/self/mountinfo"], extra_mounts=[
        bind(host_dir_with_submount, "/mnt/a", "rbind", option)])
    mounts = parse_mountinfo(rt.run(cid, bundle).ok().stdout)
    assert "ro" in mount_at(mounts, "/mnt/a").options
    assert ("ro" in mount_at(mounts, "/mnt/a/sub").options) is sub_readonly


@pytest.mark.parametrize("propagation, tag", [("shared", "shared:"), ("unbindable", "unbindable"),
                                              ("private", None)])
def test_rootfs_propagation(rt: Runtime, bundles: BundleFactory, cid: str, propagation: str,
                            tag: str | None) -> None:
    bundle = bundles.make(["cat", "/proc/self/mountinfo"],
                          linux={"rootfsPropagation": propagation})
    root = mount_at(parse_mountinfo(rt.run(cid, bundle).ok().stdout), "/")
    tags = [t for t in root.optional if tag and t.startswith(tag)]
    if tag is None:
        assert not root.is_shared and "unbindable" not in root.optional, root
    else:
        assert tags, root


def test_no_pivot(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """--no-pivot (MS_MOVE + chroot) gives the same tree: the rootfs at /, ro,
    and none of the host's folders."""
    bundle = bundles.make(probe_script({"mounts": MOUNTINFO,
                                        "host": f"ls -d {bundles.base_dir} 2>&1; true"}))
    out = sections(rt.run(cid, bundle, "--no-pivot").ok().stdout)
    assert "ro" in mount_at(parse_mountinfo(out["mounts"]), "/").options
    assert "No such file or directory" in out["host"]
