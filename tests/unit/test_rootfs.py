"""pyruntime.rootfs: the pure helpers, and the bind-mount recipe on the fake seam.

``locked_flags`` decides which flags a bind remount must keep (the kernel
refuses a remount that drops a locked flag in a user namespace), so it is
checked on real mounts against mountinfo.  Mount recipes are checked on
RecordingSyscalls; the real mounts are covered in tests/integration.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyruntime import rootfs
from pyruntime.plan import mounts as m
from pyruntime.plan.mounts import plan_mounts
from pyruntime.procfs import ProcFS, read_mountinfo
from pyruntime.spec.model import Mount, Spec
from pyruntime.syscalls.fake import RecordingSyscalls

MS_REC = 0x4000


def test_rootfs_propagation_table() -> None:
    assert rootfs.ROOTFS_PROPAGATION == {
        "shared": 1 << 20, "rshared": 1 << 20 | MS_REC, "slave": 1 << 19,
        "rslave": 1 << 19 | MS_REC, "private": 1 << 18, "rprivate": 1 << 18 | MS_REC,
        "unbindable": 1 << 17, "runbindable": 1 << 17 | MS_REC}


def test_statvfs_constants_match_os() -> None:
    assert (rootfs.ST_RDONLY, rootfs.ST_NOSUID, rootfs.ST_NODEV, rootfs.ST_NOEXEC) == (
        os.ST_RDONLY, os.ST_NOSUID, os.ST_NODEV, os.ST_NOEXEC)
    assert (rootfs.ST_NOATIME, rootfs.ST_NODIRATIME, rootfs.ST_RELATIME) == (
        os.ST_NOATIME, os.ST_NODIRATIME, os.ST_RELATIME)


OPTION_TO_MS = {"ro": m.MS_RDONLY, "nosuid": m.MS_NOSUID, "nodev": m.MS_NODEV,
                "noexec": m.MS_NOEXEC, "noatime": m.MS_NOATIME, "nodiratime": m.MS_NODIRATIME,
                "relatime": m.MS_RELATIME}


def _mount_of(path: str) -> str:
    """The per-mount options of the mount holding ``path``, from mountinfo (the oracle)."""
    real = os.path.realpath(path)
    best = max((mi for mi in read_mountinfo(ProcFS())
                if real == mi.mount_point or real.startswith(mi.mount_point.rstrip("/") + "/")),
               key=lambda mi: (len(mi.mount_point), mi.mount_id))
    return best.options


@pytest.mark.parametrize("where", ["tmp", "/proc", "/dev", "/"])
def test_locked_flags_match_the_mount_options(where: str, tmp_path: Path) -> None:
    path = str(tmp_path) if where == "tmp" else where
    options = _mount_of(path).split(",")
    expected = 0
    for option in options:
        expected |= OPTION_TO_MS.get(option, 0)
    assert rootfs.locked_flags(path) == expected


def test_locked_flags_only_holds_lockable_flags(tmp_path: Path) -> None:
    assert rootfs.locked_flags(str(tmp_path)) & ~m.MS_LOCKABLE == 0
    flagged = [mi.mount_point for mi in read_mountinfo(ProcFS())
               if "nosuid" in mi.options.split(",") and os.path.isdir(mi.mount_point)
               and _mount_of(mi.mount_point) == mi.options]
    if not flagged:
        pytest.skip("no nosuid mount on this machine")
    assert rootfs.locked_flags(flagged[0]) & m.MS_NOSUID, flagged[0]


def test_remount_bind_keeps_locked_flags() -> None:
    """A remount of /proc (nosuid,nodev,noexec) read-only must keep those three."""
    sys = RecordingSyscalls()
    locked = rootfs.locked_flags("/proc")
    rootfs.remount_bind(sys, "/proc", m.MS_BIND | m.MS_REC | m.MS_RDONLY, "/proc")
    [call] = sys.calls
    assert call.args[:3] == (None, "/proc", None)
    flags = int(call.args[3])  # type: ignore[call-overload]
    assert flags == m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | (locked & ~m.MS_RDONLY)
    assert not flags & m.MS_REC
    assert call.args[5] == "/proc"


def test_remount_bind_with_an_atime_choice_replaces_the_locked_one() -> None:
    sys = RecordingSyscalls()
    rootfs.remount_bind(sys, "/proc", m.MS_BIND | m.MS_STRICTATIME, "/proc")
    flags = int(sys.calls[0].args[3])  # type: ignore[call-overload]
    assert flags & m.MS_STRICTATIME
    assert not flags & (m.MS_NOATIME | m.MS_RELATIME)


def _root_context(sys: RecordingSyscalls, tmp_path: Path, mounts: list[dict[str, object]],
                  propagation: str | None = None) -> rootfs.RootfsContext:
    raw: dict[str, object] = {"ociVersion": "1.3.0", "root": {"path": "rootfs"},
                              "mounts": mounts, "linux": {}}
    if propagation:
        raw["linux"] = {"rootfsPropagation": propagation}
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    spec = Spec(raw, str(tmp_path), str(tmp_path / "rootfs"))
    context = rootfs.RootfsContext(spec, sys, plan_mounts([Mount(x) for x in mounts]),  # type: ignore[arg-type]
                                   False, False, [])
    context.root_fd = os.open(tmp_path / "rootfs", os.O_PATH | os.O_DIRECTORY)
    return context


@pytest.mark.parametrize(("wanted", "flags"), [(None, 1 << 19 | MS_REC), ("slave", 1 << 19 | MS_REC),
                                               ("rprivate", 1 << 18 | MS_REC),
                                               ("private", 1 << 18 | MS_REC),
                                               ("shared", 1 << 19 | MS_REC)])
def test_make_root_private(tmp_path: Path, wanted: str | None, flags: int) -> None:
    """``/`` never propagates to the host before pivot_root; "shared" is applied after it."""
    with RecordingSyscalls() as sys:
        context = _root_context(sys, tmp_path, [], wanted)
        try:
            rootfs.make_root_private(context)
        finally:
            rootfs.close_root(context)
        assert [c.args for c in sys.calls] == [(None, "/", None, flags, None, "/")]


def test_bind_mount_recipe_on_the_fake(tmp_path: Path) -> None:
    """Bind, then remount for ro, then propagation, then mount_setattr: each on an fd path,
    and every descriptor closed (real mounts: tests/integration)."""
    source = tmp_path / "data"
    source.mkdir()
    with RecordingSyscalls() as sys:
        context = _root_context(sys, tmp_path, [
            {"destination": "/data", "type": "bind", "source": str(source),
             "options": ["rbind", "ro", "rprivate", "rnosuid"]}])
        try:
            rootfs.mount_all(context)
        finally:
            rootfs.close_root(context)
        assert sys.outstanding_fds() == []
        mounts = sys.named("mount")
        assert [c.args[0] for c in mounts] == [str(source), None, None]
        assert all(str(c.args[1]).startswith("/proc/self/fd/") for c in mounts)
        assert mounts[0].args[3] == m.MS_BIND | MS_REC
        assert int(mounts[1].args[3]) & (m.MS_REMOUNT | m.MS_RDONLY) == m.MS_REMOUNT | m.MS_RDONLY  # type: ignore[call-overload]
        assert mounts[2].args[3] == 1 << 18 | MS_REC
        [setattr_call] = sys.named("mount_setattr")
        assert setattr_call.args[3:5] == (m.MOUNT_ATTR_NOSUID, 0)
        assert sys.names().index("mount_setattr") > sys.names().index("mount") 
        assert all(c.args[4] == "/data" for c in sys.named("openat2"))


def test_bind_mount_of_a_missing_source_names_it(tmp_path: Path) -> None:
    from pyruntime.errors import SyscallError

    with RecordingSyscalls() as sys:
        context = _root_context(sys, tmp_path, [
            {"destination": "/data", "type": "bind", "source": "missing"}])
        try:
            with pytest.raises(SyscallError) as caught:
                rootfs.mount_all(context)
        finally:
            rootfs.close_root(context)
        assert str(caught.value) == f"bind mount source {tmp_path}/missing: no such file or directory"
        assert sys.named("mount") == []
