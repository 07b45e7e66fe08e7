"""Helpers of the conformance suite: bundles, runtime invocation, probe parsing.

Everything here talks to a runtime only through its command line (runc's CLI:
``RUNTIME --root DIR create --bundle B ID``, ``start``, ``state``, ``kill``,
``delete [--force]``), so the suite can judge any runtime binary.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
PROBE_SCRIPT = HERE / "probe.sh"
BUSYBOX = Path("/bin/busybox")

#: ociVersion written into every config.json.  The bundles only use fields
#: that every 1.x runtime must understand; forward compatibility ("compatible
#: with all runtimes that support any 1.1 or later release", config.md) means
#: a 1.3.0 runtime must accept them.  Acceptance of "1.3.0" itself is a
#: separate check (test_config.py::test_accepts_current_oci_version), so a
#: runtime that only rejects the newer version string fails one check, not all.
CONFIG_OCI_VERSION = "1.0.2"

#: Seconds one runtime invocation may take before the suite gives up on it.
CALL_TIMEOUT = 30.0

# --------------------------------------------------------------------------
# Clause markers
# --------------------------------------------------------------------------


def clause(spec_file: str, text: str) -> pytest.MarkDecorator:
    """Mark a check with the spec sentence it verifies.

    ``text`` is quoted from ``spec_file``; ``...`` marks an elision.  The
    meta test ``test_meta_broken.py::test_clause_quotes_exist`` checks that
    every quote really occurs in the spec text.  The level (MUST, SHOULD, ...)
    is derived from the quote.
    """
    found = [(text.find(w), -len(w), w) for w in ("MUST NOT", "MUST", "SHOULD NOT", "SHOULD",
                                                   "MAY") if w in text]
    level = min(found)[2] if found else "MUST"  # the first keyword of the quote
    return pytest.mark.clause(file=spec_file, text=text, level=level)


# --------------------------------------------------------------------------
# Root filesystem and bundles
# --------------------------------------------------------------------------


def build_busybox_rootfs(dest: Path) -> Path:
    """Create a minimal rootfs at ``dest``: static busybox, applet symlinks, probe.

    Self-contained on purpose (only /bin/busybox from the host) so the suite
    does not depend on images or other folders of the repository.
    """
    bindir = dest / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(BUSYBOX, bindir / "busybox")
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True)
    for applet in out.stdout.split():
        if applet in ("busybox",) or "/" in applet:
            continue
        (bindir / applet).symlink_to("busybox")
    (dest / "sbin").symlink_to("bin")
    (dest / "usr").mkdir()
    (dest / "usr" / "bin").symlink_to("../bin")
    (dest / "usr" / "sbin").symlink_to("../bin")
    for d in ("proc", "sys", "dev", "tmp", "etc", "out", "work", "root", "mnt", "hooks",
              "ro-dir", "masked-dir"):
        (dest / d).mkdir()
    os.chmod(dest / "tmp", 0o1777)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "user:x:1000:1000:user:/work:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nuser:x:1000:\n")
    (dest / "etc" / "secret").write_text("TOP-SECRET-CONTENT\n")
    (dest / "masked-dir" / "inside").write_text("MASKED-DIR-CONTENT\n")
    (dest / "ro-dir" / "file").write_text("read only\n")
    os.chmod(dest / "ro-dir", 0o777)
    shutil.copy2(PROBE_SCRIPT, dest / "probe.sh")
    os.chmod(dest / "probe.sh", 0o755)
    return dest


def clone_rootfs(template: Path, dest: Path) -> None:
    """Copy the template rootfs for one bundle (hard links keep it cheap)."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(template, dest, symlinks=True, copy_function=link_or_copy)
    # Files tests may rewrite get their own inode so tests cannot interfere.
    for rel in ("probe.sh", "etc/secret", "etc/passwd", "etc/group"):
        data = (template / rel).read_bytes()
        (dest / rel).unlink()
        (dest / rel).write_bytes(data)
    os.chmod(dest / "probe.sh", 0o755)


DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

#: Capability name -> bit number (capabilities(7)); enough for the checks.
CAP_BITS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
}


def cap_mask(names: Iterable[str]) -> int:
    """Bit mask of capability names, as in the Cap* lines of /proc/PID/status."""
    mask = 0
    for n in names:
        mask |= 1 << CAP_BITS[n]
    return mask


