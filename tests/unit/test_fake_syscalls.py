"""The fake syscall seam must stay the same shape as the real one.

Recipe tests (credentials, rootfs, intermediate) run against
``RecordingSyscalls``; if a method were added to or changed on
``LinuxSyscalls`` without the fake and the Protocol following, those tests
would silently exercise a different API than production.  These tests make
that drift a failure, and pin down the fake's own behaviour (recording,
programmed failures, plausible answers) that the recipe tests rely on.
"""

from __future__ import annotations

import errno
import inspect
import os
import stat
from collections.abc import Callable

import pytest

from pyruntime.errors import SyscallError
from pyruntime.syscalls import api, fake
from pyruntime.syscalls.linux import LinuxSyscalls


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


REAL = _public_methods(LinuxSyscalls)


def _shape(signature: inspect.Signature) -> list[tuple[str, object, object, object]]:
    """Names, kinds, defaults and (string) annotations: everything a caller depends on."""
    return [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()]


def _static_conformance(real: LinuxSyscalls, recording: fake.RecordingSyscalls) -> None:
    """Never called: mypy checks that both implementations satisfy the Protocol."""
    seam: api.Syscalls = real
    seam = recording
    del seam


def test_real_seam_has_the_methods_the_recipes_use() -> None:
    """Guards the comparison below against an empty or mis-collected ``REAL``."""
    assert {"mount", "openat2", "prctl", "capset", "execve", "setns"} <= set(REAL)


@pytest.mark.parametrize("cls", [fake.RecordingSyscalls, api.Syscalls], ids=["fake", "protocol"])
def test_same_public_methods_as_linux_syscalls(cls: type) -> None:
    """Exactly the same public names: nothing missing, nothing invented."""
    extra_helpers = {"fail_on", "names", "named", "outstanding_fds", "close"}
    names = set(_public_methods(cls)) - (extra_helpers if cls is fake.RecordingSyscalls else set())
    assert names == set(REAL)


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("cls", [fake.RecordingSyscalls, api.Syscalls], ids=["fake", "protocol"])
def test_same_signature_as_linux_syscalls(cls: type, name: str) -> None:
    assert _shape(inspect.signature(getattr(cls, name))) == _shape(REAL[name])
    assert inspect.signature(getattr(cls, name)).return_annotation == REAL[name].return_annotation


def test_error_words_cover_every_method() -> None:
    """``fail_on`` needs the real operation/target wording for every method."""
    assert fake.METHOD_NAMES == set(REAL)


def _call_everything(sys: fake.RecordingSyscalls) -> None:
    sys.mount("src", "/t", "tmpfs", 1, "size=1k", "label")
    sys.umount("/t")
    sys.mount_setattr(3, "", 0x1000, 1, 0, 0, "/t")
    sys.pivot_root(".", ".")
    os.close(sys.openat2(3, "dev/null", 0, 0x10, "/dev/null"))
    sys.fstatfs_type(3, "/t")
    sys.mknod("/dev/x", 0o20666, 259, "/dev/x")
    sys.unshare(0x20000)
    sys.setns(4, 0x10000000, "user namespace")
    sys.sethostname("h")
    sys.setdomainname("d")
    sys.setgroups([1, 2])
    sys.setresgid(5)
    sys.setresuid(6)
    sys.prctl(38, 1)
    sys.capset(1, 1, 0)
    sys.sched_setattr(1, 0, 0, 10, 0, 0, 0)
    sys.ioprio_set(2, 0, 16388)
    sys.join_session_keyring("_ses.c1")
    sys.personality(8)
    sys.setrlimit(7, 10, 20, "RLIMIT_NOFILE")
    sys.close_range_cloexec(3)
    sys.pidfd_send_signal(9, 15, "process 1")
    sys.loopback_up()
    sys.execve("/bin/sh", ["sh"], {"A": "b"})


def test_records_every_call_in_order_with_defaults_filled_in() -> None:
    with fake.RecordingSyscalls() as sys:
        _call_everything(sys)
        assert sys.names() == [
            "mount", "umount", "mount_setattr", "pivot_root", "openat2", "fstatfs_type", "mknod",
            "unshare", "setns", "sethostname", "setdomainname", "setgroups", "setresgid",
            "setresuid", "prctl", "capset", "sched_setattr", "ioprio_set", "join_session_keyring",
            "personality",
            "setrlimit", "close_range_cloexec",
            "pidfd_send_signal", "loopback_up", "execve"]
        assert set(sys.names()) == set(REAL)
        assert sys.calls[1] == fake.Call("umount", ("/t", 0))
        assert sys.named("prctl") == [fake.Call("prctl", (38, 1, 0, ""))]
        assert sys.named("openat2")[0].args == (3, "dev/null", 0, 0x10, "/dev/null", 0)


