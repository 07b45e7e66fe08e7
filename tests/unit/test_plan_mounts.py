"""pyruntime.plan.mounts: from ``mounts[]`` to mount operations, as pure data.

Each option word must land in exactly one of runc's four buckets with the
right bits: a wrong bit here silently makes a mount writable, suid or
executable inside the container.  Expected values below are written from the
kernel headers (linux/mount.h), not copied from the module.
"""

from __future__ import annotations

import pytest

from pyruntime.errors import ConfigError
from pyruntime.plan import mounts as m
from pyruntime.plan.mounts import parse_options, plan_mounts
from pyruntime.spec.model import Mount

# option -> (clears?, bit), from linux/mount.h and mount(8)
EXPECTED_FLAGS: dict[str, tuple[bool, int]] = {
    "acl": (False, 1 << 16), "noacl": (True, 1 << 16),
    "async": (True, 16), "sync": (False, 16),
    "atime": (True, 1024), "noatime": (False, 1024),
    "bind": (False, 4096), "rbind": (False, 4096 | 16384),
    "defaults": (False, 0),
    "dev": (True, 4), "nodev": (False, 4),
    "diratime": (True, 2048), "nodiratime": (False, 2048),
    "dirsync": (False, 128),
    "exec": (True, 8), "noexec": (False, 8),
    "iversion": (False, 1 << 23), "noiversion": (True, 1 << 23),
    "lazytime": (False, 1 << 25), "nolazytime": (True, 1 << 25),
    "loud": (True, 1 << 15), "silent": (False, 1 << 15),
    "mand": (False, 64), "nomand": (True, 64),
    "relatime": (False, 1 << 21), "norelatime": (True, 1 << 21),
    "strictatime": (False, 1 << 24), "nostrictatime": (True, 1 << 24),
    "remount": (False, 32),
    "ro": (False, 1), "rw": (True, 1),
    "suid": (True, 2), "nosuid": (False, 2),
    "nosymfollow": (False, 256), "symfollow": (True, 256),
}
EXPECTED_PROPAGATION = {
    "private": 1 << 18, "rprivate": 1 << 18 | 1 << 14, "shared": 1 << 20,
    "rshared": 1 << 20 | 1 << 14, "slave": 1 << 19, "rslave": 1 << 19 | 1 << 14,
    "unbindable": 1 << 17, "runbindable": 1 << 17 | 1 << 14,
}
# option -> (attr_set, attr_clr) when it is the only option (mount_setattr(2))
ATIME_MASK = 0x70
EXPECTED_RECURSIVE = {
    "rro": (0x1, 0), "rrw": (0, 0x1), "rnosuid": (0x2, 0), "rsuid": (0, 0x2),
    "rnodev": (0x4, 0), "rdev": (0, 0x4), "rnoexec": (0x8, 0), "rexec": (0, 0x8),
    "rnodiratime": (0x80, 0), "rdiratime": (0, 0x80),
    "rnosymfollow": (0x200000, 0), "rsymfollow": (0, 0x200000),
    # atime is an enum: the whole MOUNT_ATTR__ATIME field goes in attr_clr
    "rrelatime": (0x0, ATIME_MASK), "rnoatime": (0x10, ATIME_MASK),
    "rstrictatime": (0x20, ATIME_MASK),
    "rnorelatime": (0, ATIME_MASK), "ratime": (0, ATIME_MASK), "rnostrictatime": (0, ATIME_MASK),
}


def test_tables_are_exactly_the_expected_vocabulary() -> None:
    assert m.FLAG_OPTIONS == EXPECTED_FLAGS
    assert m.PROPAGATION_OPTIONS == EXPECTED_PROPAGATION
    assert set(m.RECURSIVE_OPTIONS) == set(EXPECTED_RECURSIVE)
    assert m.UNSUPPORTED_OPTIONS == {"tmpcopyup", "idmap", "ridmap"}


@pytest.mark.parametrize("option", sorted(EXPECTED_FLAGS))
def test_flag_option_sets_or_clears_its_bit(option: str) -> None:
    clears, bit = EXPECTED_FLAGS[option]
    if not clears:
        assert parse_options([option], "m") == (bit, "", [], 0, 0)
        return
    setter = next(name for name, (c, b) in EXPECTED_FLAGS.items() if not c and b == bit)
    before = parse_options(["nodev", "nosuid", setter], "m")[0]
    assert before & bit == bit
    after = parse_options(["nodev", "nosuid", setter, option], "m")[0]
    assert after == before & ~bit, "only its own bit is cleared"


@pytest.mark.parametrize("option", sorted(EXPECTED_PROPAGATION))
def test_propagation_option(option: str) -> None:
    assert parse_options([option], "m") == (0, "", [EXPECTED_PROPAGATION[option]], 0, 0)


