"""pyruntime.hooks: one hook process, its stdin, argv, env, exit status and timeout.

Real (tiny) ``#!/bin/sh`` scripts in tmp_path, run by the real run_hook: the
state JSON must arrive on stdin byte for byte (config.md "Hooks": "the state
of the container MUST be passed to hooks over stdin"), args/env have execv's
semantics, and a timeout kills the hook.  Where each kind runs is covered in
tests/integration/test_hooks.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pyruntime import hooks, jsonio
from pyruntime.errors import HookError

STATE: dict[str, object] = {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 42,
                            "bundle": "/b", "annotations": {"k": "v é"}}


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def _hook(path: str, **raw: Any) -> hooks.Hook:
    return hooks.Hook({"path": path, **raw})


def _run(kind: str, hook: hooks.Hook, state: dict[str, object] = STATE) -> None:
    hooks.run_hook(kind, hook, jsonio.dumps(state).encode())


def test_state_arrives_on_stdin_exactly(tmp_path: Path) -> None:
    out = tmp_path / "stdin"
    path = _script(tmp_path, "h", f'cat > "{out}"')
    hooks.run_hooks("prestart", [_hook(path)], STATE)
    assert out.read_bytes() == jsonio.dumps(STATE).encode()
    assert json.loads(out.read_bytes()) == STATE


def test_args_are_argv_including_argv0(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    path = _script(tmp_path, "h", f'printf "%s\\n" "$0" "$@" > "{out}"')
    # the kernel runs a #!/bin/sh script as "/bin/sh PATH args[1:]": $0 is the path
    _run("prestart", _hook(path, args=[path, "one", "two words", ""]))
    assert out.read_text().splitlines() == [path, "one", "two words", ""]


def test_argv0_is_passed_as_given(tmp_path: Path) -> None:
    """A binary (not a script) sees args[0] as its argv[0]: /bin/sh -c reads $0 from it."""
    out = tmp_path / "argv0"
    _run("prestart", _hook("/bin/sh", args=["my-name", "-c", f'echo "$0" > "{out}"']))
    assert out.read_text() == "my-name\n"


def test_no_args_means_argv_is_the_path(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    path = _script(tmp_path, "h", f'echo "$# $0" > "{out}"')
    _run("prestart", _hook(path))
    assert out.read_text() == f"0 {path}\n"


ENV_PROBE = "import sys; open(sys.argv[1], 'wb').write(open('/proc/self/environ', 'rb').read())"


def _env_hook(out: Path, env: list[str] | None = None) -> hooks.Hook:
    """python, not sh: a shell adds PWD; /proc/self/environ is what execve got."""
    raw: dict[str, Any] = {"args": ["python", "-c", ENV_PROBE, str(out)]}
    if env is not None:
        raw["env"] = env
    return _hook(sys.executable, **raw)


def test_env_is_exactly_the_hooks(tmp_path: Path) -> None:
    out = tmp_path / "env"
    os.environ["PYRUNTIME_UNIT_LEAK"] = "leaked"
    try:
        _run("poststart", _env_hook(out, ["A=1", "B=x=y", "EMPTY=", "SPACE=a b"]))
    finally:
        del os.environ["PYRUNTIME_UNIT_LEAK"]
    assert out.read_bytes().split(b"\0")[:-1] == [b"A=1", b"B=x=y", b"EMPTY=", b"SPACE=a b"]


def test_no_env_means_an_empty_environment(tmp_path: Path) -> None:
    out = tmp_path / "env"
    _run("poststart", _env_hook(out))
    assert out.read_bytes() == b""


@pytest.mark.parametrize("status", [1, 3, 255])
def test_non_zero_exit_is_a_hook_error(tmp_path: Path, status: int) -> None:
    path = _script(tmp_path, "h", f"exit {status}")
    with pytest.raises(HookError) as caught:
        _run("createRuntime", _hook(path))
    assert str(caught.value) == f"createRuntime hook {path}: exited with status {status}"


def test_killed_by_a_signal_is_a_hook_error(tmp_path: Path) -> None:
    path = _script(tmp_path, "h", "kill -9 $$")
    with pytest.raises(HookError) as caught:
        _run("createContainer", _hook(path))
    message = str(caught.value)
    assert message.startswith(f"createContainer hook {path}: ")
    assert "-9" in message or "signal" in message or "killed" in message, message


def test_timeout_kills_the_hook(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    path = _script(tmp_path, "h", f'echo $$ > "{pid_file}"; exec sleep 30')
    began = time.monotonic()
    with pytest.raises(HookError) as caught:
        _run("prestart", _hook(path, timeout=1))
    elapsed = time.monotonic() - began
    assert str(caught.value) == f"prestart hook {path}: timed out after 1s"
    assert 0.9 <= elapsed < 5, elapsed
    pid = int(pid_file.read_text())
    assert not os.path.exists(f"/proc/{pid}"), "the timed-out hook must be killed and reaped"


def test_a_hook_within_its_timeout_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "done"
    path = _script(tmp_path, "h", f'sleep 0.1; echo ok > "{out}"')
    _run("prestart", _hook(path, timeout=5))
    assert out.read_text() == "ok\n"


def test_timeout_holds_for_a_big_state_the_hook_does_not_read(tmp_path: Path) -> None:
    """The state goes through a pipe: a hook that never reads it cannot stall the write
    past the timeout (once a bug)."""
    path = _script(tmp_path, "h", "exec sleep 4")
    state = {**STATE, "annotations": {"big": "x" * 300_000}}
    began = time.monotonic()
    with pytest.raises(HookError, match="timed out after 1s"):
        _run("prestart", _hook(path, timeout=1), state)
    assert time.monotonic() - began < 3


def test_a_big_state_arrives_whole(tmp_path: Path) -> None:
    """Bigger than a pipe buffer: fed as the hook reads, not cut short."""
    out = tmp_path / "stdin"
    path = _script(tmp_path, "h", f'sleep 0.2; cat > "{out}"')
    state = {**STATE, "annotations": {"big": "x" * 300_000}}
    _run("prestart", _hook(path, timeout=10), state)
    assert out.read_bytes() == jsonio.dumps(state).encode()


def test_missing_path_is_a_hook_error_naming_it(tmp_path: Path) -> None:
    path = str(tmp_path / "no-such-hook")
    with pytest.raises(HookError) as caught:
        _run("poststop", _hook(path))
    assert str(caught.value) == f"poststop hook {path}: no such file or directory"


def test_not_executable_is_a_hook_error(tmp_path: Path) -> None:
    path = _script(tmp_path, "h", "exit 0")
    os.chmod(path, 0o644)
    with pytest.raises(HookError) as caught:
        _run("poststop", _hook(path))
    assert str(caught.value).startswith(f"poststop hook {path}: ")
    assert "permission denied" in str(caught.value)


def test_a_hook_that_does_not_read_stdin(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    path = _script(tmp_path, "h", f'echo ran > "{out}"')
    hooks.run_hooks("prestart", [_hook(path)], STATE)
    assert out.read_text() == "ran\n"
    # and one that closes stdin and exits at once (the write may meet a closed pipe)
    quick = _script(tmp_path, "q", "exec 0<&-; exit 0")
    for _ in range(20):
        hooks.run_hooks("prestart", [_hook(quick)], {**STATE, "annotations": {"x": "y" * 70_000}})


FD_PROBE = """
import os, sys
def alive(fd):
    try:
        os.readlink("/proc/self/fd/" + fd)
        return True
    except OSError:  # the descriptor listdir itself used, closed by now
        return False
