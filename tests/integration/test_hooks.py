"""Lifecycle hooks through the CLI: when each kind runs, where, with which state.

Every hook is the same small shell script (it runs on the host with dash and in
the container with busybox sh): it saves its stdin to ``<kind>.json`` and
appends ``<kind> <pid> <status> mnt=<mount ns> ...`` to ``log`` in a host
folder that is also bind-mounted at /shared, so the hooks that run in the
container (startContainer) write to the same file.  runtime.md "Lifecycle"
gives the order; config.md "Hooks" the namespaces:

  create: prestart < createRuntime (runtime ns) < createContainer (container ns)
  start:  startContainer (container ns) < poststart (runtime ns, after the exec)
  delete: poststop (runtime ns), after the container is gone
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error, bind, pid_exists, wait_for

pytestmark = pytest.mark.root

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
CONTAINER_NS_KINDS = ("createContainer", "startContainer")
HOOK_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# $1 kind, $2 folder to write to, $3 state folder of the container (poststop checks it is gone)
HOOK_SCRIPT = r"""#!/bin/sh
kind=$1; out=$2; state_dir=$3
cat > "$out/$kind.json"
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$out/$kind.json")
status=$(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' "$out/$kind.json")
extra=""
case $kind in
  poststart) extra="exe=$(readlink /proc/$pid/exe)";;
  poststop) # gone: no state folder, and the pid is not running (a zombie waits for its reaper)
    extra=gone
    [ -e "$state_dir" ] && extra=state-left
    if [ -e "/proc/$pid/stat" ]; then
      case $(sed 's/.*) //' "/proc/$pid/stat" | cut -c1) in Z|X) ;; *) extra=process-alive;; esac
    fi;;
