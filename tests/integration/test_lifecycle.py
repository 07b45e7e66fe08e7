"""The container lifecycle through the CLI: create, start, state, kill, delete, run.

These are the transitions engines (containerd, podman) drive, and the exit
statuses and state JSON they read; each test checks both what ``state`` says
and what is true on the host (/proc), since a state file can lie.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .helpers import BundleFactory, Runtime, bind, pid_exists, wait_for

pytestmark = pytest.mark.root

# the container writes marker files into /shared, a bind-mounted host folder
WAIT_FOR_STOP = "while [ ! -e /shared/stop ]; do sleep 0.05; done"


def shared_bundle(bundles: BundleFactory, script: str) -> tuple[Path, Path]:
    """A bundle running ``script`` with a host folder at /shared; (bundle, folder)."""
    host = bundles.host_dir("shared")
    bundle = bundles.make(["sh", "-c", script], extra_mounts=[bind(host, "/shared")])
    return bundle, host


def namespace_members(pid: int) -> list[int]:
    """Host pids of every process in ``pid``'s pid namespace (the init included)."""
    inode = os.stat(f"/proc/{pid}/ns/pid").st_ino
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/pid").st_ino == inode and pid_exists(int(name)):
                    members.append(int(name))
            except OSError:
                pass
    return members


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


# --- run ------------------------------------------------------------------------
def test_run_returns_the_exit_status_of_the_process(rt: Runtime, bundles: BundleFactory,
                                                    cid: str) -> None:
    """Engines read the container's exit code from run's; 3 must come back as 3."""
    result = rt.run(cid, bundles.make(["sh", "-c", "echo before-exit; exit 3"]))
    assert result.returncode == 3, result
    assert result.stdout == "before-exit\n"
    assert not (rt.root / cid).exists(), "run (without --keep) must delete the container"


