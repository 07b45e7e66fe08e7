"""CVE-2019-5736 class: the container must never get a handle on the runtime's binary
(here the Python interpreter, and pyruntime's own source files) or on its descriptors.

Defence in pyruntime: the intermediate and the exec joiner set PR_SET_DUMPABLE 0
before they enter any namespace (credentials.set_dumpable), so /proc/PID/{exe,fd,mem,
environ} of every runtime process is closed to the container (no CAP_SYS_PTRACE);
after pivot_root the host's tree is gone.

The interpreter-overwrite attack itself (an image whose binary is ``#!/proc/self/exe``)
runs against a *copy* of the interpreter that pyruntime is started with, so that
a successful attack appends to a file the test owns, never to the host's Python.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integration.helpers import CAPABILITY_NUMBERS, BundleFactory, Runtime, bind, wait_for

from .conftest import REPO, force_delete

pytestmark = pytest.mark.root

INTERPRETER = Path(os.path.realpath(sys.executable))
GLIBC = ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6",
         "/lib/x86_64-linux-gnu/libm.so.6"]


def runtime_files() -> dict[str, str]:
    """dev:ino -> name of every file that makes up the runtime on the host."""
    found = {}
    for path in [INTERPRETER, *Path(REPO / "pyruntime").rglob("*.py")]:
        info = os.stat(path)
        found[f"{info.st_dev}:{info.st_ino}"] = str(path)
    return found


def interpreter_libraries() -> list[str]:
    out = subprocess.run(["ldd", str(INTERPRETER)], capture_output=True, text=True).stdout
    libs = [part for line in out.splitlines() for part in line.split() if part.startswith("/")]
    return sorted(set(libs) | {lib for lib in GLIBC if os.path.exists(lib)})


def hostile_image(bundles: BundleFactory) -> Path:
    """An image as an attacker ships it: glibc (any would do) and the libraries the
    runtime's interpreter needs, so that exec'ing /proc/self/exe works, and
    /bin/evil, a script whose interpreter is /proc/self/exe."""
    rootfs = bundles.private_rootfs()
    for lib in interpreter_libraries():
        target = rootfs / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), target)
    evil = rootfs / "bin" / "evil"
    evil.write_text("#!/proc/self/exe\nprint('runtime executed in the container')\n")
    evil.chmod(0o755)
    return rootfs


def interpreter_copy(test_dir: Path) -> Path:
    """pyruntime's interpreter, copied: the file the attack may try to overwrite."""
    folder = test_dir / "interp" / "bin"
    folder.mkdir(parents=True)
    copy = folder / INTERPRETER.name
    shutil.copy2(INTERPRETER, copy)
    return copy