esac
echo "$kind $pid $status mnt=$(readlink /proc/self/ns/mnt) $extra" >> "$out/log"
[ -n "$HOOK_SLEEP" ] && exec sleep "$HOOK_SLEEP"
exit "${HOOK_EXIT:-0}"
"""


class HookBundle:
    """A bundle whose hooks log to ``self.dir`` (on the host; /shared in the container)."""

    def __init__(self, bundles: BundleFactory, rt: Runtime, cid: str,
                 args: tuple[str, ...] = ("sleep", "30"),
                 kinds: tuple[str, ...] = KINDS, fail: dict[str, int] | None = None,
                 sleep: dict[str, int] | None = None, timeout: dict[str, int] | None = None,
                 extra_hooks: dict[str, list[dict[str, Any]]] | None = None,
                 process: dict[str, Any] | None = None) -> None:
        self.dir = bundles.host_dir("hooks")
        self.script = self.dir / "hook.sh"
        self.script.write_text(HOOK_SCRIPT)
        self.script.chmod(0o755)
        state_dir = str(rt.root / cid)
        fail, sleep, timeout = fail or {}, sleep or {}, timeout or {}
        hooks: dict[str, list[dict[str, Any]]] = {}
        for kind in kinds:
            inside = kind == "startContainer"  # resolves in the container: /shared
            path = "/shared/hook.sh" if inside else str(self.script)
            out = "/shared" if inside else str(self.dir)
            env = [HOOK_PATH, f"HOOK_EXIT={fail.get(kind, 0)}", f"HOOK_OUT={self.dir}"]
            if kind in sleep:
                env.append(f"HOOK_SLEEP={sleep[kind]}")
            hook: dict[str, Any] = {"path": path, "args": ["hook.sh", kind, out, state_dir],
                                    "env": env}
            if kind in timeout:
                hook["timeout"] = timeout[kind]
            hooks[kind] = [hook]
        for kind, entries in (extra_hooks or {}).items():
            hooks.setdefault(kind, []).extend(entries)
        changes: dict[str, Any] = {"hooks": hooks}
        if process is not None:
            changes["process"] = process
        self.bundle = bundles.make(list(args), extra_mounts=[bind(self.dir, "/shared")],
                                   **changes)

    def lines(self) -> list[list[str]]:
        log = self.dir / "log"
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    def kinds(self) -> list[str]:
        return [fields[0] for fields in self.lines()]

    def line(self, kind: str) -> list[str]:
        found = [fields for fields in self.lines() if fields[0] == kind]
        assert len(found) == 1, (kind, self.lines())
        return found[0]

    def state(self, kind: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.dir / f"{kind}.json").read_text())
        return state

    def hook_ran(self, kind: str) -> bool:
        return kind in self.kinds()


def _mnt(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def _wait_stopped(rt: Runtime, cid: str) -> None:
    rt.wait_status(cid, "stopped")


def test_every_hook_kind_in_order_in_its_namespace(rt: Runtime, bundles: BundleFactory,
                                                   cid: str) -> None:
    hooks = HookBundle(bundles, rt, cid)
    host_mnt = _mnt("self")

    rt.create(cid, hooks.bundle).ok()
    assert hooks.kinds() == ["prestart", "createRuntime", "createContainer"]
    state = rt.state(cid)
    assert state["status"] == "created"
    pid = state["pid"]
    container_mnt = _mnt(pid)
    assert container_mnt != host_mnt

    rt.start(cid).ok()
    assert hooks.kinds() == ["prestart", "createRuntime", "createContainer", "startContainer",
                             "poststart"]
    assert rt.state(cid)["status"] == "running"

    rt("kill", cid, "KILL").ok()
    _wait_stopped(rt, cid)
    assert "poststop" not in hooks.kinds(), "poststop runs at delete, not when the process ends"
    rt.delete(cid).ok()
    assert hooks.kinds() == list(KINDS)
    assert not (rt.root / cid).exists()

    for kind in KINDS:
        fields = hooks.line(kind)
        mnt = next(field[4:] for field in fields if field.startswith("mnt="))
        expected = container_mnt if kind in CONTAINER_NS_KINDS else host_mnt
        assert mnt == expected, f"{kind} ran in {mnt}, not {expected}"

    # the pid of the state: the host's view in the runtime namespace; the init's own
    # view (PID 1 of its pid namespace) for the hooks the init runs itself, as runc does
    for kind in KINDS:
        wanted_pid = 1 if kind in CONTAINER_NS_KINDS else pid
        assert hooks.line(kind)[1] == str(wanted_pid), (kind, hooks.line(kind))
    statuses = {kind: hooks.line(kind)[2] for kind in KINDS}
    assert statuses == {"prestart": "creating", "createRuntime": "creating",
                        "createContainer": "creating", "startContainer": "created",
                        "poststart": "running", "poststop": "stopped"}
    exe = next(field for field in hooks.line("poststart") if field.startswith("exe="))
    assert exe.endswith("/busybox"), f"poststart must run after the exec: {exe}"
    assert hooks.line("poststop")[-1] == "gone", "poststop runs after the container is gone"


def test_state_on_stdin_has_id_bundle_pid_status(rt: Runtime, bundles: BundleFactory,
                                                 cid: str) -> None:
    hooks = HookBundle(bundles, rt, cid, kinds=("prestart", "poststart", "poststop"))
    rt.create(cid, hooks.bundle).ok()
    pid = rt.state(cid)["pid"]
    rt.start(cid).ok()
    rt.delete(cid, force=True).ok()
    for kind, status in (("prestart", "creating"), ("poststart", "running"),
                         ("poststop", "stopped")):
        state = hooks.state(kind)
        assert state["id"] == cid
        assert os.path.samefile(state["bundle"], hooks.bundle)
        assert os.path.isabs(state["bundle"])
        assert state["pid"] == pid
        assert state["status"] == status
        assert state["ociVersion"].startswith("1.")


def test_hooks_get_only_stdin_stdout_stderr(rt: Runtime, bundles: BundleFactory,
                                            cid: str) -> None:
    """No runtime descriptor (exec.fifo, the sync pipes, the state lock) reaches a hook:
    a createContainer hook runs inside the init, before the init closes its own."""
    out = bundles.host_dir("fds")
    hooks: dict[str, Any] = {
        kind: [{"path": sys.executable, "args": ["python", "-c", FD_PROBE, str(out / kind)]}]
        for kind in ("prestart", "createRuntime", "createContainer", "poststart")}
    bundle = bundles.make(["sleep", "30"], hooks=hooks)
    rt.create(cid, bundle).ok()
    rt.start(cid).ok()
    rt.delete(cid, force=True).ok()
    for kind in hooks:
        numbers, targets = (out / kind).read_text().split("\n")
        fds = sorted(int(fd) for fd in numbers.split())
        assert fds == [0, 1, 2], f"{kind} hook got descriptors {fds}: {targets}"


FD_PROBE = """
import os, sys
def target(fd):
    try:
        return os.readlink("/proc/self/fd/" + fd)
    except OSError:  # the descriptor listdir itself used, closed by now
        return None
found = {fd: target(fd) for fd in os.listdir("/proc/self/fd")}
found = {fd: link for fd, link in found.items() if link is not None}
with open(sys.argv[1], "w") as out:  # opened only now: not in the list
    out.write(" ".join(found) + "\\n" + " ".join(found.values()))