def minimal_config(args: list[str] | None = None) -> dict[str, Any]:
    """A minimal, valid Linux config.json (as a dict) for the busybox rootfs.

    New pid/ipc/uts/mount/network namespaces and the default filesystems of
    config-linux.md; no cgroup resources, hooks, masked or read-only paths, so
    each test adds exactly the feature it checks.
    """
    return {
        "ociVersion": CONFIG_OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=dumb"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(DEFAULT_CAPS),
                "effective": list(DEFAULT_CAPS),
                "permitted": list(DEFAULT_CAPS),
            },
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
        },
    }


@dataclass
class Bundle:
    """A bundle directory: ``config.json``, ``rootfs/`` and a host dir ``out/``.

    ``out/`` is bind-mounted at ``/out`` inside the container (see
    :meth:`bind_out`) so container processes and hooks can leave files the
    test reads from the host.
    """

    path: Path
    config: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def out(self) -> Path:
        return self.path / "out"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def bind_out(self, destination: str = "/out") -> "Bundle":
        """Bind-mount the host dir ``out/`` read-write at ``destination``."""
        self.config["mounts"].append({"destination": destination, "type": "bind",
                                      "source": str(self.out), "options": ["rbind", "rw"]})
        return self

    def write(self) -> "Bundle":
        self.config_path.write_text(json.dumps(self.config, indent=2))
        return self

    def set(self, dotted: str, value: Any) -> "Bundle":
        """Set a (possibly nested) config field: ``b.set("process.user.uid", 1000)``."""
        node = self.config
        keys = dotted.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
        return self


def make_bundle(base: Path, template_rootfs: Path, args: list[str] | None = None,
                **overrides: Any) -> Bundle:
    """Create a bundle under ``base`` from the minimal config plus ``overrides``.

    Overrides are dotted paths with ``__`` as separator, e.g.
    ``make_bundle(p, t, process__user={"uid": 1})``; they replace the value.
    """
    path = base / f"bundle-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    clone_rootfs(template_rootfs, path / "rootfs")
    (path / "out").mkdir()
    os.chmod(path / "out", 0o777)
    b = Bundle(path=path, config=copy.deepcopy(minimal_config(args)))
    for key, value in overrides.items():
        b.set(key.replace("__", "."), value)
    return b


# --------------------------------------------------------------------------
# Runtime invocation
# --------------------------------------------------------------------------