def copy_runtime(rt: Runtime, interpreter: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(rt.env, PYTHONPATH=str(REPO), PYTHONHOME=sys.base_prefix)
    return subprocess.run([str(interpreter), "-m", "pyruntime", "--root", str(rt.root), *args],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


RACER = r"""
target=$1; end=$(( $(date +%s) + $2 ))
while [ $(date +%s) -lt $end ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    l=$(readlink $p/exe 2>/dev/null) || continue
    [ "$l" = "$target" ] || continue
    echo "SEEN $p" >> /shared/log
    if command exec 3< $p/exe 2>/dev/null; then
      echo "OPENED $(stat -L -c %d:%i /proc/self/fd/3)" >> /shared/log
      i=0
      while [ $i -lt 600 ]; do
        if { echo "MARK" >> /proc/self/fd/3; } 2>/dev/null; then echo WROTE >> /shared/log; break; fi
        usleep 10000; i=$((i+1))
      done
      exec 3<&-
    else echo DENIED >> /shared/log
    fi
    echo DONE >> /shared/log; exit 0
  done
done
echo TIMEOUT >> /shared/log
"""


@pytest.mark.xfail(strict=True, reason=(
    "OPEN VULNERABILITY (CVE-2019-5736 class): a #!/proc/self/exe script makes the last "
    "execve start the host interpreter inside the container, dumpable again; the container "
    "can then reopen /proc/PID/exe for writing. The fix (exec through a sealed memfd or a "
    "read-only bind of the interpreter) is not built yet: see the issue on hostile containers."))
@pytest.mark.parametrize("path", ["exec", "create"])
def test_proc_self_exe_cannot_overwrite_the_interpreter(rt: Runtime, bundles: BundleFactory,
                                                        cid: str, test_dir: Path,
                                                        path: str) -> None:
    """A container process watches for a process running the runtime's interpreter
    (what /bin/evil's ``#!/proc/self/exe`` makes the runtime exec, in ``exec`` and in
    ``create``), keeps /proc/PID/exe open, and writes through it once the runtime has
    exited.  The interpreter must be neither reachable nor writable."""
    interpreter = interpreter_copy(test_dir)
    digest = hashlib.sha256(interpreter.read_bytes()).hexdigest()
    rootfs = hostile_image(bundles)
    shared = bundles.host_dir("shared")
    racer = bundles.make(["sh", "-c", RACER, "sh", str(interpreter), "25"], rootfs=rootfs,
                         extra_mounts=[bind(shared, "/shared")])
    rt.run_detached(cid, racer).ok()
    log = shared / "log"
    results = []
    try:
        racer_pid = rt.state(cid)["pid"]
        victim = None
        if path == "create":
            victim = bundles.make(["/bin/evil"], rootfs=rootfs, edit=lambda c: c["linux"].update(
                namespaces=[{"type": "pid", "path": f"/proc/{racer_pid}/ns/pid"},
                            *({"type": t} for t in ("network", "ipc", "uts", "mount", "cgroup"))]))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (log.exists() and "SEEN" in log.read_text()):
            if path == "exec":
                done = copy_runtime(rt, interpreter, "exec", cid, "/bin/evil")
            else:
                done = copy_runtime(rt, interpreter, "run", "--bundle", str(victim),
                                    f"{cid}-victim")
            results.append((done.returncode, done.stderr[-300:]))
            assert "Traceback (most recent call last)" not in done.stderr.split("Fatal Python")[0]
        wait_for(lambda: log.exists() and ("DONE" in log.read_text() or "TIMEOUT" in log.read_text()),
                 timeout=10, what="the racer to finish")
    finally:
        force_delete(rt, f"{cid}-victim")
        force_delete(rt, cid)
    text = log.read_text() if log.exists() else ""
    assert "OPENED" not in text, (
        f"the container opened the runtime's interpreter through /proc/PID/exe ({path}): "
        f"{text!r} (the copy pyruntime ran with is {os.stat(interpreter).st_dev}:"
        f"{os.stat(interpreter).st_ino}, {interpreter})")
    assert "WROTE" not in text, f"the container wrote into the runtime's interpreter: {text!r}"
    assert hashlib.sha256(interpreter.read_bytes()).hexdigest() == digest


def test_init_is_not_dumpable_while_it_waits(rt: Runtime, bundles: BundleFactory,
                                              cid: str) -> None:
    """From the host, a process of the same uid without capabilities (what the
    container's root is to ptrace_may_access) can neither read /proc/INIT/{exe,fd,
    environ} of the init waiting on exec.fifo nor ptrace-attach it; the same checks on
    a host ``sleep`` (dumpable) succeed, so they would catch a dumpable init."""
    rt.create(cid, bundles.make(["sleep", "30"])).ok()
    init = rt.state(cid)["pid"]
    # the prober and the control get exactly the init's capabilities: then only the
    # dumpable flag decides (ptrace_may_access also wants the target's caps a subset)
    permitted = int(Path(f"/proc/{init}/status").read_text().split("CapPrm:")[1].split()[0], 16)
    names = [name for name, number in CAPABILITY_NUMBERS.items() if permitted >> number & 1]
    capless = ["setpriv", "--bounding-set=-all" + "".join(
        f",+{name[4:].lower()}" for name in names), "--inh-caps=-all", "--"]
    control = subprocess.Popen([*capless, "sleep", "30"])
    attach = ("import ctypes,sys; libc=ctypes.CDLL(None,use_errno=True); pid=int(sys.argv[1]);"
              "r=libc.ptrace(16,pid,0,0); e=ctypes.get_errno();"
              "import os; (os.waitpid(pid,0), libc.ptrace(17,pid,0,0)) if r==0 else None;"
              "print('attached' if r==0 else f'errno={e}')")

    def probe(pid: int) -> dict[str, str]:
        out = {}
        for name, argv in (("exe", ["readlink", f"/proc/{pid}/exe"]),
                           ("fd", ["readlink", f"/proc/{pid}/fd/0"]),
                           ("environ", ["cat", f"/proc/{pid}/environ"]),
                           ("ptrace", ["/usr/bin/python3", "-c", attach, str(pid)])):
            done = subprocess.run([*capless, *argv], capture_output=True, text=True, timeout=10)
            out[name] = "ok" if done.returncode == 0 and "errno" not in done.stdout else "denied"
            if name == "ptrace":
                out[name] = "ok" if "attached" in done.stdout else "denied"
        return out

    try:
        time.sleep(0.2)  # the control has exec'd sleep
        assert rt.status(cid) == "created"
        assert probe(control.pid) == dict.fromkeys(("exe", "fd", "environ", "ptrace"), "ok")
        assert probe(init) == dict.fromkeys(("exe", "fd", "environ", "ptrace"), "denied")
        inside = rt("exec", cid, "sh", "-c",
                    "readlink /proc/1/exe; readlink /proc/1/fd/0; cat /proc/1/environ; ls /proc/1/root;"
                    " command exec 3</proc/1/exe && echo OPENED-EXE; echo end")
        assert "OPENED-EXE" not in inside.stdout, inside
        assert inside.stdout.strip() == "end", inside
    finally:
        control.kill()
        control.wait()
        force_delete(rt, cid)


HOOK_PROBE = r"""
for p in /proc/[0-9]*; do
  [ "$p" = /proc/$$ ] && continue
  case "$(cat $p/cmdline 2>/dev/null | tr '\0' ' ')" in *pyruntime*|*python*) ;; *) [ "$p" = /proc/1 ] || continue;; esac
  echo "SEEN $p" >> /shared/hook.log
  readlink $p/exe >/dev/null 2>&1 && echo "OK readlink $p/exe" >> /shared/hook.log
  if command exec 3< $p/exe; then echo "OK open $p/exe $(stat -L -c %d:%i /proc/self/fd/3)" >> /shared/hook.log; exec 3<&-; fi 2>/dev/null
  if command exec 3<> $p/exe; then echo "OK write-open $p/exe" >> /shared/hook.log; exec 3<&-; fi 2>/dev/null
  # listing the fd numbers is allowed (the folder is root's, 0500); following them is not
  readlink $p/fd/0 >/dev/null 2>&1 && echo "OK readlink $p/fd/0" >> /shared/hook.log
  for f in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    if command exec 3< $p/fd/$f; then echo "OK open $p/fd/$f $(stat -L -c %d:%i /proc/self/fd/3)" >> /shared/hook.log; exec 3<&-; fi 2>/dev/null
  done
  head -c1 $p/mem >/dev/null 2>&1 && echo "OK read $p/mem" >> /shared/hook.log
  cat $p/environ >/dev/null 2>&1 && echo "OK read $p/environ" >> /shared/hook.log
  ls $p/root/ >/dev/null 2>&1 && echo "OK list $p/root" >> /shared/hook.log
  ls $p/cwd/ >/dev/null 2>&1 && echo "OK list $p/cwd" >> /shared/hook.log
done
echo END >> /shared/hook.log
"""


def hook_probe_bundle(bundles: BundleFactory, shared: Path) -> Path:
    return bundles.make(["true"], extra_mounts=[bind(shared, "/shared")], hooks={
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", HOOK_PROBE]}]})


def hook_findings(shared: Path) -> tuple[list[str], list[str]]:
    lines = (shared / "hook.log").read_text().splitlines()
    assert lines and lines[-1] == "END", lines
    assert "SEEN /proc/1" in lines  # the init was there to attack
    return [line for line in lines if line.startswith("OK")], lines


def test_start_container_hook_cannot_reach_the_init(rt: Runtime, bundles: BundleFactory,
                                                     cid: str) -> None:
    """A startContainer hook runs in the container (after pivot_root, with the
    process's capabilities) while the init, still the runtime, waits for it: it must
    not open the init's exe (for reading or writing), fds, mem, environ, root or cwd."""
    shared = bundles.host_dir("shared")
    result = rt.run(cid, hook_probe_bundle(bundles, shared))
    assert result.returncode == 0, result
    found, _ = hook_findings(shared)
    assert not found, f"the container reached the runtime: {found}"
    reached = {line.split()[-1] for line in found} & set(runtime_files())
    assert not reached


def test_runtime_files_are_not_in_the_container(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    """No file of the container's tree (the whole of it, /proc aside) is the
    interpreter or a pyruntime source file, and no path to the host's tree works."""
    result = rt.run(cid, bundles.make(["sh", "-c",
        "find / -path /proc -prune -o -path /sys -prune -o -type f -print0 2>/dev/null"
        " | xargs -0 stat -c '%d:%i %n' 2>/dev/null; ls -d "
        f"{REPO} {INTERPRETER} 2>/dev/null; true"])).ok()
    wanted = runtime_files()
    hits = [line for line in result.stdout.splitlines() if line.split(" ", 1)[0] in wanted]
    assert not hits, hits
    assert str(REPO) not in result.stdout and str(INTERPRETER) not in result.stdout