"""


# --- failures --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["prestart", "createRuntime"])
def test_create_runtime_hook_fails(rt: Runtime, bundles: BundleFactory, cid: str,
                                   kind: str) -> None:
    hooks = HookBundle(bundles, rt, cid, fail={kind: 3})
    result = rt.create(cid, hooks.bundle)
    assert_one_line_error(result, f"{kind} hook {hooks.script}", "exited with status 3")
    assert hooks.hook_ran("poststop"), "a failed create hook goes on with poststop (step 12)"
    assert "createContainer" not in hooks.kinds()
    assert hooks.kinds()[-1] == "poststop"
    assert not (rt.root / cid).exists()
    assert rt("state", cid).returncode != 0


def test_create_container_hook_fails_and_poststop_runs(rt: Runtime, bundles: BundleFactory,
                                                       cid: str) -> None:
    hooks = HookBundle(bundles, rt, cid, fail={"createContainer": 4})
    result = rt.create(cid, hooks.bundle)
    assert result.returncode != 0
    assert hooks.hook_ran("poststop"), hooks.kinds()


def test_create_container_hook_fails(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    hooks = HookBundle(bundles, rt, cid, fail={"createContainer": 4})
    result = rt.create(cid, hooks.bundle)
    assert_one_line_error(result, f"createContainer hook {hooks.script}", "exited with status 4")
    assert hooks.kinds()[:3] == ["prestart", "createRuntime", "createContainer"]
    assert "startContainer" not in hooks.kinds()
    assert not (rt.root / cid).exists()


def test_start_container_hook_fails(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    marker = "/shared/user-process-ran"
    hooks = HookBundle(bundles, rt, cid, args=("sh", "-c", f"touch {marker}; sleep 30"),
                       fail={"startContainer": 5})
    rt.create(cid, hooks.bundle).ok()
    result = rt.start(cid)
    assert_one_line_error(result, "startContainer hook /shared/hook.sh", "exited with status 5")
    assert "poststart" not in hooks.kinds()
    assert rt.state(cid)["status"] == "stopped"
    time.sleep(0.2)
    assert not (hooks.dir / "user-process-ran").exists(), "the process must never run"
    rt.delete(cid).ok()
    assert hooks.kinds()[-1] == "poststop"
    assert not (rt.root / cid).exists()


def test_poststart_hook_fails(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    hooks = HookBundle(bundles, rt, cid, fail={"poststart": 6})
    rt.create(cid, hooks.bundle).ok()
    pid = rt.state(cid)["pid"]
    result = rt.start(cid)
    assert_one_line_error(result, f"poststart hook {hooks.script}", "exited with status 6")
    assert hooks.line("poststart")[-1].endswith("/busybox"), "it ran after the exec"
    assert not pid_exists(pid), "the container's process must be killed"
    assert rt.state(cid)["status"] == "stopped"
    rt.delete(cid).ok()
    assert hooks.kinds()[-1] == "poststop"


def test_poststop_failure_is_a_warning(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    second_out = bundles.host_dir("second")
    hooks = HookBundle(bundles, rt, cid, args=("true",), fail={"poststop": 7}, extra_hooks={
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {second_out}/stdin2"]}]})
    rt.create(cid, hooks.bundle).ok()
    rt.start(cid).ok()
    _wait_stopped(rt, cid)
    result = rt.delete(cid)
    assert result.returncode == 0, result
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result
    assert "warning" in warnings[0]
    assert f"poststop hook {hooks.script}" in warnings[0]
    assert "exited with status 7" in warnings[0]
    assert json.loads((second_out / "stdin2").read_text())["id"] == cid, \
        "the second poststop hook must still run"
    assert not (rt.root / cid).exists()
    assert rt("state", cid).returncode != 0


def test_hook_timeout(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    hooks = HookBundle(bundles, rt, cid, kinds=("createRuntime", "poststop"),
                       sleep={"createRuntime": 10}, timeout={"createRuntime": 1})
    began = time.monotonic()
    result = rt.create(cid, hooks.bundle, timeout=15)
    elapsed = time.monotonic() - began
    assert_one_line_error(result, "createRuntime hook", "timed out after 1s")
    assert elapsed < 5, f"create took {elapsed:.1f}s for a 1s timeout"
    assert hooks.hook_ran("poststop")
    assert not (rt.root / cid).exists()
    wait_for(lambda: not _sleepers(hooks.dir), timeout=3, what="the hook to be killed")


def _sleepers(folder: Path) -> list[int]:
    """Processes still running our hook (exec'd into sleep, its env says HOOK_SLEEP)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if f"HOOK_OUT={folder}".encode() in environ and cmdline.startswith(b"sleep") \
                and pid_exists(int(name)):
            found.append(int(name))
    return found

