"""CVE-2024-21626 / CVE-2016-9962 class: no descriptor of the runtime (or of its
caller) reaches the container, and ``cwd: /proc/self/fd/N`` cannot lead out.

Defence in pyruntime: every descriptor pyruntime opens is O_CLOEXEC; right before
the exec, ``ProcessTail.close_descriptors`` marks everything from 3+--preserve-fds
close-on-exec (close_range CLOEXEC); runtime processes are non-dumpable.

The caller here hands pyruntime extra, inheritable descriptors (directories on the
host among them), as a careless engine would: runc's init never sees its caller's
descriptors (Go's exec passes only ExtraFiles), so neither may pyruntime's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from integration.helpers import PYRUNTIME, BundleFactory, Runtime, bind, wait_for

from .conftest import Canary, force_delete, one_line_error_or_ok, run_shell

pytestmark = pytest.mark.root

# fds 5..9 are the caller's: three host folders, a host file, /dev/null
LEAK = ('exec 5<"$1" 6<"$2" 7<"$3" 8<"$1/file" 9>/dev/null; shift 3; exec "$@"')
PROBE = "pwd; ls -a; cat file 2>/dev/null; true"


def leaked(canary: Canary, rt: Runtime, *argv: str, timeout: float = 30):
    """Run pyruntime with the caller's extra inheritable descriptors 5..9."""
    return run_shell(rt, LEAK, str(canary.path), str(canary.path.parent), "/etc",
                     PYRUNTIME, "--root", str(rt.root), *argv, timeout=timeout)


def assert_inside(result, n: int) -> None:
    """cwd /proc/self/fd/N: refused (one line), or a folder of the container."""
    one_line_error_or_ok(result)
    if result.returncode != 0:
        assert result.stderr.startswith(("run: ", "exec: ")), result  # pyruntime said it
        return
    lines = result.stdout.splitlines()
    assert lines and lines[0].startswith("/"), f"fd {n}: cwd outside the root: {result}"
    assert "canary" not in result.stdout and "sub" not in lines[1:], f"fd {n}: {result}"


@pytest.mark.parametrize("caller_leaks", [False, True], ids=["clean-caller", "leaky-caller"])
def test_cwd_proc_self_fd_in_create(rt: Runtime, bundles: BundleFactory, cid: str,
                                    canary: Canary, caller_leaks: bool) -> None:
    for n in range(3, 21):
        bundle = bundles.make(["sh", "-c", PROBE], process={"cwd": f"/proc/self/fd/{n}"})
        argv = ("run", "--bundle", str(bundle), f"{cid}-{n}")
        result = (leaked(canary, rt, *argv) if caller_leaks else rt(*argv))
        force_delete(rt, f"{cid}-{n}")
        assert_inside(result, n)
    canary.assert_untouched()


def test_cwd_proc_self_fd_in_exec(rt: Runtime, bundles: BundleFactory, cid: str,
                                  canary: Canary) -> None:
    rt.run_detached(cid, bundles.make(["sleep", "60"])).ok()
    try:
        for n in range(3, 21):
            for result in (rt("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", PROBE),
                           leaked(canary, rt, "exec", "--cwd", f"/proc/self/fd/{n}", cid,
                                  "sh", "-c", PROBE)):
                assert_inside(result, n)
    finally:
        force_delete(rt, cid)
    canary.assert_untouched()


def open_fds(pid: int) -> list[int]:
    """Seen from the host: busybox sh opens descriptors of its own, sleep does not."""
    return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("preserve", [0, 2])
def test_no_extra_descriptor_reaches_create(rt: Runtime, bundles: BundleFactory, cid: str,
                                            canary: Canary, preserve: int) -> None:
    """Only 0-2 (and 3..3+N-1 with --preserve-fds N) are open in the process, though the
    caller left 5..9 (host folders and files) inheritable."""
    bundle = bundles.make(["sleep", "30"])
    flags = ["--preserve-fds", str(preserve)] if preserve else []
    script = 'exec 3</etc/hostname 4</etc/hostname; ' + LEAK  # 3, 4: for --preserve-fds
    result = run_shell(rt, script, str(canary.path), str(canary.path.parent), "/etc",
                       PYRUNTIME, "--root", str(rt.root), "run", "--detach", *flags,
                       "--bundle", str(bundle), cid, detached=True)
    try:
        assert result.returncode == 0, result
        assert open_fds(rt.state(cid)["pid"]) == list(range(3 + preserve))
    finally:
        force_delete(rt, cid)


@pytest.mark.parametrize("preserve", [0, 1])
def test_no_extra_descriptor_reaches_exec(rt: Runtime, bundles: BundleFactory, cid: str,
                                          canary: Canary, preserve: int) -> None:
    rt.run_detached(cid, bundles.make(["sleep", "60"])).ok()
    pid_file = rt.logs / "exec.pid"
    try:
        result = run_shell(rt, 'exec 3</etc/hostname 4</etc/hostname; ' + LEAK,
                           str(canary.path), str(canary.path.parent), "/etc", PYRUNTIME,
                           "--root", str(rt.root), "exec", "--detach", "--pid-file",
                           str(pid_file), "--preserve-fds", str(preserve), cid, "sleep", "30", detached=True)
        assert result.returncode == 0, result
        assert open_fds(int(pid_file.read_text())) == list(range(3 + preserve))
    finally:
        force_delete(rt, cid)


SCANNER = r"""
still() { case "$(tr '\0' ' ' < $1/cmdline 2>/dev/null)" in *pyruntime*) return 0;; esac; return 1; }
# a success only counts if the process is still the runtime after it (it execs once)
hit() { still $2 && echo "OK $1" >> /shared/log; }
end=$(( $(date +%s) + $1 ))
while [ $(date +%s) -lt $end ] && [ ! -e /shared/stop ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    still $p || continue
    echo "SEEN $p" >> /shared/log
    readlink $p/exe >/dev/null 2>&1 && hit "exe $p" $p
    for f in 0 1 2 3 4 5 6 7 8 9 10 11 12; do
      readlink $p/fd/$f >/dev/null 2>&1 && hit "fd $p/$f" $p
    done
    head -c1 $p/environ >/dev/null 2>&1 && hit "environ $p" $p
    head -c1 $p/mem >/dev/null 2>&1 && hit "mem $p" $p
  done
done
echo END >> /shared/log
"""


def test_exec_runtime_is_not_readable_from_the_container(rt: Runtime, bundles: BundleFactory,
                                                         cid: str) -> None:
    """While ``exec`` joins the container, a container process scanning /proc for it
    (its cmdline says pyruntime) cannot follow its exe or fds nor read environ/mem."""
    shared = bundles.host_dir("shared")
    rt.run_detached(cid, bundles.make(["sh", "-c", SCANNER, "sh", "30"],
                                      extra_mounts=[bind(shared, "/shared")])).ok()
    log = shared / "log"
    try:
        deadline = time.monotonic() + 12
        execs = 0
        while time.monotonic() < deadline and execs < 40:
            rt("exec", cid, "true").ok()
            execs += 1
            if log.exists() and log.read_text().count("SEEN") >= 3:
                break
        (shared / "stop").write_text("")
        wait_for(lambda: log.exists() and "END" in log.read_text(), timeout=10)
    finally:
        force_delete(rt, cid)
    text = log.read_text()
    print(f"runtime processes seen by the container: {text.count('SEEN')} in {execs} execs")
    assert "OK" not in text, text
