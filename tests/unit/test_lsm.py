"""pyruntime.lsm: is the module on, what to write before the exec, and the checked write.

Roots of /sys and /proc are folders of fixture files here; the fstatfs check
is a lambda.  This host runs neither AppArmor nor SELinux: the refusal at
create is covered for real in tests/integration/test_confinement.py.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from pyruntime import lsm
from pyruntime.errors import ConfigError, SyscallError
from pyruntime.procfs import write_on_procfs
from pyruntime.spec.model import Spec

PROC_SUPER_MAGIC = 0x9FA0
EXT4_SUPER_MAGIC = 0xEF53
TMPFS_MAGIC = 0x01021994


def _file(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def sys_root(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    root.mkdir()
    return root


def _apparmor(sys_root: Path, value: str) -> None:
    _file(sys_root / "module/apparmor/parameters/enabled", value)


def _selinux(sys_root: Path) -> None:
    _file(sys_root / "fs/selinux/enforce", "1\n")


# --- which modules run ---------------------------------------------------------------------
def test_nothing_enabled_in_an_empty_sys(sys_root: Path) -> None:
    assert lsm.apparmor_enabled(str(sys_root)) is False
    assert lsm.selinux_enabled(str(sys_root)) is False


@pytest.mark.parametrize("value, enabled", [("Y\n", True), ("Y", True), ("N\n", False),
                                            ("", False), ("yes\n", False)])
def test_apparmor_enabled_reads_the_parameter(sys_root: Path, value: str,
                                              enabled: bool) -> None:
    _apparmor(sys_root, value)
    assert lsm.apparmor_enabled(str(sys_root)) is enabled


def test_apparmor_parameter_unreadable_is_disabled(sys_root: Path) -> None:
    (sys_root / "module/apparmor/parameters/enabled").mkdir(parents=True)  # EISDIR
    assert lsm.apparmor_enabled(str(sys_root)) is False


@pytest.mark.parametrize("enforce", ["0\n", "1\n"])
def test_selinux_enabled_when_selinuxfs_is_there(sys_root: Path, enforce: str) -> None:
    """Permissive (0) is enabled too: labels still apply."""
    _file(sys_root / "fs/selinux/enforce", enforce)
    assert lsm.selinux_enabled(str(sys_root)) is True
    assert lsm.apparmor_enabled(str(sys_root)) is False


def test_this_host_runs_neither() -> None:
    """The premise of the integration tests' refusals (skip rather than mislead)."""
    if lsm.apparmor_enabled() or lsm.selinux_enabled():
        pytest.skip("this host runs an LSM")
    assert not os.path.exists("/sys/fs/selinux/enforce")


# --- check_available -----------------------------------------------------------------------
BASE: dict[str, Any] = {"ociVersion": "1.3.0", "root": {"path": "rootfs"},
                        "process": {"args": ["sh"], "cwd": "/"},
                        "linux": {"namespaces": [{"type": "mount"}]}}


def _spec(process: dict[str, Any] | None = None, linux: dict[str, Any] | None = None) -> Spec:
    raw = copy.deepcopy(BASE)
    raw["process"].update(process or {})
    raw["linux"].update(linux or {})
    return Spec(raw, "/bundle", "/bundle/rootfs")