@pytest.mark.parametrize(("name", "call", "message"), [
    ("mount", lambda s: s.mount(None, "/proc/self/fd/7", None, 0, None, "/proc"),
     "mount /proc: operation not permitted"),
    ("mount", lambda s: s.mount(None, "/x", None, 0, None), "mount /x: operation not permitted"),
    ("openat2", lambda s: s.openat2(3, "a", 0, 0, "/a"), "open /a: operation not permitted"),
    ("unshare", lambda s: s.unshare(0x20000), "unshare 0x20000: operation not permitted"),
    ("setgroups", lambda s: s.setgroups((1, 2)), "setgroups [1, 2]: operation not permitted"),
    ("prctl", lambda s: s.prctl(24, 3), "prctl 24: operation not permitted"),
    ("prctl", lambda s: s.prctl(24, 3, label="drop CAP_FOWNER"),
     "prctl drop CAP_FOWNER: operation not permitted"),
    ("capset", lambda s: s.capset(0, 0, 0), "capset: operation not permitted"),
    ("pidfd_send_signal", lambda s: s.pidfd_send_signal(3, 9, "process 12"),
     "kill process 12: operation not permitted"),
    ("loopback_up", lambda s: s.loopback_up(), "set link up lo: operation not permitted"),
    ("execve", lambda s: s.execve("/bin/true", ["true"], {}), "exec true: operation not permitted"),
])
def test_programmed_failure_reads_like_the_real_one(
        name: str, call: Callable[[fake.RecordingSyscalls], object], message: str) -> None:
    sys = fake.RecordingSyscalls().fail_on(name, errno.EPERM)
    with pytest.raises(SyscallError) as caught:
        call(sys)
    assert str(caught.value) == message
    assert caught.value.errno == errno.EPERM
    assert sys.names() == [name], "a failed call is still recorded"


def test_failure_match_and_times() -> None:
    sys = fake.RecordingSyscalls()
    sys.fail_on("mount", errno.ENOENT, match=lambda args: args[5] == "/b", times=1)
    sys.mount(None, "/a", None, 0, None, "/a")
    with pytest.raises(SyscallError) as caught:
        sys.mount(None, "/b", None, 0, None, "/b")
    assert caught.value.errno == errno.ENOENT
    sys.mount(None, "/b", None, 0, None, "/b")  # times=1: the second one succeeds
    assert len(sys.named("mount")) == 3


def test_fail_on_refuses_a_name_the_real_seam_lacks() -> None:
    with pytest.raises(ValueError, match="mountt"):
        fake.RecordingSyscalls().fail_on("mountt", errno.EPERM)


def test_openat2_returns_real_descriptors_and_finds_leaks() -> None:
    with fake.RecordingSyscalls(files={"/etc/hosts"}) as sys:
        folder = sys.openat2(3, "dev", os.O_PATH, 0, "/dev")
        regular = sys.openat2(3, "etc/hosts", os.O_PATH, 0, "/etc/hosts")
        assert stat.S_ISDIR(os.fstat(folder).st_mode)
        assert stat.S_ISREG(os.fstat(regular).st_mode)
        assert not os.get_inheritable(folder)
        assert sys.outstanding_fds() == sorted([folder, regular])
        os.close(folder)
        os.close(regular)
        assert sys.outstanding_fds() == []


def test_capability_answers_follow_the_host_mask() -> None:
    host = (1 << 0) | (1 << 21)
    sys = fake.RecordingSyscalls(host_capabilities=host, last_capability=37)
    assert [sys.prctl(fake.PR_CAPBSET_READ, n) for n in range(38)].count(1) == 2
    assert sys.prctl(fake.PR_CAPBSET_READ, 21) == 1
    with pytest.raises(SyscallError) as caught:
        sys.prctl(fake.PR_CAPBSET_READ, 38)
    assert caught.value.errno == errno.EINVAL
    sys.prctl(fake.PR_CAPBSET_DROP, 21)
    assert sys.prctl(fake.PR_CAPBSET_READ, 21) == 0


def test_ambient_raise_needs_permitted_and_inheritable() -> None:
    """The kernel's rule, so a recipe that gets the order wrong fails in the fake too."""
    sys = fake.RecordingSyscalls()
    sys.capset(0b11, 0b11, 0b01)
    sys.prctl(fake.PR_CAP_AMBIENT, fake.PR_CAP_AMBIENT_RAISE, 0)
    with pytest.raises(SyscallError) as caught:
        sys.prctl(fake.PR_CAP_AMBIENT, fake.PR_CAP_AMBIENT_RAISE, 1)
    assert caught.value.errno == errno.EPERM
    assert sys.ambient == 0b01
    with pytest.raises(SyscallError):
        sys.capset(0b100, 0b011, 0)  # effective must be a subset of permitted


def test_scratch_folder_is_removed_on_close() -> None:
    sys = fake.RecordingSyscalls()
    fd = sys.openat2(3, "x", 0, 0, "/x")
    scratch = os.readlink(f"/proc/self/fd/{fd}")
    os.close(fd)
    assert os.path.isdir(scratch)
    sys.close()
    assert not os.path.exists(scratch)