fds = [fd for fd in os.listdir("/proc/self/fd") if alive(fd)]
open(sys.argv[1], "w").write(" ".join(sorted(fds, key=int)))
"""


def test_hook_gets_no_descriptors_but_0_1_2(tmp_path: Path) -> None:
    """Only 0-2: not the pipe's write end, not a close-on-exec descriptor, and not the
    inheritable ones the test runner (like an engine) may hand us."""
    out = tmp_path / "fds"
    extra = os.open("/dev/null", os.O_RDONLY)  # close-on-exec, as Python makes them
    try:
        _run("prestart", _hook(sys.executable, args=["python", "-c", FD_PROBE, str(out)]))
    finally:
        os.close(extra)
    seen = {int(fd) for fd in out.read_text().split()}
    assert seen == {0, 1, 2}


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False


def test_run_hooks_in_order_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    log = tmp_path / "log"
    first = _script(tmp_path, "a", f'echo a >> "{log}"')
    failing = _script(tmp_path, "b", f'echo b >> "{log}"; exit 2')
    never = _script(tmp_path, "c", f'echo c >> "{log}"')
    with pytest.raises(HookError, match=r"^createRuntime hook .*/b: exited with status 2$"):
        hooks.run_hooks("createRuntime", [_hook(first), _hook(failing), _hook(never)], STATE)
    assert log.read_text() == "a\nb\n"


def test_run_hooks_with_none_is_a_no_op() -> None:
    hooks.run_hooks("prestart", [], STATE)


def test_run_poststop_runs_all_and_returns_warnings_in_order(tmp_path: Path) -> None:
    log = tmp_path / "log"
    one = _script(tmp_path, "one", f'echo one >> "{log}"; exit 1')
    two = _script(tmp_path, "two", f'cat > /dev/null; echo two >> "{log}"')
    missing = str(tmp_path / "missing")
    three = _script(tmp_path, "three", f'echo three >> "{log}"; exit 7')
    warnings = hooks.run_poststop([_hook(one), _hook(two), _hook(missing), _hook(three)],
                                  {**STATE, "status": "stopped"})
    assert log.read_text() == "one\ntwo\nthree\n"
    assert warnings == [f"poststop hook {one}: exited with status 1",
                        f"poststop hook {missing}: no such file or directory",
                        f"poststop hook {three}: exited with status 7"]


def test_run_poststop_all_good_is_no_warnings(tmp_path: Path) -> None:
    out = tmp_path / "stdin"
    path = _script(tmp_path, "h", f'cat > "{out}"')
    state = {**STATE, "status": "stopped"}
    assert hooks.run_poststop([_hook(path)], state) == []
    assert json.loads(out.read_text())["status"] == "stopped"


def test_hooks_of_reads_one_kind() -> None:
    raw = {"prestart": [{"path": "/a", "args": ["a", "1"], "env": ["X=1"], "timeout": 3}],
           "poststop": [{"path": "/b"}]}
    (hook,) = hooks.hooks_of(raw, "prestart")
    assert (hook.path, hook.args, hook.env, hook.timeout) == ("/a", ["a", "1"], ["X=1"], 3)
    (other,) = hooks.hooks_of(raw, "poststop")
    assert (other.args, other.env, other.timeout) == (["/b"], [], None)
    assert hooks.hooks_of(raw, "poststart") == []
    assert hooks.hooks_of(None, "prestart") == []


def test_descriptors_our_caller_leaked_do_not_reach_a_hook(tmp_path: Path) -> None:
    """An inheritable fd (what an engine may leave open) is closed for the hook."""
    out = tmp_path / "fds"
    script = _script(tmp_path, "fds", f"ls /proc/self/fd > {out}")
    leaked = os.open(tmp_path, os.O_RDONLY)
    os.set_inheritable(leaked, True)
    try:
        _run("prestart", _hook(script))
        seen = {int(name) for name in out.read_text().split()}
        assert leaked not in seen and seen <= {0, 1, 2, 3}  # 3: ls's own listing
        assert os.get_inheritable(leaked), "closed for the hook only, not for us"
    finally:
        os.close(leaked)