def test_run_of_a_process_killed_by_a_signal_returns_128_plus_n(
        rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A shell reports death by SIGKILL as 137; run must do the same."""
    bundle = bundles.make(["sleep", "1000"])
    with open(rt.logs / "run.out", "w") as out:
        running = subprocess.Popen(rt.argv("run", "--bundle", str(bundle), cid), stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=rt.env)
    try:
        assert _appears(rt, cid), (rt.logs / "run.out").read_text()
        pid = rt.wait_status(cid, "running")["pid"]
        rt.kill(cid, "KILL").ok()
        assert running.wait(timeout=15) == 128 + 9, (rt.logs / "run.out").read_text()
    finally:
        if running.poll() is None:
            running.kill()
            running.wait(timeout=15)
    assert not pid_exists(pid)
    assert not (rt.root / cid).exists()


def _appears(rt: Runtime, cid: str, timeout: float = 10.0) -> bool:
    """True once ``state`` knows ``cid`` (run's create has written it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = rt("state", cid)
        if result.returncode == 0 and json.loads(result.stdout)["status"] != "creating":
            return True
        time.sleep(0.02)
    return False


def test_run_keep_leaves_a_stopped_container(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """``--keep``: the container stays, stopped, until deleted."""
    rt.run(cid, bundles.make(["true"]), "--keep").ok()
    state = rt.state(cid)
    assert state["status"] == "stopped"
    assert state["pid"] == 0
    rt.delete(cid).ok()
    assert not (rt.root / cid).exists()


def test_run_detach_returns_while_the_container_runs(rt: Runtime, bundles: BundleFactory,
                                                     cid: str) -> None:
    bundle, host = shared_bundle(bundles, f"echo up > /shared/up; {WAIT_FOR_STOP}")
    rt.run_detached(cid, bundle).ok()
    state = rt.state(cid)
    assert state["status"] == "running"
    wait_for(lambda: (host / "up").exists(), what="the detached container to run")
    (host / "stop").touch()
    rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()


# --- create, start, state ---------------------------------------------------------
def test_created_running_stopped(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """The status follows the process: created (waiting), running, stopped; and the
    state JSON has the fields of the spec with the right values at each step."""
    bundle, host = shared_bundle(bundles, f"echo started > /shared/started; {WAIT_FOR_STOP}")
    rt.create(cid, bundle).ok()
    created = rt.state(cid)
    assert created["status"] == "created"
    assert created["id"] == cid
    assert created["ociVersion"] == "1.3.0"
    assert created["bundle"] == str(bundle)
    assert created["rootfs"] == str(bundles.rootfs)
    assert created["pid"] > 1 and pid_exists(created["pid"])
    assert not (host / "started").exists()

    rt.start(cid).ok()
    wait_for(lambda: (host / "started").exists(), what="process.args to run after start")
    running = rt.state(cid)
    assert running["status"] == "running"
    assert running["pid"] == created["pid"], "start must exec in the same init, not fork"
    assert running["created"] == created["created"]

    (host / "stop").touch()
    stopped = rt.wait_status(cid, "stopped")
    assert stopped["pid"] == 0
    assert not pid_exists(created["pid"])
    rt.delete(cid).ok()


def test_process_args_do_not_run_before_start(rt: Runtime, bundles: BundleFactory,
                                              cid: str) -> None:
    """``create`` must stop before process.args: the user program would create a file
    in the bind-mounted folder; it must not exist until ``start``, and never if the
    container is deleted instead."""
    bundle, host = shared_bundle(bundles, "echo ran > /shared/ran")
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    time.sleep(0.5)
    assert not (host / "ran").exists()
    assert rt.status(cid) == "created"
    rt.delete(cid, force=True).ok()
    assert not pid_exists(pid)
    assert not (host / "ran").exists()


def test_create_writes_the_pid_file(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    pid_file = rt.logs / "ctr.pid"
    rt.create(cid, bundles.make(["true"]), "--pid-file", str(pid_file)).ok()
    assert pid_file.read_text().strip() == str(rt.state(cid)["pid"])
    rt.delete(cid, force=True).ok()


def test_start_of_a_stopped_container_is_refused(rt: Runtime, bundles: BundleFactory,
                                                 cid: str) -> None:
    rt.create(cid, bundles.make(["true"])).ok()
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    result = rt.start(cid)
    assert result.returncode != 0
    assert "stopped" in result.stderr
    rt.delete(cid).ok()


# --- kill -----------------------------------------------------------------------
@pytest.mark.parametrize("signal", ["TERM", "SIGTERM", "15", "KILL", "SIGKILL", "9"])
def test_kill_of_a_created_container_stops_it(rt: Runtime, bundles: BundleFactory, cid: str,
                                              signal: str) -> None:
    """A created container's init is still ours; TERM and KILL, by name or number,
    end it without ever running process.args."""
    bundle, host = shared_bundle(bundles, "echo ran > /shared/ran")
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    rt.kill(cid, signal).ok()
    rt.wait_status(cid, "stopped")
    assert not pid_exists(pid)
    assert not (host / "ran").exists()
    rt.delete(cid).ok()


@pytest.mark.parametrize("signal", ["TERM", "SIGTERM", "15"])
def test_kill_term_reaches_the_running_process(rt: Runtime, bundles: BundleFactory, cid: str,
                                               signal: str) -> None:
    """The process traps TERM and writes which signal it got: proof that kill
    delivered exactly that signal (not, say, a KILL)."""
    script = ("trap 'echo TERM > /shared/got; exit 7' TERM; echo ready > /shared/ready; "
              "while :; do sleep 0.05; done")
    bundle, host = shared_bundle(bundles, script)
    rt.create(cid, bundle).ok()
    rt.start(cid).ok()
    wait_for(lambda: (host / "ready").exists(), what="the trap to be set")
    rt.kill(cid, signal).ok()
    rt.wait_status(cid, "stopped")
    assert (host / "got").read_text() == "TERM\n"
    rt.delete(cid).ok()


@pytest.mark.parametrize("signal", ["KILL", "SIGKILL", "9"])
def test_kill_kill_stops_a_running_container(rt: Runtime, bundles: BundleFactory, cid: str,
                                             signal: str) -> None:
    bundle, host = shared_bundle(bundles, f"echo ready > /shared/ready; {WAIT_FOR_STOP}")
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    rt.start(cid).ok()
    wait_for(lambda: (host / "ready").exists(), what="the process to run")
    rt.kill(cid, signal).ok()
    rt.wait_status(cid, "stopped")
    assert not pid_exists(pid)
    rt.delete(cid).ok()


def test_kill_without_all_signals_only_the_init(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    """Plain kill is for the init alone: a child in the namespace keeps running."""
    script = ("trap 'echo got >> /shared/init-got' USR1; sleep 1000 & "
              f"echo ready > /shared/ready; {WAIT_FOR_STOP}")
    bundle, host = shared_bundle(bundles, script)
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    rt.start(cid).ok()
    wait_for(lambda: (host / "ready").exists(), what="the child to start")
    child = [p for p in namespace_members(pid) if cmdline(p) == "sleep 1000"]
    assert len(child) == 1, [cmdline(p) for p in namespace_members(pid)]
    rt.kill(cid, "USR1").ok()
    wait_for(lambda: (host / "init-got").exists(), what="the init to get USR1")
    assert pid_exists(child[0]), "a plain kill reached a process other than the init"
    rt.delete(cid, force=True).ok()
    assert not pid_exists(child[0])


def test_kill_all_signals_every_process_of_the_container(rt: Runtime, bundles: BundleFactory,
                                                         cid: str) -> None:
    """``kill --all``: the children get the signal too; the init (which traps it)
    goes on, so it is really the signal that reached them, not the init's death."""
    script = ("trap 'echo got >> /shared/init-got' USR1; sleep 1000 & sleep 1001 & "
              f"echo ready > /shared/ready; {WAIT_FOR_STOP}")
    bundle, host = shared_bundle(bundles, script)
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    rt.start(cid).ok()
    wait_for(lambda: (host / "ready").exists(), what="the children to start")
    children = [p for p in namespace_members(pid) if cmdline(p).startswith("sleep 100")]
    assert len(children) == 2, [cmdline(p) for p in namespace_members(pid)]
    rt("kill", "--all", cid, "USR1").ok()
    wait_for(lambda: not any(pid_exists(c) for c in children), what="the children to die")
    wait_for(lambda: (host / "init-got").exists(), what="the init to get USR1")
    assert rt.status(cid) == "running"
    (host / "stop").touch()
    rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()


# --- delete -----------------------------------------------------------------------
def test_delete_removes_everything(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """After delete: no folder under --root, ``state`` and ``list`` do not know it."""
    rt.create(cid, bundles.make(["true"])).ok()
    pid = rt.state(cid)["pid"]
    assert (rt.root / cid).is_dir()
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert not (rt.root / cid).exists()
    assert not pid_exists(pid)
    gone = rt("state", cid)
    assert gone.returncode != 0 and "does not exist" in gone.stderr
    assert rt("list", "-q").ok().stdout == ""


def test_delete_force_of_a_running_container(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """--force kills the init and every process of its pid namespace, then deletes."""
    bundle, host = shared_bundle(bundles, f"sleep 1000 & echo ready > /shared/ready; "
                                          f"{WAIT_FOR_STOP}")
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    rt.start(cid).ok()
    wait_for(lambda: (host / "ready").exists(), what="the process to run")
    members = namespace_members(pid)
    assert len(members) >= 2
    rt.delete(cid, force=True).ok()
    assert not (rt.root / cid).exists()
    assert not pid_exists(pid)
    wait_for(lambda: not any(pid_exists(m) for m in members), timeout=5,
             what="every process of the container to be gone")


def test_delete_force_of_a_created_container(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    rt.create(cid, bundles.make(["true"])).ok()
    pid = rt.state(cid)["pid"]
    rt.delete(cid, force=True).ok()
    assert not (rt.root / cid).exists()
    assert not pid_exists(pid)


def test_delete_force_of_an_unknown_container_succeeds(rt: Runtime, cid: str) -> None:
    """runc's rule, which engines rely on when cleaning up after a crash."""
    result = rt.delete(cid, force=True)
    assert result.returncode == 0, result


# --- what engines and users also rely on --------------------------------------------
def test_run_forwards_sigterm_to_the_container(rt: Runtime, bundles: BundleFactory,
                                               cid: str) -> None:
    """A TERM to ``pyruntime run`` (e.g. Ctrl-C from a supervisor) reaches the
    process, whose own exit status run then returns."""
    bundle, host = shared_bundle(bundles, "trap 'echo got-term; exit 9' TERM; "
                                          "echo ready > /shared/ready; "
                                          "while :; do sleep 0.05; done")
    running = subprocess.Popen(rt.argv("run", "--bundle", str(bundle), cid),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=rt.env, text=True)
    try:
        wait_for(lambda: (host / "ready").exists(), what="the trap to be set")
        running.terminate()
        out, err = running.communicate(timeout=15)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate(timeout=15)
    assert running.returncode == 9, err
    assert out == "got-term\n"
    assert not (rt.root / cid).exists()


def test_init_killed_from_outside_is_stopped(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """state reports what is true, not what state.json last said."""
    rt.create(cid, bundles.make(["sleep", "1000"])).ok()
    rt.start(cid).ok()
    pid = rt.state(cid)["pid"]
    os.kill(pid, 9)
    state = rt.wait_status(cid, "stopped")
    assert state["pid"] == 0
    rt.delete(cid).ok()
    assert not (rt.root / cid).exists()


def test_concurrent_creates_of_one_id(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Exactly one of several simultaneous creates of the same id wins.  (Their
    streams go to files: the winner's init holds them open.)"""
    bundle = bundles.make(["true"])
    errs = [rt.logs / f"create{n}.err" for n in range(4)]
    procs = []
    for err in errs:
        with open(err, "w") as stream:
            procs.append(subprocess.Popen(rt.argv("create", "--bundle", str(bundle), cid),
                                          stdout=stream, stderr=stream,
                                          stdin=subprocess.DEVNULL, env=rt.env))
    codes = [p.wait(timeout=30) for p in procs]
    messages = [err.read_text() for err in errs]
    assert sorted(codes) == [0, 1, 1, 1], (codes, messages)
    assert all("already exists" in m for c, m in zip(codes, messages) if c != 0), messages
    assert rt.status(cid) == "created"
    rt.delete(cid, force=True).ok()


def test_state_folder_is_private(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """--root/ID holds the exec.fifo that starts the container: root only."""
    rt.create(cid, bundles.make(["true"])).ok()
    modes = {p.name: p.stat().st_mode & 0o777 for p in (rt.root / cid).iterdir()}
    folder_mode = (rt.root / cid).stat().st_mode & 0o777
    rt.delete(cid, force=True).ok()
    assert folder_mode == 0o700
    assert modes.get("exec.fifo") == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


# --- hooks ------------------------------------------------------------------------
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


def test_hooks_run_at_their_moments_with_the_state(rt: Runtime, bundles: BundleFactory,
                                                   cid: str) -> None:
    """Each hook gets the state on stdin and runs when runtime.md says: the create
    ones by the end of create, startContainer and poststart by the end of start,
    poststop only at delete.  startContainer runs after pivot_root, so it writes
    through the bind-mounted /shared; the others write to the host folder."""
    host = bundles.host_dir("hooks")

    def hook(kind: str) -> dict[str, object]:
        folder = "/shared" if kind == "startContainer" else str(host)
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {folder}/{kind}.json"]}

    bundle = bundles.make(["true"], hooks={kind: [hook(kind)] for kind in HOOK_KINDS},
                          extra_mounts=[bind(host, "/shared")])
    rt.create(cid, bundle).ok()
    pid = rt.state(cid)["pid"]
    assert sorted(p.stem for p in host.iterdir()) == ["createContainer", "createRuntime",
                                                      "prestart"]
    rt.start(cid).ok()
    wait_for(lambda: (host / "poststart.json").exists(), what="poststart")
    assert (host / "startContainer.json").exists()
    rt.wait_status(cid, "stopped")
    assert not (host / "poststop.json").exists()
    rt.delete(cid).ok()
    states = {p.stem: json.loads(p.read_text()) for p in host.iterdir()}
    assert sorted(states) == sorted(HOOK_KINDS)
    assert all(s["id"] == cid and s["bundle"] == str(bundle) for s in states.values())
    for kind in ("prestart", "createRuntime"):  # runtime namespace: the host's pid
        assert states[kind]["status"] == "creating" and states[kind]["pid"] == pid, kind
    assert states["createContainer"]["pid"] == 1  # container namespace: as seen inside
    assert states["poststop"]["status"] == "stopped"


def test_failing_create_hook_undoes_the_create(rt: Runtime, bundles: BundleFactory,
                                               cid: str) -> None:
    """A createRuntime hook that fails fails create, naming the hook; nothing stays."""
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
    result = rt.create(cid, bundles.make(["true"], hooks={"createRuntime": [hook]}))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "createRuntime" in last and "/bin/sh" in last and "3" in last, result
    assert not (rt.root / cid).exists()


def test_a_process_that_exits_at_once_is_not_a_failed_start(rt: Runtime, bundles: BundleFactory,
                                                            token: str) -> None:
    """``true`` may be gone before ``start`` looks at it: that is a process that ran
    and exited 0, not an init that died before its exec.  The window is small, so
    it is widened: the container runs on CPU 1, ``start`` at nice 10 on CPU 0
    next to a busy loop."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    bundle = bundles.make(["true"])
    spinner = subprocess.Popen(["taskset", "-c", "0", "sh", "-c", "while :; do :; done"])
    failures = []
    try:
        for attempt in range(4):
            name = f"q{attempt}-{token}"
            create = subprocess.run(["taskset", "-c", "1", *rt.argv("create", "--bundle",
                                                                      str(bundle), name)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=rt.env, timeout=30)
            assert create.returncode == 0
            start = subprocess.run(["taskset", "-c", "0", "nice", "-n", "10",
                                    *rt.argv("start", name)],
                                   capture_output=True, text=True, env=rt.env, timeout=30)
            if start.returncode != 0:
                failures.append(start.stderr.strip())
            rt.delete(name, force=True).ok()
    finally:
        spinner.kill()
        spinner.wait(timeout=10)
    assert failures == [], f"{len(failures)}/4 starts failed: {sorted(set(failures))}"


def test_delete_force_without_a_pid_namespace_leaves_no_process(
        rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Without its own pid namespace the container's processes are still its own:
    delete --force must not leave any of them running."""
    host = bundles.host_dir("shared")
    script = f"sleep 1000 & echo $! > /shared/child; {WAIT_FOR_STOP}"
    bundle = bundles.make(["sh", "-c", script], extra_mounts=[bind(host, "/shared")],
                          edit=lambda c: c["linux"].update(namespaces=[
                              n for n in c["linux"]["namespaces"] if n["type"] != "pid"]))
    rt.create(cid, bundle).ok()
    rt.start(cid).ok()
    wait_for(lambda: (host / "child").exists() and (host / "child").read_text().strip() != "",
             what="the child's pid")
    child = int((host / "child").read_text())
    try:
        rt.delete(cid, force=True).ok()
        wait_for(lambda: not pid_exists(child), timeout=3, what=f"child {child} to be killed")
    finally:
        if pid_exists(child):
            os.kill(child, 9)


def test_annotations_are_in_the_state(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    annotations = {"org.example.key": "value", "io.test.token": rt.token}
    rt.create(cid, bundles.make(["true"], annotations=annotations)).ok()
    state = rt.state(cid)
    rt.delete(cid, force=True).ok()
    assert state["annotations"] == annotations


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid() and text in cmdline(int(name)):
            found.append(int(name))
    return found


def test_create_survives_a_slow_intermediate(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """The intermediate forks the init, then reports its pid; if it is descheduled
    in between (here: strace delays every clone's return by 0.3 s), the init may
    be READY first.  create must still succeed (or, failing, leave nothing)."""
    if not shutil.which("strace"):
        pytest.skip("needs strace")
    err = rt.logs / "strace-create.err"
    argv = ["strace", "-f", "-qq", "-o", os.devnull, "-e", "trace=clone,clone3",
            "-e", "inject=clone,clone3:delay_exit=300000",
            *rt.argv("create", "--bundle", str(bundles.make(["true"])), cid)]
    with open(err, "w") as stream:
        tracer = subprocess.Popen(argv, stdout=stream, stderr=stream, stdin=subprocess.DEVNULL,
                                  env=rt.env)
    try:
        def settled() -> bool:
            done = rt("state", cid)
            return "create:" in err.read_text() or (
                done.returncode == 0 and json.loads(done.stdout)["status"] == "created")
        wait_for(settled, timeout=20, what="create to succeed or fail")
        assert "create:" not in err.read_text(), err.read_text()
        assert rt.status(cid) == "created"
    finally:
        tracer.kill()
        tracer.wait(timeout=10)
        rt.delete(cid, force=True)
        leftovers = _processes_mentioning(str(rt.root))
        for pid in leftovers:
            os.kill(pid, 9)
    assert leftovers == [], "a failed create left its init running"
