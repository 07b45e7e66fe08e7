"""pyruntime.seccomp against the real kernel: filters loaded in forked children.

Until the init loads the filter, the loader is tested directly: each test forks,
the child sets no_new_privs, loads a plan and exercises syscalls, and reports
what happened as JSON lines on a pipe; the parent checks errnos, the signal
that killed the child and /proc/<child>/status.  A child may stop at a
checkpoint so the parent can look at it while the filter is in force.

Tests without the ``root`` mark need only libseccomp: they build a filter and
read it back (seccomp_attr_get, seccomp_export_pfc) without loading it.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from pyruntime.errors import ConfigError, SyscallError
from pyruntime.plan.seccomp import plan_seccomp
from pyruntime.seccomp import (build_filter, connect_listener, load_filter, send_notify_fd,
                               unknown_syscalls)
from pyruntime.syscalls import _libseccomp as lib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_seccomp_plan import PODMAN_PROFILE, podman_to_oci  # noqa: E402

try:
    lib.load()
except OSError:  # pragma: no cover - Debian's libseccomp2 is a dependency of the project
    pytest.skip("needs libseccomp2", allow_module_level=True)

PR_SET_NO_NEW_PRIVS = 38
SIGSYS = 31
TIMEOUT = 10.0
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.syscall.restype = ctypes.c_long


def nr(name: str) -> int:
    number = lib.resolve_syscall(name)
    assert number >= 0, name
    return number


def syscall(name: str, *args: int) -> tuple[int, int]:
    """(return value, errno): the raw syscall, so the filter sees exactly ``args``."""
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr(name)), *(ctypes.c_ulong(arg) for arg in args))
    return int(result), (ctypes.get_errno() if result == -1 else 0)


def os_errno(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as exc:
        return exc.errno or -1
    return 0


def plan(raw: dict[str, Any]) -> Any:
    result = plan_seccomp(raw)
    assert result is not None
    return result


# --- the forked child --------------------------------------------------------------
class Child:
    """A forked child running ``body(checkpoint)``; ``body`` returns the result dict."""

    def __init__(self, body: Callable[[Callable[[], None]], dict[str, Any]],
                 no_new_privs: bool = True) -> None:
        up_read, up_write = os.pipe()
        down_read, down_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the child
            os.close(up_read)
            os.close(down_write)
            self._run_child(body, no_new_privs, up_write, down_read)
        os.close(up_write)
        os.close(down_read)
        self._up, self._down, self._buffer = up_read, down_write, b""
        self.status: int | None = None

    @staticmethod
    def _run_child(body: Callable[[Callable[[], None]], dict[str, Any]], no_new_privs: bool,
                   up: int, down: int) -> None:  # pragma: no cover - runs in the child
        def send(message: dict[str, Any]) -> None:
            os.write(up, json.dumps(message).encode() + b"\n")

        def checkpoint() -> None:
            send({"checkpoint": True})
            os.read(down, 1)

        code = 0
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSYS would dump core
            if no_new_privs:
                assert libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                                  ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
            send({"result": body(checkpoint)})
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            send({"error": f"{type(exc).__name__}: {exc}"})
            code = 3
        os._exit(code)

    def receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._up], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._up, 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"child {self.pid} sent nothing (status {self.wait()})")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        assert "error" not in message, message["error"]
        return message

    def at_checkpoint(self) -> None:
        assert self.receive() == {"checkpoint": True}

    def resume(self) -> None:
        os.write(self._down, b"g")

    def result(self) -> dict[str, Any]:
        message = self.receive()
        assert "result" in message, message
        result: dict[str, Any] = message["result"]
        return result

    def wait(self) -> int:
        """The wait status; a child that hangs is killed and fails the test."""
        if self.status is None:
            deadline = time.monotonic() + TIMEOUT
            while True:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    raise AssertionError(f"child {self.pid} hung")
                time.sleep(0.01)
            self.status = status
            os.close(self._up)
            os.close(self._down)
        return self.status


def status_fields(pid: int | str, task: str = "") -> dict[str, str]:
    path = f"/proc/{pid}/task/{task}/status" if task else f"/proc/{pid}/status"
    return dict(line.split(":\t", 1) for line in Path(path).read_text().splitlines()
                if ":\t" in line)


# --- loading, in a child (root) ----------------------------------------------------
@pytest.mark.root
def test_errno_argument_condition_kill_and_status(tmp_path: Path) -> None:
    target = tmp_path / "made"
    filter_plan = plan({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 38},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
             "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
            {"names": ["chroot"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"},  # = default: skipped
        ]})

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        skipped: list[str] = []
        notify_fd = load_filter(filter_plan, skipped)
        checkpoint()
        result = {"skipped": skipped, "notify_fd": notify_fd,
                  "mkdir": os_errno(lambda: os.mkdir(target)), "exists": target.exists(),
                  "getpid 7": syscall("getpid", 7), "getpid 8": syscall("getpid", 8),
                  "pid": os.getpid()}
        os.write(1, b"")  # other syscalls still work
        return result

    child = Child(body)
    child.at_checkpoint()
    status = status_fields(child.pid)
    assert (status["Seccomp"], status["NoNewPrivs"]) == ("2", "1")
    assert status.get("Seccomp_filters", "1") == "1"
    child.resume()
    result = child.result()
    assert result["skipped"] == ["no_such_syscall_xyz"]
    assert result["notify_fd"] is None
    assert (result["mkdir"], result["exists"]) == (errno.ENOSYS, False)
    assert result["getpid 7"] == [-1, 99]
    assert result["getpid 8"] == [child.pid, 0] == [result["pid"], 0]
    assert os.WIFEXITED(child.wait()) and os.WEXITSTATUS(child.wait()) == 0

    def killed(checkpoint: Callable[[], None]) -> dict[str, Any]:
        load_filter(filter_plan)
        os.chroot("/")
        return {"survived": True}

    child = Child(killed)
    status_word = child.wait()
    assert os.WIFSIGNALED(status_word) and os.WTERMSIG(status_word) == SIGSYS


OPERATOR_CASES = [  # (operator, syscall, probes -> denied?)
    ("SCMP_CMP_NE", "getpid", {9: True, 10: False, 11: True}),
    ("SCMP_CMP_LT", "getppid", {9: True, 10: False, 11: False}),
    ("SCMP_CMP_LE", "getuid", {9: True, 10: True, 11: False}),
    ("SCMP_CMP_EQ", "getgid", {9: False, 10: True, 11: False}),
    ("SCMP_CMP_GE", "geteuid", {9: False, 10: True, 11: True}),
    ("SCMP_CMP_GT", "getegid", {9: False, 10: False, 11: True}),
    ("SCMP_CMP_MASKED_EQ", "getpgrp", {0x05: False, 0x15: True, 0x25: False, 0x1F: True}),
]


@pytest.mark.root
def test_operators_and_runc_condition_semantics() -> None:
    syscalls: list[dict[str, Any]] = [
        {"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 100 + position,
         "args": [{"index": 0, "value": 0xF0 if op.endswith("MASKED_EQ") else 10,
                   "valueTwo": 0x10, "op": op}]}
        for position, (op, name, _) in enumerate(OPERATOR_CASES)]
    # different arguments: one rule, all must match; the same argument twice: either
    syscalls.append({"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 120,
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                              {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]})
    syscalls.append({"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": 121,
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                              {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]})
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})
    probes = {name: list(cases) for _, name, cases in OPERATOR_CASES}

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        load_filter(filter_plan)
        errnos = {name: [syscall(name, value)[1] for value in values]
                  for name, values in probes.items()}
        errnos["gettid"] = [syscall("gettid", *pair)[1] for pair in ((1, 2), (1, 0), (0, 2))]
        errnos["sched_yield"] = [syscall("sched_yield", value)[1] for value in (1, 2, 3)]
        return errnos

    child = Child(body)
    result = child.result()
    for position, (op, name, cases) in enumerate(OPERATOR_CASES):
        assert result[name] == [100 + position if denied else 0 for denied in cases.values()], op
    assert result["gettid"] == [120, 0, 0]
    assert result["sched_yield"] == [121, 121, 0]
    assert os.WEXITSTATUS(child.wait()) == 0


@pytest.mark.root
def test_trap_trace_log_and_errno_zero(tmp_path: Path) -> None:
    logged, kept = tmp_path / "logged", tmp_path / "kept"
    kept.mkdir()
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getpgrp"], "action": "SCMP_ACT_TRACE"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]})

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        trapped: list[int] = []
        signal.signal(signal.SIGSYS, lambda number, frame: trapped.append(number))
        load_filter(filter_plan)
        syscall("getppid")
        for _ in range(100):  # the Python-level handler runs between bytecodes
            if trapped:
                break
        return {"trapped": trapped, "trace": syscall("getpgrp"),
                "mkdir": os_errno(lambda: os.mkdir(logged)),
                "rmdir": os_errno(lambda: os.rmdir(kept)), "kept": kept.is_dir()}

    child = Child(body)
    result = child.result()
    assert result["trapped"] == [SIGSYS]
    assert result["trace"] == [-1, errno.ENOSYS]  # no tracer attached
    assert result["mkdir"] == 0 and logged.is_dir()
    assert (result["rmdir"], result["kept"]) == (0, True)  # "succeeded", did nothing
    assert os.WEXITSTATUS(child.wait()) == 0


@pytest.mark.root
def test_kill_thread_kills_only_the_calling_thread() -> None:
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL"}]})

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        load_filter(filter_plan)
        before = len(os.listdir("/proc/self/task"))
        threading.Thread(target=lambda: syscall("getppid"), daemon=True).start()
        for _ in range(200):
            time.sleep(0.01)
            if len(os.listdir("/proc/self/task")) == before:
                break
        return {"tasks": len(os.listdir("/proc/self/task")), "before": before}

    child = Child(body)
    result = child.result()
    assert result["tasks"] == result["before"] == 1
    assert os.WEXITSTATUS(child.wait()) == 0


@pytest.mark.root
@pytest.mark.parametrize("flags", [
    ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    [],
])
def test_tsync_reaches_every_thread(flags: list[str]) -> None:
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        release = threading.Event()
        thread = threading.Thread(target=release.wait, daemon=True)
        thread.start()
        load_filter(filter_plan)
        checkpoint()
        release.set()
        thread.join()
        return {"main": threading.get_native_id()}

    child = Child(body)
    child.at_checkpoint()
    tasks = {task: status_fields(child.pid, task)["Seccomp"]
             for task in os.listdir(f"/proc/{child.pid}/task")}
    child.resume()
    main = str(child.result()["main"])
    assert len(tasks) == 2 and tasks[main] == "2"
    others = {mode for task, mode in tasks.items() if task != main}
    assert others == ({"2"} if "SECCOMP_FILTER_FLAG_TSYNC" in flags else {"0"})
    assert os.WEXITSTATUS(child.wait()) == 0


@pytest.mark.root
def test_load_without_no_new_privs_or_cap_sys_admin_fails() -> None:
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW"})

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        os.setresuid(65534, 65534, 65534)  # loses every effective capability
        try:
            load_filter(filter_plan)
        except SyscallError as exc:
            return {"error": str(exc), "errno": exc.errno}
        return {}

    child = Child(body, no_new_privs=False)
    assert child.result() == {"error": "load seccomp filter: permission denied",
                              "errno": errno.EACCES}
    assert os.WEXITSTATUS(child.wait()) == 0


# --- SCMP_ACT_NOTIFY ---------------------------------------------------------------
class Agent(threading.Thread):
    """A seccomp agent: receives the fd and state, answers ``answers`` notifications
    (syscall name -> (val, error)), records what it saw."""

    def __init__(self, path: Path, answers: dict[str, tuple[int, int]]) -> None:
        super().__init__(daemon=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.server.settimeout(TIMEOUT)
        self.answers = answers
        self.state: dict[str, Any] = {}
        self.seen: list[tuple[int, int]] = []  # (syscall number, pid)
        self.eof_after_state = False
        self.failure = ""

    def run(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failure = f"{type(exc).__name__}: {exc}"

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            connection.settimeout(TIMEOUT)
            data, ancillary, _, _ = connection.recvmsg(65536, socket.CMSG_SPACE(4))
            self.eof_after_state = connection.recv(1) == b""
        (level, kind, rights), = ancillary
        assert (level, kind, len(rights)) == (socket.SOL_SOCKET, socket.SCM_RIGHTS, 4)
        self.state = json.loads(data)
        notify_fd = int.from_bytes(rights, sys.byteorder, signed=True)
        seccomp = lib.load()
        request = ctypes.POINTER(lib.Notif)()
        response = ctypes.POINTER(lib.NotifResp)()
        assert seccomp.seccomp_notify_alloc(ctypes.byref(request), ctypes.byref(response)) == 0
        names = {nr(name): name for name in self.answers}
        try:
            for _ in self.answers:
                ready, _, _ = select.select([notify_fd], [], [], TIMEOUT)
                assert ready, "no notification"
                ctypes.memset(request, 0, ctypes.sizeof(lib.Notif))  # the kernel wants it zeroed
                assert seccomp.seccomp_notify_receive(notify_fd, request) == 0
                got = request.contents
                self.seen.append((got.data.nr, got.pid))
                val, error = self.answers[names[got.data.nr]]
                ctypes.memset(response, 0, ctypes.sizeof(lib.NotifResp))
                response.contents.id, response.contents.val = got.id, val
                response.contents.error = error
                assert seccomp.seccomp_notify_respond(notify_fd, response) == 0
        finally:
            seccomp.seccomp_notify_free(request, response)
            os.close(notify_fd)
            self.server.close()


@pytest.mark.root
def test_notify_sends_the_fd_and_the_agent_answers(tmp_path: Path) -> None:
    listener = tmp_path / "agent.sock"
    agent = Agent(listener, {"getppid": (4242, 0), "mkdir": (0, -errno.EXDEV)})
    agent.start()
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(listener),
                        "listenerMetadata": "MKNOD=/dev/null",
                        "syscalls": [{"names": ["getppid", "mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "bundle": "/b",
             "annotations": {"k": "v"}}

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        connection = connect_listener(filter_plan.listener_path)  # before the filter
        notify_fd = load_filter(filter_plan)
        assert notify_fd is not None
        send_notify_fd(filter_plan.listener_path, notify_fd, {**state, "pid": os.getpid()},
                       filter_plan.listener_metadata, connection)
        os.close(notify_fd)
        return {"getppid": os.getppid(), "mkdir": os_errno(lambda: os.mkdir(tmp_path / "d")),
                "pid": os.getpid()}

    child = Child(body)
    result = child.result()
    assert os.WEXITSTATUS(child.wait()) == 0
    agent.join(TIMEOUT)
    assert agent.failure == ""
    assert result["getppid"] == 4242 and result["mkdir"] == errno.EXDEV
    assert not (tmp_path / "d").exists()
    assert agent.seen == [(nr("getppid"), child.pid), (nr("mkdir"), child.pid)]
    assert agent.state == {"ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": child.pid,
                           "metadata": "MKNOD=/dev/null",
                           "state": {**state, "pid": child.pid}}
    assert agent.eof_after_state  # one state per connection, then closed


# --- the podman profile ------------------------------------------------------------
@pytest.mark.root
@pytest.mark.skipif(not PODMAN_PROFILE.exists(), reason="needs golang-github-containers-common")
def test_podman_profile_denies_and_allows(tmp_path: Path) -> None:
    filter_plan = plan(podman_to_oci(json.loads(PODMAN_PROFILE.read_text())))
    AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, ADDR_NO_RANDOMIZE = 16, 3, 9, 0x0040000

    def body(checkpoint: Callable[[], None]) -> dict[str, Any]:
        skipped: list[str] = []
        load_filter(filter_plan, skipped)
        denied = {"add_key": syscall("add_key", 0, 0, 0, 0, 0)[1],  # not listed: default
                  "userfaultfd": syscall("userfaultfd", 0)[1],  # listed: EPERM
                  "acct": syscall("acct", 0)[1],  # needs CAP_SYS_PACCT, not granted
                  "personality": syscall("personality", ADDR_NO_RANDOMIZE)[1],
                  "audit socket": syscall("socket", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)[1]}
        work = tmp_path / "work"
        work.mkdir()
        (work / "file").write_text("hello")
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/true", ["true"])
        _, status = os.waitpid(pid, 0)
        allowed = {"read": (work / "file").read_text(), "listdir": os.listdir(work),
                   "fork+exec": os.waitstatus_to_exitcode(status),
                   "personality query": syscall("personality", 0xFFFFFFFF)[1],
                   "unix socket": syscall("socket", socket.AF_UNIX, socket.SOCK_STREAM, 0)[1]}
        return {"denied": denied, "allowed": allowed, "skipped": skipped}

    child = Child(body)
    result = child.result()
    assert result["denied"] == {"add_key": errno.ENOSYS, "userfaultfd": errno.EPERM,
                                "acct": errno.EPERM, "personality": errno.ENOSYS,
                                "audit socket": errno.EINVAL}
    assert result["allowed"] == {"read": "hello", "listdir": ["file"], "fork+exec": 0,
                                 "personality query": 0, "unix socket": 0}
    assert os.WEXITSTATUS(child.wait()) == 0


# --- without loading (no root) -------------------------------------------------------
def _pfc(ctx: int) -> str:
    read, write = os.pipe()
    try:
        assert lib.load().seccomp_export_pfc(ctx, write) == 0
    finally:
        os.close(write)
    with os.fdopen(read) as stream:
        return stream.read()


def _attribute(ctx: int, attribute: int) -> int:
    value = ctypes.c_uint32()
    assert lib.load().seccomp_attr_get(ctx, attribute, ctypes.byref(value)) == 0
    return value.value


def test_build_filter_reads_back() -> None:
    filter_plan = plan({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
                        "syscalls": [{"names": ["read", "made_up_call"], "action": "SCMP_ACT_ALLOW"},
                                     {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": 38}]})
    skipped: list[str] = []
    ctx = build_filter(filter_plan, skipped)
    try:
        assert skipped == ["made_up_call"]
        assert [_attribute(ctx, a) for a in (lib.ATTR_CTL_TSYNC, lib.ATTR_CTL_LOG,
                                             lib.ATTR_CTL_SSB, lib.ATTR_CTL_NNP)] == [1, 1, 0, 0]
        assert _attribute(ctx, lib.ATTR_ACT_DEFAULT) == 0x00050000 | 38
        assert lib.load().seccomp_arch_exist(ctx, 0x40000003) == 0  # x86 added
        pfc = _pfc(ctx)
        assert '"read"' in pfc and "action ALLOW" in pfc
        assert '"mkdir"' not in pfc  # same action as the default: skipped as runc does
        assert pfc.count("# filter for arch") == 2
    finally:
        lib.load().seccomp_release(ctx)
    assert unknown_syscalls(filter_plan) == ["made_up_call"]


def test_wait_killable_recv_needs_libseccomp_2_6() -> None:
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW",
                        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})
    if lib.api_level() >= lib.API_WAITKILL:
        ctx = build_filter(filter_plan)
        try:
            assert _attribute(ctx, lib.ATTR_CTL_WAITKILL) == 1
        finally:
            lib.load().seccomp_release(ctx)
        return
    with pytest.raises(ConfigError) as caught:
        build_filter(filter_plan)
    assert caught.value.field == "linux.seccomp.flags[0]"
    assert caught.value.problem == (
        f"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported by libseccomp "
        f"{lib.version()} (API level {lib.api_level()})")


def test_architecture_this_libseccomp_lacks() -> None:
    filter_plan = plan({"defaultAction": "SCMP_ACT_ALLOW",
                        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_M68K"]})
    if lib.resolve_arch("m68k"):
        pytest.skip("this libseccomp knows m68k")
    with pytest.raises(ConfigError) as caught:
        build_filter(filter_plan)
    assert caught.value.field == "linux.seccomp.architectures[1]"
    assert caught.value.problem.startswith(f"SCMP_ARCH_M68K is not supported by libseccomp "
                                           f"{lib.version()}: ")


def test_send_notify_fd_protocol(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    read_end, write_end = os.pipe()
    try:
        early = connect_listener(str(path))
        send_notify_fd(str(path), read_end, {"id": "c", "pid": 77, "status": "creating"}, "",
                       early)
        assert early.fileno() == -1  # closed after the one state it carries
        connection, _ = server.accept()
        with connection:
            data, ancillary, _, _ = connection.recvmsg(65536, socket.CMSG_SPACE(4))
            tail = connection.recv(1)
        received = int.from_bytes(ancillary[0][2], sys.byteorder, signed=True)
        try:
            assert os.fstat(received).st_ino == os.fstat(read_end).st_ino
        finally:
            os.close(received)
        assert json.loads(data) == {"ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": 77,
                                    "state": {"id": "c", "pid": 77, "status": "creating"}}
        assert tail == b""
    finally:
        server.close()
        os.close(read_end)
        os.close(write_end)


def test_listener_nobody_listens_on(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    with pytest.raises(SyscallError) as caught:
        send_notify_fd(str(missing), 0, {"pid": 1}, "")
    assert str(caught.value) == f"connect to seccomp listener {missing}: no such file or directory"
    bound = tmp_path / "bound.sock"
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(bound))  # bound, never listening
    try:
        with pytest.raises(SyscallError) as caught:
            connect_listener(str(bound))
        assert str(caught.value) == f"connect to seccomp listener {bound}: connection refused"
    finally:
        silent.close()
