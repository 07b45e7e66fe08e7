"""The example bundles of bundles/ run under pyruntime and print what their
READMEs promise.

Their config.json files are used byte for byte; only the rootfs they point at
(``rootfs``, ``../busybox/rootfs``) is provided, as a symlink to the session's
rootfs, so the repository's bundles/ folder is never written to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import BUNDLES, PYRUNTIME, Runtime, parse_mountinfo

pytestmark = pytest.mark.root


def copy_example(name: str, test_dir: Path, rootfs: Path) -> Path:
    """test_dir/NAME/config.json (the shipped one) and test_dir/busybox/rootfs."""
    bundle = test_dir / name
    bundle.mkdir(exist_ok=True)
    shutil.copyfile(BUNDLES / name / "config.json", bundle / "config.json")
    (test_dir / "busybox").mkdir(exist_ok=True)
    link = test_dir / "busybox" / "rootfs"
    if not link.exists():
        link.symlink_to(rootfs)
    return bundle


def test_busybox_bundle(rt: Runtime, test_dir: Path, rootfs: Path, cid: str) -> None:
    bundle = copy_example("busybox", test_dir, rootfs)
    result = rt.run(cid, bundle).ok()
    assert result.stdout == "hello from busybox\nuid=0(root) gid=0(root)\nPid:\t1\nNSpid:\t1\n"


def test_locked_down_bundle(rt: Runtime, test_dir: Path, rootfs: Path, cid: str) -> None:
    """User namespace, no capabilities, uid 1000, read-only root, tmpfs /tmp."""
    bundle = copy_example("locked-down", test_dir, rootfs)
    result = rt.run(cid, bundle).ok()
    assert result.stdout.splitlines() == [
        "hello from locked-down as uid=1000(user) gid=1000(user)",
        "uid_map: 0 100000 65536",
        "CapInh:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "root fs: read-only",
        "/tmp: writable (tmpfs)",
        "net: lo",
    ]


def test_layered_bundles(rt: Runtime, test_dir: Path) -> None:
    """layers.sh demo (two overlayfs containers) with RUNTIME=pyruntime, then down:
    each container sees only its own writes, and no overlay mount is left."""
    work = test_dir / "layered"
    env = dict(rt.env, RUNTIME=PYRUNTIME, WORK=str(work))
    script = str(BUNDLES / "layered" / "layers.sh")
    try:
        demo = subprocess.run(["sh", script, "demo"], capture_output=True, text=True,
                              timeout=120, env=env)
    finally:
        down = subprocess.run(["sh", script, "down"], capture_output=True, text=True,
                              timeout=60, env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "OK: each container saw only its own writes" in demo.stdout
    assert "FAIL" not in demo.stdout
    assert "[one] motd: Welcome to the layered demo" in demo.stdout
    assert "[two] files matching /written-by-*: /written-by-two" in demo.stdout
    assert down.returncode == 0, down.stdout + down.stderr
    assert not work.exists()
    host_points = [m.mount_point for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text())]
    assert not [p for p in host_points if p.startswith(str(work))]


def test_bundle_relative_to_the_current_directory(rt: Runtime, test_dir: Path, rootfs: Path,
                                                  cid: str) -> None:
    """``pyruntime run ID`` in the bundle folder (the README's way): --bundle is '.'."""
    bundle = copy_example("busybox", test_dir, rootfs)
    done = subprocess.run(rt.argv("run", cid), cwd=bundle, capture_output=True, text=True,
                          timeout=30, env=rt.env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hello from busybox\n")
    assert os.path.isdir(bundle)
