"""linux.seccomp end to end: real containers whose filter is checked by effect.

The loader itself (every action, operator and flag) is covered in
test_seccomp.py in forked children; here the runtime applies it: from
config.json, at the right moment, to exec'd processes too, with NOTIFY's fd
reaching an agent at listenerPath.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error

pytestmark = pytest.mark.root

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
EXDEV = 18


def errno_rule(names: list[str], errno_value: int) -> dict[str, Any]:
    return {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno_value}


def seccomp(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": list(rules), **extra}


def test_errno_rule_denies_and_status_shows_the_filter(rt: Runtime, bundles: BundleFactory,
                                                       cid: str) -> None:
    """mkdir gets the configured errno (EXDEV: 'cross-device link'); others still work."""
    bundle = bundles.make(["sh", "-c", "grep '^Seccomp:' /proc/self/status; "
                                       "mkdir /tmp/x 2>&1; echo after"],
                          linux={"seccomp": seccomp(errno_rule(["mkdir", "mkdirat"], EXDEV))},
                          extra_mounts=[{"destination": "/tmp", "type": "tmpfs",
                                                      "source": "tmpfs"}])
    result = rt.run(cid, bundle).ok()
    assert "Seccomp:\t2" in result.stdout
    assert "Invalid cross-device link" in result.stdout
    assert result.stdout.rstrip().endswith("after")


def test_without_seccomp_the_same_mkdir_works(rt: Runtime, bundles: BundleFactory,
                                              cid: str) -> None:
    """The control for the test above: the denial is the filter's doing."""
    bundle = bundles.make(["sh", "-c", "grep '^Seccomp:' /proc/self/status; mkdir /tmp/x && "
                                       "echo made"],
                          extra_mounts=[{"destination": "/tmp", "type": "tmpfs",
                                         "source": "tmpfs"}])
    result = rt.run(cid, bundle).ok()
    assert "Seccomp:\t0" in result.stdout and "made" in result.stdout