def _refusal(spec: Spec, sys_root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        lsm.check_available(spec, str(sys_root))
    return caught.value


def test_nothing_asked_passes_anywhere(sys_root: Path) -> None:
    lsm.check_available(_spec(), str(sys_root))
    lsm.check_available(_spec({"apparmorProfile": "", "selinuxLabel": ""}), str(sys_root))
    raw = copy.deepcopy(BASE)
    del raw["process"]
    lsm.check_available(Spec(raw, "/bundle", "/bundle/rootfs"), str(sys_root))


def test_apparmor_profile_without_apparmor(sys_root: Path) -> None:
    error = _refusal(_spec({"apparmorProfile": "docker-default"}), sys_root)
    assert str(error) == "config.json: process.apparmorProfile: apparmor is not enabled on this host"
    _apparmor(sys_root, "N\n")
    assert _refusal(_spec({"apparmorProfile": "p"}), sys_root).field == "process.apparmorProfile"


def test_apparmor_profile_with_apparmor(sys_root: Path) -> None:
    _apparmor(sys_root, "Y\n")
    lsm.check_available(_spec({"apparmorProfile": "docker-default"}), str(sys_root))


def test_selinux_label_without_selinux(sys_root: Path) -> None:
    error = _refusal(_spec({"selinuxLabel": "system_u:system_r:container_t:s0"}), sys_root)
    assert str(error) == ("config.json: process.selinuxLabel: "
                          "selinux is disabled or not supported on this host")


def test_mount_label_without_selinux(sys_root: Path) -> None:
    error = _refusal(_spec(linux={"mountLabel": "system_u:object_r:container_file_t:s0"}),
                     sys_root)
    assert error.field == "linux.mountLabel"
    assert error.problem == "selinux is disabled or not supported on this host"


def test_selinux_fields_with_selinux(sys_root: Path) -> None:
    _selinux(sys_root)
    lsm.check_available(_spec({"selinuxLabel": "system_u:system_r:container_t:s0"},
                              {"mountLabel": "system_u:object_r:container_file_t:s0"}),
                        str(sys_root))


def test_one_module_does_not_stand_for_the_other(sys_root: Path) -> None:
    _apparmor(sys_root, "Y\n")
    assert _refusal(_spec({"apparmorProfile": "p", "selinuxLabel": "l"}),
                    sys_root).field == "process.selinuxLabel"
    other = sys_root.parent / "sys2"
    _selinux(other)
    assert _refusal(_spec({"apparmorProfile": "p", "selinuxLabel": "l"}),
                    other).field == "process.apparmorProfile"


# --- exec_attributes -----------------------------------------------------------------------
@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    _file(root / "self/attr/exec")
    return root


def _attributes(process: dict[str, Any], proc_root: Path) -> list[tuple[str, str]]:
    return lsm.exec_attributes(_spec(process).process.raw,  # type: ignore[union-attr]
                               str(proc_root))


def test_no_attributes_without_the_fields(proc_root: Path) -> None:
    assert _attributes({}, proc_root) == []
    assert _attributes({"apparmorProfile": "", "selinuxLabel": ""}, proc_root) == []


def test_apparmor_on_an_older_kernel_uses_attr_exec(proc_root: Path) -> None:
    assert _attributes({"apparmorProfile": "docker-default"}, proc_root) == [
        (str(proc_root / "self/attr/exec"), "exec docker-default")]


def test_apparmor_on_a_modern_kernel_uses_its_own_file(proc_root: Path) -> None:
    _file(proc_root / "self/attr/apparmor/exec")
    assert _attributes({"apparmorProfile": "docker-default"}, proc_root) == [
        (str(proc_root / "self/attr/apparmor/exec"), "exec docker-default")]


def test_selinux_label_goes_to_attr_exec(proc_root: Path) -> None:
    _file(proc_root / "self/attr/apparmor/exec")  # never for SELinux
    label = "system_u:system_r:container_t:s0:c1,c2"
    assert _attributes({"selinuxLabel": label}, proc_root) == [
        (str(proc_root / "self/attr/exec"), label)]


# --- write_attribute -------------------------------------------------------------------------
def test_write_attribute_on_procfs(tmp_path: Path) -> None:
    path = _file(tmp_path / "exec")
    seen: list[tuple[int, str]] = []

    def on_procfs(fd: int, label: str) -> int:
        seen.append((fd, label))
        assert os.fstat(fd).st_ino == path.stat().st_ino, "the check is on the opened file"
        return PROC_SUPER_MAGIC

    write_on_procfs(str(path), "exec docker-default", on_procfs)
    assert path.read_text() == "exec docker-default"
    assert [label for _, label in seen] == [str(path)]
    with pytest.raises(OSError):
        os.fstat(seen[0][0])  # closed again


@pytest.mark.parametrize("magic", [EXT4_SUPER_MAGIC, TMPFS_MAGIC, 0])
def test_write_attribute_refuses_anything_but_procfs(tmp_path: Path, magic: int) -> None:
    path = _file(tmp_path / "exec", "")
    before = os.listdir("/proc/self/fd")
    with pytest.raises(SyscallError) as caught:
        write_on_procfs(str(path), "exec unconfined", lambda fd, label: magic)
    assert path.read_text() == "", "nothing may be written off procfs"
    assert str(path) in str(caught.value) and "not on procfs" in str(caught.value)
    assert os.listdir("/proc/self/fd") == before, "the descriptor is closed"


def test_write_attribute_does_not_follow_a_symlink(tmp_path: Path) -> None:
    target = _file(tmp_path / "target", "")
    link = tmp_path / "exec"
    link.symlink_to(target)
    with pytest.raises(SyscallError) as caught:
        write_on_procfs(str(link), "exec x", lambda fd, label: PROC_SUPER_MAGIC)
    assert caught.value.operation == "open"
    assert target.read_text() == ""


def test_write_attribute_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    with pytest.raises(SyscallError) as caught:
        write_on_procfs(str(path), "x", lambda fd, label: PROC_SUPER_MAGIC)
    assert str(caught.value) == f"open {path}: no such file or directory"
    assert not path.exists()


def test_write_attribute_reports_a_refused_write(tmp_path: Path) -> None:
    """A kernel refusing the profile is EINVAL/ENOENT on write: it must surface, named."""
    with pytest.raises(SyscallError) as caught:
        write_on_procfs("/dev/full", "exec p", lambda fd, label: PROC_SUPER_MAGIC)
    assert str(caught.value) == "write /dev/full: no space left on device"
