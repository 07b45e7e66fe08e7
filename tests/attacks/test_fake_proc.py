"""CVE-2019-16884 / CVE-2023-27561 / CVE-2025-31133 / CVE-2025-52565 / CVE-2025-52881
class: an image's fake /proc, /sys or /dev never steers the runtime.

Defences in pyruntime: /proc and /sys mount destinations resolve in the root (a
symlink is followed inside: contained, not refused); mask_paths checks that the
/dev/null it binds is char 1:3; sysctls and LSM labels are written only to files
that fstatfs says are on procfs, opened O_NOFOLLOW (procfs.write_on_procfs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integration.helpers import BundleFactory, Runtime, bind, probe_script, sections

from .conftest import Canary, force_delete, host_mounts, one_line_error_or_ok

pytestmark = pytest.mark.root


@pytest.mark.parametrize("where", ["canary", "relative", "fake-folder", "sys"])
def test_proc_as_a_symlink_is_contained(rt: Runtime, bundles: BundleFactory, cid: str,
                                        canary: Canary, where: str) -> None:
    """pyruntime follows the image's /proc symlink *inside* the rootfs and mounts the real
    procfs there; masks apply to that procfs; the host is untouched."""
    rootfs = bundles.private_rootfs()
    os.rmdir(rootfs / "proc")
    target = {"canary": str(canary.path), "relative": "../../../.." + str(canary.path),
              "fake-folder": "/fakeproc", "sys": "/sys"}[where]
    if where == "fake-folder":
        (rootfs / "fakeproc").mkdir()
        (rootfs / "fakeproc" / "keys").write_text("fake\n")
    os.symlink(target, rootfs / "proc")
    bundle = bundles.make(probe_script({
        "fs": "stat -f -c %T /proc/self/", "keys": "stat -c '%F %t:%T' /proc/keys",
        "sysro": "echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?"}), rootfs=rootfs)
    before = host_mounts()
    result = rt.run(cid, bundle)
    force_delete(rt, cid)
    one_line_error_or_ok(result)
    canary.assert_untouched()
    assert host_mounts() == before
    if result.returncode == 0:  # contained
        out = sections(result.stdout)
        assert out["fs"].strip() == "proc", result
        assert out["keys"].strip() == "character special file 1:3", result
        assert "rc=0" not in out["sysro"], result
    if where == "fake-folder":
        assert (rootfs / "fakeproc" / "keys").read_text() == "fake\n"


def test_sys_as_a_symlink_is_contained(rt: Runtime, bundles: BundleFactory, cid: str,
                                       canary: Canary) -> None:
    rootfs = bundles.private_rootfs()
    os.rmdir(rootfs / "sys")
    os.symlink(str(canary.path), rootfs / "sys")
    before = host_mounts()
    result = rt.run(cid, bundles.make(["sh", "-c", "stat -f -c %T /sys/; ls /sys/firmware | wc -l"],
                                      rootfs=rootfs))
    force_delete(rt, cid)
    one_line_error_or_ok(result)
    canary.assert_untouched()
    assert host_mounts() == before
    if result.returncode == 0:
        assert result.stdout.split() == ["sysfs", "0"], result


def image_dev(bundles: BundleFactory, null_target: str | None, canary: Canary) -> Path:
    """A /dev the image supplies (bind-mounted: no device creation), with traps."""
    dev = bundles.host_dir("imagedev")
    if null_target is not None:
        os.symlink(null_target, dev / "null")
    else:
        (dev / "null").write_text("not a device\n")
    os.symlink(str(canary.path), dev / "pts")
    os.symlink(str(canary.path / "console"), dev / "console")
    os.symlink(str(canary.path), dev / "shm")
    return dev


@pytest.mark.parametrize("null_target", ["/proc/sys/kernel/hostname", "/proc/self/attr/current",
                                         "/dev/zero-lookalike", None],
                         ids=["proc-hostname", "proc-attr", "dangling", "regular-file"])
def test_fake_dev_null_does_not_make_masks_writable(rt: Runtime, bundles: BundleFactory,
                                                    cid: str, canary: Canary,
                                                    null_target: str | None) -> None:
    """/dev/null swapped for a symlink to a procfs file (or a plain file): create fails
    (the mask is never a bind of something else); no readonlyPaths, so a wrong bind
    would really be writable."""
    dev = image_dev(bundles, null_target, canary)
    bundle = bundles.make(probe_script({"keys": "stat -c '%F %t:%T' /proc/keys",
                                        "write": "echo pwned > /proc/keys; echo rc=$?"}),
                          extra_mounts=[bind(dev, "/dev")],
                          edit=lambda c: (c["linux"].update(readonlyPaths=[]),
                                          c.__setitem__("mounts", [
                                              m for m in c["mounts"]
                                              if not m["destination"].startswith("/dev")]
                                              + [bind(dev, "/dev")])))
    result = rt.run(cid, bundle)
    force_delete(rt, cid)
    one_line_error_or_ok(result)
    canary.assert_untouched()
    if result.returncode == 0:
        out = sections(result.stdout)
        assert out["keys"].strip() == "character special file 1:3", result
    else:
        assert "/dev/null" in result.stderr, result


def test_dev_and_pts_symlinks_do_not_redirect_device_setup(rt: Runtime, bundles: BundleFactory,
                                                           cid: str, canary: Canary) -> None:
    """/dev and /dev/pts (and /dev/shm, /dev/mqueue) as symlinks to the host: the
    tmpfs, the devices and devpts all land inside the rootfs."""
    rootfs = bundles.private_rootfs()
    os.rmdir(rootfs / "dev") if not os.listdir(rootfs / "dev") else None
    if (rootfs / "dev").exists() and not (rootfs / "dev").is_symlink():
        import shutil

        shutil.rmtree(rootfs / "dev")
    os.symlink(str(canary.path), rootfs / "dev")
    before = host_mounts()
    result = rt.run(cid, bundles.make(probe_script({
        "null": "stat -c '%F %t:%T' /dev/null", "pts": "stat -f -c %T /dev/pts/"}),
        rootfs=rootfs))
    force_delete(rt, cid)
    one_line_error_or_ok(result)
    canary.assert_untouched()
    assert host_mounts() == before
    if result.returncode == 0:
        out = sections(result.stdout)
        assert out["null"].strip() == "character special file 1:3"
        assert out["pts"].strip() == "devpts"


@pytest.mark.parametrize("fake", ["folder", "symlink-to-file", "bind-mounted-folder"])
def test_sysctl_never_lands_in_a_fake_proc(rt: Runtime, bundles: BundleFactory, cid: str,
                                          fake: str) -> None:
    """No proc mount in the config and an image /proc with a fake sys/net tree: the
    sysctl write must fail, not write the fake file."""
    rootfs = bundles.private_rootfs()
    fake_file = rootfs / "proc" / "sys" / "net" / "ipv4" / "ip_forward"
    mounts_extra = []
    if fake == "folder":
        fake_file.parent.mkdir(parents=True)
        fake_file.write_text("0\n")
    elif fake == "symlink-to-file":
        fake_file.parent.mkdir(parents=True)
        (rootfs / "target").write_text("0\n")
        os.symlink("/target", fake_file)
        fake_file = rootfs / "target"
    else:
        tree = bundles.host_dir("fakeproc")
        (tree / "sys" / "net" / "ipv4").mkdir(parents=True)
        (tree / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
        fake_file = tree / "sys" / "net" / "ipv4" / "ip_forward"
        mounts_extra = [bind(tree, "/proc")]
    bundle = bundles.make(["true"], rootfs=rootfs, root={"readonly": False},
                          linux={"sysctl": {"net.ipv4.ip_forward": "1"}},
                          edit=lambda c: c.__setitem__("mounts", [
                              m for m in c["mounts"] if m["destination"] != "/proc"]
                              + mounts_extra))
    result = rt.run(cid, bundle)
    force_delete(rt, cid)
    one_line_error_or_ok(result)
    assert result.returncode != 0, result
    assert "sysctl" in result.stderr or "procfs" in result.stderr, result
    assert fake_file.read_text() == "0\n"