def test_kill_action_kills_the_process(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """KILL_PROCESS: the process dies of SIGSYS (31), and run reports 128+31."""
    bundle = bundles.make(["chroot", "/", "true"],
                          linux={"seccomp": seccomp({"names": ["chroot"],
                                                     "action": "SCMP_ACT_KILL_PROCESS"})})
    assert rt.run(cid, bundle).returncode == 128 + 31


def test_exec_gets_the_containers_filter(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["sleep", "100"], linux={
        "seccomp": seccomp(errno_rule(["mkdir", "mkdirat"], EXDEV))})
    rt.create(cid, bundle).ok()
    rt.start(cid).ok()
    try:
        result = rt("exec", cid, "sh", "-c", "grep '^Seccomp:' /proc/self/status; "
                                             "mkdir /dev/shm/x 2>&1; true").ok()
        assert "Seccomp:\t2" in result.stdout
        assert "Invalid cross-device link" in result.stdout
    finally:
        rt.delete(cid, force=True).ok()


def test_filter_is_loaded_after_the_runtimes_own_work(rt: Runtime, bundles: BundleFactory,
                                                      cid: str) -> None:
    """A filter that denies what the runtime itself does late (mount, sethostname, the
    fifo's read) does not break create or start: it applies from the user's process on."""
    bundle = bundles.make(["sh", "-c", "hostname; echo ok"], linux={"seccomp": seccomp(
        errno_rule(["mount", "umount2", "pivot_root", "sethostname", "capset", "prctl",
                    "setresuid", "setresgid", "setgroups", "close_range"], 1))})
    result = rt.run(cid, bundle).ok()
    assert result.stdout.split() == ["pyruntime", "ok"]


@pytest.mark.skipif(not PODMAN_PROFILE.exists(),
                    reason="apt-get install golang-github-containers-common for podman's profile")
def test_podmans_default_profile_runs_busybox_and_denies_what_it_denies(
        rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Podman's real profile, converted as podman converts it for amd64 without extra caps."""
    profile = json.loads(PODMAN_PROFILE.read_text())
    rules = []
    for entry in profile["syscalls"]:
        includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
        if includes.get("caps") or (includes.get("arches") and "amd64" not in includes["arches"]):
            continue
        if excludes.get("arches") and "amd64" in excludes["arches"]:
            continue
        rule = {key: entry[key] for key in ("names", "action", "args", "errnoRet") if entry.get(key)}
        rules.append(rule)
    config = {"defaultAction": profile["defaultAction"],
              "defaultErrnoRet": profile.get("defaultErrnoRet", 1),
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
              "syscalls": rules}
    # The profile allows sethostname only to containers with CAP_SYS_ADMIN and was
    # converted for one without; the container is given the capability anyway, so that
    # the kernel alone would allow it (the control run shows it does): the EPERM is the
    # filter's.
    caps = {kind: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]
            for kind in ("bounding", "effective", "permitted")}
    script = ("ls / >/dev/null && echo fs-ok; sh -c 'echo child-ok'; "
              "hostname renamed 2>&1 | head -1; hostname")
    result = rt.run(cid, bundles.make(["sh", "-c", script], linux={"seccomp": config},
                                      process={"capabilities": caps})).ok()
    lines = result.stdout.splitlines()
    assert lines[:2] == ["fs-ok", "child-ok"]
    assert "Operation not permitted" in lines[2], "sethostname must be refused by the profile"
    assert lines[-1] == "pyruntime"
    control = rt.run(f"{cid}-control", bundles.make(["sh", "-c", script],
                                                    process={"capabilities": caps})).ok()
    assert control.stdout.splitlines()[-1] == "renamed"


def test_notify_hands_the_fd_and_state_to_the_agent(rt: Runtime, bundles: BundleFactory,
                                                    cid: str, test_dir: Path) -> None:
    """The agent at listenerPath receives the notify fd (SCM_RIGHTS) and the container
    process state, as runc sends them; closing the fd unblocks the notified syscall."""
    listener_path = str(test_dir / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listener_path)
    server.listen(1)
    server.settimeout(20)
    received: dict[str, Any] = {}

    def agent() -> None:
        connection, _ = server.accept()
        with connection:
            message, fds, _, _ = socket.recv_fds(connection, 65536, 4)
            received["state"] = json.loads(message)
            received["fds"] = fds
            for fd in fds:
                received["fd_kind"] = os.readlink(f"/proc/self/fd/{fd}")
                os.close(fd)  # no answers: the notified syscall then fails with ENOSYS

    thread = threading.Thread(target=agent)
    thread.start()
    try:
        bundle = bundles.make(["sh", "-c", "mkdir /dev/shm/x 2>&1; echo after"], linux={
            "seccomp": seccomp({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                               listenerPath=listener_path, listenerMetadata="meta-data")})
        result = rt.run(cid, bundle).ok()
    finally:
        thread.join(30)
        server.close()
    state = received["state"]
    assert len(received["fds"]) == 1 and "seccomp" in received["fd_kind"]
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "meta-data"
    assert state["state"]["id"] == cid and isinstance(state["pid"], int) and state["pid"] > 1
    assert result.stdout.rstrip().endswith("after")


def test_listener_nobody_serves_fails_create(rt: Runtime, bundles: BundleFactory, cid: str,
                                             test_dir: Path) -> None:
    missing = str(test_dir / "nobody.sock")
    bundle = bundles.make(["true"], linux={"seccomp": seccomp(
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}, listenerPath=missing)})
    result = rt.create(cid, bundle)
    assert_one_line_error(result, "seccomp listener", missing)
    assert not (rt.root / cid).exists()


@pytest.mark.parametrize(("change", "needle"), [
    ({"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}, "syscalls[0].action"),
    ({"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, "args[0].index"),
    ({"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}, "args[0].op"),
])
def test_bad_seccomp_is_a_one_line_error_naming_the_field(rt: Runtime, bundles: BundleFactory,
                                                          cid: str, change: dict[str, Any],
                                                          needle: str) -> None:
    bundle = bundles.make(["true"], linux={"seccomp": {**seccomp(), **change}})
    result = rt.create(cid, bundle)
    assert_one_line_error(result, "linux.seccomp", needle)
    assert not (rt.root / cid).exists()