@dataclass
class Result:
    """Outcome of one runtime invocation."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        return (f"$ {' '.join(self.argv)}\n  rc={self.rc} ({self.seconds:.2f}s)\n"
                f"  stdout: {self.stdout.strip()[:2000]}\n  stderr: {self.stderr.strip()[:2000]}")


def new_id(prefix: str = "conf") -> str:
    """A container id unique across parallel workers and runs."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Runtime:
    """One runtime binary used with a private ``--root`` state directory.

    Every call is logged (``self.calls``) so a failing check shows what the
    runtime was asked and what it answered.  Runtime stdout/stderr always go
    to files, never to pipes: a detached container inherits the stdio of
    ``create`` and would otherwise keep a pipe open forever.
    """

    def __init__(self, path: str, root: Path, workdir: Path) -> None:
        self.path = path
        self.root = root
        self.workdir = workdir
        self.calls: list[Result] = []
        self.created: list[str] = []
        self._n = 0

    def call(self, *args: str, stdin_text: str | None = None, cwd: Path | None = None,
             stdout_path: Path | None = None, stderr_path: Path | None = None,
             pass_fds: tuple[int, ...] = (), timeout: float = CALL_TIMEOUT,
             preexec: Callable[[], None] | None = None) -> Result:
        """Run ``RUNTIME --root ROOT ARGS...`` and return its result."""
        self._n += 1
        argv = [self.path, "--root", str(self.root), *args]
        out_p = stdout_path or self.workdir / f"call{self._n}.out"
        err_p = stderr_path or self.workdir / f"call{self._n}.err"
        t0 = time.monotonic()
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            stdin: Any = subprocess.DEVNULL
            if stdin_text is not None:
                stdin = subprocess.PIPE
            try:
                proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, cwd=cwd,
                                        pass_fds=pass_fds, preexec_fn=preexec)
                try:
                    proc.communicate(input=stdin_text.encode() if stdin_text else None,
                                     timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    rc = -999
                else:
                    rc = proc.returncode
            except OSError as e:  # runtime binary missing / not executable
                err.write(str(e).encode())
                rc = -998
        res = Result(argv=argv, rc=rc, stdout=out_p.read_text(errors="replace"),
                     stderr=err_p.read_text(errors="replace"), seconds=time.monotonic() - t0)
        self.calls.append(res)
        return res

    # -- the operations of runtime.md ------------------------------------
    def create(self, cid: str, bundle: Bundle | Path | str, *, write: bool = True,
               **kw: Any) -> Result:
        """``create --bundle B ID``; the container's stdio goes to files in the bundle."""
        bpath = bundle.path if isinstance(bundle, Bundle) else Path(bundle)
        if isinstance(bundle, Bundle) and write:
            bundle.write()
        if cid not in self.created:
            self.created.append(cid)
        kw.setdefault("stdout_path", Path(self.workdir) / f"{cid}.stdout")
        kw.setdefault("stderr_path", Path(self.workdir) / f"{cid}.stderr")
        return self.call("create", "--bundle", str(bpath), cid, **kw)

    def start(self, cid: str, **kw: Any) -> Result:
        return self.call("start", cid, **kw)

    def state_result(self, cid: str) -> Result:
        return self.call("state", cid)

    def state(self, cid: str) -> dict[str, Any]:
        """The parsed state; fails the check if the runtime errors or prints non-JSON."""
        r = self.call("state", cid)
        assert r.ok, f"state {cid} failed:\n{r}"
        try:
            data = json.loads(r.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"state {cid} printed no JSON ({e}):\n{r}") from None
        assert isinstance(data, dict), f"state is not a JSON object:\n{r}"
        return data

    def kill(self, cid: str, sig: str = "KILL") -> Result:
        return self.call("kill", cid, sig)

    def delete(self, cid: str, force: bool = False) -> Result:
        return self.call("delete", *(["--force"] if force else []), cid)

    # -- conveniences ----------------------------------------------------
    def container_output(self, cid: str) -> str:
        """What the container process wrote to its stdout so far."""
        p = Path(self.workdir) / f"{cid}.stdout"
        return p.read_text(errors="replace") if p.exists() else ""

    def container_stderr(self, cid: str) -> str:
        p = Path(self.workdir) / f"{cid}.stderr"
        return p.read_text(errors="replace") if p.exists() else ""

    def status(self, cid: str) -> str | None:
        """The status, or None when the runtime reports no such container."""
        r = self.call("state", cid)
        if not r.ok:
            return None
        try:
            status = json.loads(r.stdout).get("status")
            return status if isinstance(status, str) else None
        except (json.JSONDecodeError, AttributeError):
            return None

    def wait_status(self, cid: str, wanted: str, timeout: float = 10.0) -> str | None:
        """Poll ``state`` until the status is ``wanted``; return the last status seen."""
        deadline = time.monotonic() + timeout
        st = self.status(cid)
        while st != wanted and time.monotonic() < deadline:
            time.sleep(0.02)
            st = self.status(cid)
        return st

    def create_and_start(self, cid: str, bundle: Bundle) -> None:
        r = self.create(cid, bundle)
        assert r.ok, f"create failed:\n{r}\ncontainer stderr: {self.container_stderr(cid)}"
        r = self.start(cid)
        assert r.ok, f"start failed:\n{r}"

    def run(self, bundle: Bundle, cid: str | None = None, timeout: float = 10.0) -> str:
        """create + start + wait for ``stopped`` + delete; return the container stdout.

        Uses only the operations of runtime.md (not runc's ``run``), so any
        runtime with the standard lifecycle can be checked.
        """
        cid = cid or new_id()
        self.create_and_start(cid, bundle)
        st = self.wait_status(cid, "stopped", timeout)
        assert st == "stopped", f"container did not stop within {timeout}s (status {st})"
        out = self.container_output(cid)
        self.delete(cid)
        return out

    def cleanup(self) -> None:
        """Force-delete everything this test created (called even on failure)."""
        for cid in self.created:
            self.call("delete", "--force", cid, timeout=15)

    def transcript(self) -> str:
        return "\n".join(str(c) for c in self.calls)


# --------------------------------------------------------------------------
# Probe and /proc parsing
# --------------------------------------------------------------------------


@dataclass
class Probe:
    """Parsed output of ``probe.sh``: key -> list of values (keys may repeat)."""

    values: dict[str, list[str]] = field(default_factory=dict)
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> "Probe":
        p = cls(raw=text)
        for line in text.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                p.values.setdefault(k, []).append(v)
        assert "probe" in p.values, f"probe did not finish; output was:\n{text}"
        return p

    def get(self, key: str) -> str:
        assert key in self.values, f"probe printed no {key!r}; output:\n{self.raw}"
        return self.values[key][0]

    def all(self, key: str) -> list[str]:
        return self.values.get(key, [])

    def cap(self, name: str) -> int:
        """Capability set as int, e.g. ``cap("CapEff")``."""
        return int(self.get(name), 16)

    def env(self) -> dict[str, str]:
        return dict(e.split("=", 1) for e in self.all("env") if "=" in e)

    def limits(self) -> dict[str, tuple[str, str]]:
        """/proc/self/limits as {"Max open files": (soft, hard)}."""
        res: dict[str, tuple[str, str]] = {}
        for line in self.all("limit"):
            m = re.match(r"^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
            if m:
                res[m.group(1)] = (m.group(2), m.group(3))
        return res

    def mounts(self) -> list["MountInfo"]:
        return [MountInfo.parse(line) for line in self.all("mount")]

    def mount_at(self, mountpoint: str) -> "MountInfo":
        """The top-most mount at ``mountpoint`` (the last one in mountinfo)."""
        found = [m for m in self.mounts() if m.mountpoint == mountpoint]
        assert found, f"nothing mounted at {mountpoint}; mountinfo:\n" + "\n".join(self.all("mount"))
        return found[-1]


@dataclass
class MountInfo:
    """One /proc/PID/mountinfo line (proc(5))."""

    root: str
    mountpoint: str
    options: set[str]
    optional: list[str]
    fstype: str
    source: str
    super_options: set[str]

    @classmethod
    def parse(cls, line: str) -> "MountInfo":
        left, right = line.split(" - ", 1)
        f = left.split()
        r = right.split()
        return cls(root=f[3], mountpoint=f[4], options=set(f[5].split(",")), optional=f[6:],
                   fstype=r[0], source=r[1] if len(r) > 1 else "",
                   super_options=set(r[2].split(",")) if len(r) > 2 else set())


def run_probe(rt: Runtime, bundle: Bundle, sysctls: Iterable[str] = ()) -> Probe:
    """Run the probe as the container process and parse what it saw."""
    bundle.config["process"]["args"] = ["/probe.sh", *sysctls]
    return Probe.parse(rt.run(bundle))


def ns_inode(pid: int | str, ns: str) -> str:
    """``readlink /proc/PID/ns/NS``, e.g. ``'uts:[4026531838]'``."""
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still "exists" for kill(0); treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def snapshot_tree(path: Path) -> dict[str, tuple[int, bytes | str]]:
    """(mode, content-or-linktarget) of every entry under ``path`` (for "untouched" checks)."""
    snap: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(path))
            if p.is_symlink():
                snap[rel] = (st.st_mode, os.readlink(p))
            elif p.is_file():
                snap[rel] = (st.st_mode, p.read_bytes())
            else:
                snap[rel] = (st.st_mode, b"")
    return snap


@dataclass
class Holder:
    """A host process holding fresh namespaces (for ``namespaces[].path``)."""

    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def spawn_ns_holder(*unshare_flags: str) -> Holder:
    """Start ``unshare FLAGS sleep`` and wait until its namespaces exist."""
    proc = subprocess.Popen(["unshare", *unshare_flags, "/bin/busybox", "sleep", "300"])
    my = {f: os.readlink(f"/proc/self/ns/{f}") for f in ("net", "uts", "ipc")}
    def ready() -> bool:
        try:
            return any(os.readlink(f"/proc/{proc.pid}/ns/{f}") != v for f, v in my.items()) \
                and os.readlink(f"/proc/{proc.pid}/exe").endswith("busybox")
        except OSError:
            return False
    wait_for(ready, 5)
    return Holder(proc)


def container_cgroup_file(pid: int, controller: str, filename: str) -> Path | None:
    """Host path of a cgroup file of the container process, or None if not visible.

    Handles cgroup v1 (``N:ctrl:/path`` under /sys/fs/cgroup/<ctrl>) and v2
    (``0::/path`` under the cgroup2 mount).
    """
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    mounts = [MountInfo.parse(line) for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            for m in mounts:
                if m.fstype == "cgroup" and controller in m.super_options:
                    cand = Path(m.mountpoint + path) / filename
                    if cand.exists():
                        return cand
    for line in lines:
        hid, ctrls, path = line.split(":", 2)
        if hid == "0" and ctrls == "":
            for m in mounts:
                if m.fstype == "cgroup2":
                    cand = Path(m.mountpoint + path) / filename
                    if cand.exists():
                        return cand
    return None


def signal_number(name: str) -> int:
    return int(getattr(signal, "SIG" + name))


def iter_spec_text(spec_dir: Path, spec_file: str) -> Iterator[str]:
    """Yield the spec file's text with whitespace normalised (for quote checks)."""
    text = (spec_dir / spec_file).read_text()
    yield re.sub(r"\s+", " ", text)
