#!/usr/bin/env python3
"""Benchmark pyruntime against runc and crun on the busybox bundle.

Not a test: it measures how long each runtime command takes, for every
runtime in the same run, interleaved round-robin so machine noise hits all
runtimes alike.  Stdlib only; run as root:

    sudo .venv/bin/python bench/bench.py [--iterations 30] [--json out.json]

See bench/README.md for the design and how to read the output.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUNDLE = REPO / "bundles" / "busybox"
BUILD_ROOTFS = REPO / "bundles" / "build-rootfs.sh"
UNIFIED = "/sys/fs/cgroup/unified"
NS_MARK = "PYRUNTIME_BENCH_IN_NS"

COMMANDS = ["run", "create", "start", "state", "kill", "delete"]
DEFAULT_RUNTIMES = [
    ("pyruntime", str(REPO / ".venv" / "bin" / "pyruntime")),
    ("runc", "/usr/sbin/runc"),
    ("crun", "/usr/bin/crun"),
]
# crun 1.8 only accepts ociVersion 1.0.x/1.1.x ("unknown version specified").
FALLBACK_OCI_VERSION = "1.0.2"

PR_SET_CHILD_SUBREAPER = 36


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# mount namespace: one private namespace for the whole bench (all runtimes)


def is_mountpoint(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def enter_private_namespace(argv: list[str]) -> None:
    """Re-exec this process under `unshare --mount --propagation private`,
    then unmount the controller-less cgroup2 at /sys/fs/cgroup/unified inside
    that namespace (crun 1.8 refuses the hybrid layout).  unshare without
    --fork execs in place, so there is no extra process and no per-command
    cost: every runtime simply inherits the namespace."""
    if os.environ.get(NS_MARK) == "1":
        if is_mountpoint(UNIFIED):
            subprocess.run(["umount", UNIFIED], check=True)
        return
    if not is_mountpoint(UNIFIED):
        return  # nothing to hide (pure v1 or pure v2 host)
    unshare = shutil.which("unshare")
    if unshare is None:
        sys.exit("bench: unshare(1) not found (package util-linux)")
    env = dict(os.environ, **{NS_MARK: "1"})
    os.execve(unshare,
              [unshare, "--mount", "--propagation", "private", "--",
               sys.executable, os.path.abspath(argv[0]), *argv[1:]], env)


# --------------------------------------------------------------------------
# process helpers


def cpu_of(ru) -> float:
    return ru.ru_utime + ru.ru_stime


def reap_orphans() -> float:
    """Reap any orphaned descendants (we are a child subreaper, like
    containerd-shim).  Returns their summed CPU time.  Only called while no
    measured command is running, so it cannot steal a measured child."""
    total = 0.0
    while True:
        try:
            pid, _status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return total
        if pid == 0:
            return total
        total += cpu_of(ru)


@dataclass
class Runtime:
    name: str
    path: str
    root: Path = Path()
    bundle_true: Path = Path()
    bundle_sleep: Path = Path()
    errlog: Path = Path()
    oci_version: str = ""
    version: str = ""
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    live: set[str] = field(default_factory=set)
    wall: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COMMANDS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COMMANDS})
    failures: dict[str, int] = field(default_factory=lambda: {c: 0 for c in COMMANDS})

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", str(self.root), *args]

    def timed(self, *args: str) -> tuple[int, float, float]:
        """Run one runtime command; return (exit status, wall s, CPU s).

        stdin/stdout go to /dev/null, stderr to a per-runtime log file
        (empty on success, read only on failure).  CPU is user+sys of the
        command and the descendants it waited for, from wait4()."""
        argv = self.argv(*args)
        with open(os.devnull, "r+b") as null, open(self.errlog, "wb") as err:
            t0 = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, null.fileno(), 0),
                (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
            ])
            _, status, ru = os.wait4(pid, 0)
            wall = time.perf_counter() - t0
        return os.waitstatus_to_exitcode(status), wall, cpu_of(ru)

    def last_error(self) -> str:
        try:
            return self.errlog.read_text(errors="replace").strip()[-2000:]
        except OSError:
            return ""

    def quiet(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def status_of(self, cid: str) -> str:
        p = self.quiet("state", cid)
        if p.returncode != 0:
            return ""
        try:
            return json.loads(p.stdout).get("status", "")
        except ValueError:
            return ""


# --------------------------------------------------------------------------
# bundles


def ensure_rootfs() -> Path:
    rootfs = BUNDLE / "rootfs"
    if not (rootfs / "bin" / "busybox").exists():
        log(f"bench: building {rootfs}")
        subprocess.run([str(BUILD_ROOTFS), str(rootfs)], check=True)
    return rootfs


def write_bundle(dest: Path, base: dict, args: list[str], oci_version: str) -> None:
    cfg = json.loads(json.dumps(base))
    cfg["ociVersion"] = oci_version
    cfg["process"]["args"] = args
    cfg["root"]["path"] = str((BUNDLE / base["root"]["path"]).resolve())
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(cfg, indent="\t") + "\n")


def prepare(rt: Runtime, tmp: Path, base: dict) -> None:
    d = tmp / rt.name
    rt.root = d / "state"
    rt.root.mkdir(parents=True)
    rt.errlog = d / "stderr.log"
    rt.bundle_true = d / "bundle-true"
    rt.bundle_sleep = d / "bundle-sleep"
    try:
        p = subprocess.run([rt.path, "--version"], capture_output=True, text=True, timeout=30)
        rt.version = (p.stdout.strip().splitlines() or [""])[0]
    except (OSError, subprocess.TimeoutExpired):
        pass


def write_bundles(rt: Runtime, base: dict, oci_version: str) -> None:
    rt.oci_version = oci_version
    write_bundle(rt.bundle_true, base, ["/bin/true"], oci_version)
    write_bundle(rt.bundle_sleep, base, ["sleep", "1000"], oci_version)


def probe(rt: Runtime, base: dict) -> None:
    """First `run` of /bin/true; a runtime that fails it is skipped."""
    if not (os.path.isfile(rt.path) and os.access(rt.path, os.X_OK)):
        rt.skipped = f"binary {rt.path} not found"
        return
    versions = [base.get("ociVersion", "1.3.0")]
    if FALLBACK_OCI_VERSION not in versions:
        versions.append(FALLBACK_OCI_VERSION)
    for v in versions:
        write_bundles(rt, base, v)
        cid = f"bench-probe-{os.getpid()}"
        rt.live.add(cid)
        code, _, _ = rt.timed("run", "--bundle", str(rt.bundle_true), cid)
        err = rt.last_error()
        cleanup_container(rt, cid)
        if code == 0:
            if v != versions[0]:
                rt.notes.append(f"rejects ociVersion {versions[0]}; benchmarked with {v}")
            return
        if "version" not in err.lower():
            break
    last = (err.splitlines() or ["no stderr"])[-1].strip()
    rt.skipped = f"first `run` failed (exit {code}): {last}"


# --------------------------------------------------------------------------
# measurement


def cleanup_container(rt: Runtime, cid: str) -> None:
    try:
        rt.quiet("delete", "-f", cid)
    except (OSError, subprocess.TimeoutExpired):
        pass
    reap_orphans()
    rt.live.discard(cid)


def record(rt: Runtime, cmd: str, code: int, wall: float, cpu: float) -> bool:
    if code != 0:
        rt.failures[cmd] += 1
        if rt.failures[cmd] <= 3:
            log(f"bench: {rt.name} {cmd} failed (exit {code}): {rt.last_error()}")
        return False
    rt.wall[cmd].append(wall)
    rt.cpu[cmd].append(cpu)
    return True


def wait_stopped(rt: Runtime, cid: str, timeout: float = 10.0) -> float:
    """Untimed: wait until the killed container is reported stopped,
    reaping the orphaned container process.  Returns the reaped CPU."""
    cpu = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cpu += reap_orphans()
        if rt.status_of(cid) in ("stopped", ""):
            return cpu + reap_orphans()
        time.sleep(0.005)
    log(f"bench: {rt.name}: {cid} not stopped after kill")
    return cpu


def one_round(rt: Runtime, tag: str, keep: bool) -> None:
    """run, then create/start/state/kill/delete, each timed alone."""
    cid = f"bench-{os.getpid()}-{tag}-run"
    rt.live.add(cid)
    code, wall, cpu = rt.timed("run", "--bundle", str(rt.bundle_true), cid)
    cpu += reap_orphans()
    if keep:
        record(rt, "run", code, wall, cpu)
    if code != 0:
        cleanup_container(rt, cid)
    else:
        rt.live.discard(cid)

    cid = f"bench-{os.getpid()}-{tag}-life"
    rt.live.add(cid)
    samples: dict[str, tuple[int, float, float]] = {}
    try:
        samples["create"] = rt.timed("create", "--bundle", str(rt.bundle_sleep), cid)
        if samples["create"][0] != 0:
            return
        samples["start"] = rt.timed("start", cid)
        if samples["start"][0] != 0:
            return
        samples["state"] = rt.timed("state", cid)
        samples["kill"] = rt.timed("kill", cid, "KILL")
        if samples["kill"][0] != 0:
            return
        # The container process was forked by `create` and orphaned to us;
        # its CPU (runtime init code before exec of sleep) belongs to create.
        init_cpu = wait_stopped(rt, cid)
        c, w, u = samples["create"]
        samples["create"] = (c, w, u + init_cpu)
        samples["delete"] = rt.timed("delete", cid)
        if samples["delete"][0] == 0:
            rt.live.discard(cid)
    finally:
        if keep:
            for cmd, (c, w, u) in samples.items():
                record(rt, cmd, c, w, u)
        if cid in rt.live:
            cleanup_container(rt, cid)


# --------------------------------------------------------------------------
# reporting


def pct(data: list[float], q: float) -> float:
    """Percentile by linear interpolation between closest ranks."""
    s = sorted(data)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(rt: Runtime) -> dict:
    out: dict[str, dict[str, dict | None]] = {}
    for metric, table in (("wall", rt.wall), ("cpu", rt.cpu)):
        out[metric] = {}
        for cmd in COMMANDS:
            d = table[cmd]
            out[metric][cmd] = None if not d else {
                "n": len(d),
                "median_ms": statistics.median(d) * 1e3,
                "p90_ms": pct(d, 0.9) * 1e3,
                "min_ms": min(d) * 1e3,
                "mean_ms": statistics.fmean(d) * 1e3,
            }
    return out


def fmt_ms(v: float) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def markdown(measured: list[Runtime], stats: dict, subject: str,
             skipped: list[Runtime], meta: dict) -> str:
    others = [r.name for r in measured if r.name != subject]
    lines = []
    for metric, title in (("wall", "Wall time"), ("cpu", "CPU time (user+sys of the runtime's processes)")):
        lines.append(f"### {title}, ms: median (p90)\n")
        head = ["command"] + [r.name for r in measured] + [f"{subject}/{o}" for o in others]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for cmd in COMMANDS:
            row = [f"`{cmd}`"]
            for r in measured:
                s = stats[r.name][metric][cmd]
                row.append("n/a" if s is None else f"{fmt_ms(s['median_ms'])} ({fmt_ms(s['p90_ms'])})")
            a = stats[subject][metric][cmd]
            for o in others:
                b = stats[o][metric][cmd]
                if a is None or b is None or b["median_ms"] <= 0:
                    row.append("n/a")
                else:
                    row.append(f"{a['median_ms'] / b['median_ms']:.2f}x")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines.append(f"{meta['iterations']} iterations (+{meta['warmup']} warm-up) per runtime, "
                 f"round-robin; kernel {meta['kernel']}, {meta['cpus']} CPUs; "
                 f"mount namespace: {meta['namespace']}.")
    for r in measured:
        extra = "; ".join(r.notes)
        fails = {k: v for k, v in r.failures.items() if v}
        if fails:
            extra = (extra + "; " if extra else "") + f"failures: {fails}"
        lines.append(f"- {r.name}: `{r.path}` ({r.version or 'version unknown'})"
                     + (f" — {extra}" if extra else ""))
    for r in skipped:
        lines.append(f"- {r.name}: SKIPPED — {r.skipped}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", action="append", metavar="NAME=PATH", default=[],
                    help="runtime to benchmark (repeatable); default: "
                         + ", ".join(f"{n}={p}" for n, p in DEFAULT_RUNTIMES))
    ap.add_argument("--iterations", "-n", type=int, default=30, metavar="N",
                    help="measured iterations per runtime (default 30)")
    ap.add_argument("--warmup", type=int, nargs="?", const=3, default=2, metavar="N",
                    help="untimed warm-up iterations first (default 2; bare --warmup = 3)")
    ap.add_argument("--subject", default="pyruntime",
                    help="runtime whose medians are divided by the others' "
                         "(default pyruntime; else the first runtime measured)")
    ap.add_argument("--json", metavar="OUT", help="write raw samples and stats as JSON")
    ap.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    ap.add_argument("--no-unshare", action="store_true",
                    help="do not enter a private mount namespace without "
                         f"{UNIFIED} (crun will then fail on hybrid hosts)")
    a = ap.parse_args(argv)
    if a.iterations < 1 or a.warmup < 0:
        ap.error("--iterations must be >= 1 and --warmup >= 0")
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (containers need real namespaces)")
    if not args.no_unshare:
        enter_private_namespace(argv)
    in_ns = os.environ.get(NS_MARK) == "1"

    specs = []
    for item in args.runtime:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            sys.exit(f"bench: --runtime wants NAME=PATH, got {item!r}")
        specs.append((name, os.path.abspath(path) if os.sep in path else (shutil.which(path) or path)))
    if not specs:
        specs = DEFAULT_RUNTIMES

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("bench: warning: could not become a child subreaper")

    # Ctrl-C / SIGTERM / SIGHUP all unwind through the finally below.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited as ignored
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    base = json.loads((BUNDLE / "config.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="pyruntime-bench-"))
    runtimes = [Runtime(n, p) for n, p in specs]
    rc = 0
    try:
        ensure_rootfs()
        for rt in runtimes:
            prepare(rt, tmp, base)
            probe(rt, base)
            if rt.skipped:
                log(f"bench: skipping {rt.name}: {rt.skipped}")
        measured = [r for r in runtimes if not r.skipped]
        skipped = [r for r in runtimes if r.skipped]
        if not measured:
            log("bench: no runtime could run the bundle")
            return 1

        total = args.warmup + args.iterations
        t_start = time.monotonic()
        for i in range(total):
            keep = i >= args.warmup
            # round-robin, rotating who goes first each iteration
            order = measured[i % len(measured):] + measured[:i % len(measured)]
            for rt in order:
                one_round(rt, str(i), keep)
            if sys.stderr.isatty():
                print(f"\rbench: iteration {i + 1}/{total}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)

        subject = args.subject if any(r.name == args.subject for r in measured) else measured[0].name
        if subject != args.subject:
            log(f"bench: {args.subject} not measured; ratios are {subject}/other")
        stats = {r.name: summarize(r) for r in measured}
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "iterations": args.iterations,
            "warmup": args.warmup,
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "namespace": (f"private, {UNIFIED} unmounted" if in_ns else "host's"),
            "duration_s": round(time.monotonic() - t_start, 1),
            "subject": subject,
        }
        report = markdown(measured, stats, subject, skipped, meta)
        print(report, end="")
        if args.markdown:
            Path(args.markdown).write_text(report)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "meta": meta,
                "runtimes": {r.name: {
                    "path": r.path, "version": r.version, "ociVersion": r.oci_version,
                    "notes": r.notes, "failures": r.failures,
                    "stats": stats[r.name],
                    "samples_ms": {m: {c: [round(x * 1e3, 4) for x in t[c]] for c in COMMANDS}
                                   for m, t in (("wall", r.wall), ("cpu", r.cpu))},
                } for r in measured},
                "skipped": {r.name: {"path": r.path, "reason": r.skipped} for r in skipped},
            }, indent=2) + "\n")
        if any(any(r.failures.values()) for r in measured):
            rc = 1
    except KeyboardInterrupt as e:
        log(f"\nbench: interrupted ({str(e) or 'SIGINT'}); cleaning up")
        rc = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let cleanup finish
        for rt in runtimes:
            ids = set(rt.live)
            if rt.root.is_dir():  # anything the runtime still knows about
                ids.update(p.name for p in rt.root.iterdir() if p.is_dir())
            for cid in sorted(ids):
                cleanup_container(rt, cid)
        reap_orphans()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