def test_propagation_options_keep_their_order() -> None:
    """Each is its own mount(2) call, made in config order."""
    assert parse_options(["rshared", "private"], "m")[2] == [1 << 20 | 1 << 14, 1 << 18]


@pytest.mark.parametrize("option", sorted(EXPECTED_RECURSIVE))
def test_recursive_option(option: str) -> None:
    flags, data, propagation, attr_set, attr_clr = parse_options([option], "m")
    assert (flags, data, propagation) == (0, "", [])
    assert (attr_set, attr_clr) == EXPECTED_RECURSIVE[option]


@pytest.mark.parametrize(("options", "expected"), [
    (["ro", "rw"], 0), (["rw", "ro"], 1), (["nosuid", "suid", "nosuid"], 2),
    (["noexec", "exec", "nodev"], 4), (["bind", "ro"], 4096 | 1),
])
def test_later_flag_options_override_earlier(options: list[str], expected: int) -> None:
    assert parse_options(options, "m")[0] == expected


@pytest.mark.parametrize(("options", "expected"), [
    (["rro", "rrw"], (0, 1)), (["rrw", "rro"], (1, 0)),
    (["rnosuid", "rnodev", "rsuid"], (4, 2)),
    (["rnoatime", "rstrictatime"], (0x20, ATIME_MASK)),
    (["rstrictatime", "rrelatime"], (0, ATIME_MASK)),
    (["rnoatime", "ratime"], (0, ATIME_MASK)),
    (["rstrictatime", "rnostrictatime"], (0, ATIME_MASK)),
])
def test_later_recursive_options_override_earlier(options: list[str],
                                                  expected: tuple[int, int]) -> None:
    assert parse_options(options, "m")[3:] == expected


def test_everything_else_is_data_joined_with_commas() -> None:
    flags, data, _, _, _ = parse_options(
        ["nosuid", "size=64k", "mode=755", "newinstance", "uid=0"], "m")
    assert flags == 2
    assert data == "size=64k,mode=755,newinstance,uid=0"


@pytest.mark.parametrize("option", ["tmpcopyup", "idmap", "ridmap"])
def test_unsupported_options_are_refused_with_their_field(option: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(["nosuid", option], "mounts[3]")
    assert caught.value.field == "mounts[3].options[1]"
    assert str(caught.value) == f"config.json: mounts[3].options[1]: {option!r} is not supported yet"


def _mount(destination: str, type_: str | None = None, source: str | None = None,
           options: list[str] | None = None) -> Mount:
    raw: dict[str, object] = {"destination": destination}
    if type_ is not None:
        raw["type"] = type_
    if source is not None:
        raw["source"] = source
    if options is not None:
        raw["options"] = options
    return Mount(raw)


def test_plan_mounts_keeps_config_order_and_indices() -> None:
    ops = plan_mounts([_mount("/proc", "proc", "proc"), _mount("/dev", "tmpfs", "tmpfs",
                                                               ["nosuid", "mode=755"]),
                       _mount("/data", None, "/host", ["rbind", "ro"])])
    assert [(op.index, op.field, op.destination) for op in ops] == [
        (0, "mounts[0]", "/proc"), (1, "mounts[1]", "/dev"), (2, "mounts[2]", "/data")]
    assert (ops[1].fstype, ops[1].flags, ops[1].data) == ("tmpfs", 2, "mode=755")


@pytest.mark.parametrize(("type_", "options", "flags"), [
    ("bind", [], 4096), ("bind", ["rbind"], 4096 | 16384), (None, ["bind"], 4096),
    (None, ["rbind"], 4096 | 16384), ("none", ["rbind"], 4096 | 16384),
])
def test_bind_mounts(type_: str | None, options: list[str], flags: int) -> None:
    [op] = plan_mounts([_mount("/x", type_, "/src", options)])
    assert op.is_bind
    assert op.flags == flags
    assert op.source == "/src"


def test_non_bind_mount_is_not_bind() -> None:
    [op] = plan_mounts([_mount("/t", "tmpfs", "tmpfs", ["ro"])])
    assert not op.is_bind
    assert not op.needs_remount  # mount(2) applies MS_RDONLY directly


@pytest.mark.parametrize(("options", "needs"), [
    (["bind"], False), (["rbind"], False), (["bind", "remount"], False),
    (["bind", "ro"], True), (["rbind", "nosuid"], True), (["bind", "noexec", "nodev"], True),
    (["bind", "rro"], False),  # recursive attributes are mount_setattr, not a remount
    (["bind", "rprivate"], False),
])
def test_needs_remount(options: list[str], needs: bool) -> None:
    [op] = plan_mounts([_mount("/x", "bind", "/src", options)])
    assert op.needs_remount is needs


def test_repr_names_the_destination() -> None:
    [op] = plan_mounts([_mount("/x", "bind", "/src", ["ro"])])
    assert "'/x'" in repr(op) and "flags=0x1001" in repr(op)
