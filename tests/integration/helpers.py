"""Helpers of the integration tests: bundle writer, runtime runner, probe parsing.

Everything here drives the real ``pyruntime`` binary through ``subprocess``
(never its Python API), so the tests see what an engine would see: exit
statuses, stderr lines, state JSON, and what the container process prints.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
BUILD_ROOTFS = BUNDLES / "build-rootfs.sh"


def _find_binary() -> str:
    """The venv's console script first: it is what the lead ships and benchmarks."""
    beside_python = Path(sys.executable).parent / "pyruntime"
    if beside_python.exists():
        return str(beside_python)
    venv = REPO / ".venv" / "bin" / "pyruntime"
    if venv.exists():
        return str(venv)
    found = shutil.which("pyruntime")
    if found is None:
        raise RuntimeError("the pyruntime binary is not installed")
    return found


PYRUNTIME = _find_binary()
ENV_MARKER = "PYRUNTIME_IT_TOKEN"  # put in every container's env: finds leaked processes
DEFAULT_TIMEOUT = 30.0

CAPABILITY_NUMBERS: dict[str, int] = {name: number for number, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"))}

RUNC_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


# folders the session rootfs gets besides build-rootfs.sh's: bind-mount targets
ROOTFS_EXTRA_DIRS = ("/shared", "/mnt/ro", "/mnt/rw", "/mnt/a", "/mnt/b", "/mnt/c", "/mnt/d",
                     "/scratch")


def bind(source: Path | str, destination: str, *options: str) -> dict[str, Any]:
    """A bind-mount entry of ``mounts[]`` (``rbind`` unless options say otherwise)."""
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": list(options) or ["rbind"]}


def cap_mask(names: Iterable[str]) -> int:
    """The bit mask /proc/PID/status prints (CapEff: %016x) for these capabilities."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NUMBERS[name]
    return mask


# --- configs and bundles ---------------------------------------------------------
def base_config(rootfs: str | Path, args: Sequence[str], token: str) -> dict[str, Any]:
    """runc's ``spec`` default (what pyruntime/spec/defaults.py mirrors), written out
    here so that a change of pyruntime's defaults cannot quietly change the tests."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    return {
        "ociVersion": "1.3.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm", f"{ENV_MARKER}={token}"],
            "cwd": "/",
            "capabilities": {kind: list(RUNC_DEFAULT_CAPS)
                             for kind in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "pyruntime",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": kind} for kind in
                           ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Dicts merge key by key; anything else (lists included) replaces; None deletes."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def write_bundle(directory: Path, config: Mapping[str, Any] | str) -> Path:
    """A bundle folder holding config.json (a dict, or raw text for malformed input)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config, indent=2)
    (directory / "config.json").write_text(text)
    return directory


def copy_rootfs(source: Path, destination: Path) -> Path:
    """A private, writable copy (symlinks kept) for tests whose container writes."""
    subprocess.run(["cp", "-a", str(source), str(destination)], check=True, timeout=60)
    return destination


class BundleFactory:
    """Makes bundles for one test: each gets its own folder and the test's token."""

    def __init__(self, base_dir: Path, rootfs: Path, token: str) -> None:
        self.base_dir = base_dir
        self.rootfs = rootfs
        self.token = token
        self._count = 0

    def config(self, args: Sequence[str] = ("true",), rootfs: Path | None = None,
               extra_mounts: Sequence[Mapping[str, Any]] = (), **changes: Any) -> dict[str, Any]:
        """The base config with ``changes`` deep-merged (``process={...}`` etc.)
        and ``extra_mounts`` appended to the default mounts."""
        config = deep_merge(base_config(rootfs or self.rootfs, args, self.token), changes)
        config["mounts"].extend(copy.deepcopy(list(extra_mounts)))
        return config

    def make(self, args: Sequence[str] = ("true",), rootfs: Path | None = None,
             extra_mounts: Sequence[Mapping[str, Any]] = (),
             edit: Callable[[dict[str, Any]], None] | None = None, **changes: Any) -> Path:
        config = self.config(args, rootfs, extra_mounts, **changes)
        if edit is not None:
            edit(config)
        return self.write(config)

    def write(self, config: Mapping[str, Any] | str) -> Path:
        self._count += 1
        return write_bundle(self.base_dir / f"bundle{self._count}", config)

    def host_dir(self, name: str = "host") -> Path:
        """A host folder for bind mounts, fresh for each call."""
        self._count += 1
        path = self.base_dir / f"{name}{self._count}"
        path.mkdir(mode=0o755)
        return path

    def private_rootfs(self) -> Path:
        """A copy of the shared rootfs this test may write into."""
        self._count += 1
        return copy_rootfs(self.rootfs, self.base_dir / f"rootfs{self._count}")


# --- running the runtime ---------------------------------------------------------
class Result:
    """What one CLI call did: its status and both streams, as text."""

    __slots__ = ("args", "returncode", "stdout", "stderr")

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return (f"Result({' '.join(self.args[1:])!r}, rc={self.returncode}, "
                f"stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})")

    def ok(self) -> Result:
        """Fail with everything we know if the call did not succeed."""
        assert self.returncode == 0, self
        return self


class Runtime:
    """``pyruntime --root ROOT ...`` for one test, each call with a timeout.

    ``create`` and ``run --detach`` leave a process that holds the streams it
    was given, so they write to files (a pipe would never reach EOF); the
    container's output is read from those files later with ``output()``.
    """

    def __init__(self, root: Path, logs: Path, token: str) -> None:
        self.root = root
        self.logs = logs
        self.token = token
        self.env = dict(os.environ, **{ENV_MARKER: token})
        self.env.pop("LISTEN_FDS", None)
        self.env.pop("NOTIFY_SOCKET", None)

    def argv(self, *args: str) -> list[str]:
        return [PYRUNTIME, "--root", str(self.root), *args]

    def __call__(self, *args: str, timeout: float = DEFAULT_TIMEOUT, input: str | None = None,
                 global_args: Sequence[str] = ()) -> Result:
        argv = [PYRUNTIME, "--root", str(self.root), *global_args, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              env=self.env)
        return Result(argv, done.returncode, done.stdout, done.stderr)

    def run(self, container_id: str, bundle: Path, *flags: str,
            timeout: float = DEFAULT_TIMEOUT, fd3: Path | None = None) -> Result:
        """``run`` in the foreground; the container's output is the result's.

        With ``fd3``, pyruntime starts with that file open as its fd 3 (through a
        shell that execs it: the test process must not touch its own fd 3)."""
        argv = self.argv("run", *flags, "--bundle", str(bundle), container_id)
        if fd3 is not None:
            argv = ["sh", "-c", 'f=$1; shift; exec "$@" 3<"$f"', "sh", str(fd3), *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=self.env)
        return Result(argv, done.returncode, done.stdout, done.stderr)

    def _detached(self, command: str, container_id: str, bundle: Path, flags: Sequence[str],
                  timeout: float) -> Result:
        out, err = self.logs / f"{container_id}.out", self.logs / f"{container_id}.err"
        argv = self.argv(command, *flags, "--bundle", str(bundle), container_id)
        with open(out, "w") as stdout, open(err, "w") as stderr:
            done = subprocess.run(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                  timeout=timeout, env=self.env)
        return Result(argv, done.returncode, out.read_text(), err.read_text())

    def create(self, container_id: str, bundle: Path, *flags: str,
               timeout: float = DEFAULT_TIMEOUT) -> Result:
        return self._detached("create", container_id, bundle, flags, timeout)

    def run_detached(self, container_id: str, bundle: Path, *flags: str,
                     timeout: float = DEFAULT_TIMEOUT) -> Result:
        return self._detached("run", container_id, bundle, ("--detach", *flags), timeout)

    def output(self, container_id: str) -> str:
        """What the container wrote to its stdout so far (create / run -d only)."""
        return (self.logs / f"{container_id}.out").read_text()

    def start(self, container_id: str) -> Result:
        return self("start", container_id)

    def state(self, container_id: str) -> dict[str, Any]:
        result = self("state", container_id).ok()
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    def status(self, container_id: str) -> str:
        return str(self.state(container_id)["status"])

    def kill(self, container_id: str, *args: str) -> Result:
        return self("kill", container_id, *args)

    def delete(self, container_id: str, force: bool = False) -> Result:
        return self("delete", *(["--force"] if force else []), container_id)

    def wait_status(self, container_id: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ``state`` until it says ``wanted``; fail with the last state seen."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.state(container_id)
            if current["status"] == wanted:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{container_id} still {current['status']!r}, "
                                     f"wanted {wanted!r}: {current}")
            time.sleep(0.02)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def new_token() -> str:
    return uuid.uuid4().hex[:10]


# --- checks on results -----------------------------------------------------------
def assert_one_line_error(result: Result, *needles: str) -> str:
    """A refusal as engines need it: non-zero, one line on stderr, no traceback,
    naming what is wrong (every ``needle`` appears in it)."""
    assert result.returncode != 0, result
    message = result.stderr.strip()
    assert message, result
    assert len(message.splitlines()) == 1, result
    assert "Traceback" not in result.stderr, result
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


# --- probe parsing ----------------------------------------------------------------
def parse_status(text: str) -> dict[str, str]:
    """/proc/PID/status as {"Pid": "1", "CapEff": "00000000a80425fb", ...}."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


class MountLine:
    """One line of /proc/PID/mountinfo, with the per-mount and super options apart."""

    __slots__ = ("mount_id", "parent_id", "root", "mount_point", "options", "optional",
                 "fstype", "source", "super_options")

    def __init__(self, line: str) -> None:
        left, _, right = line.partition(" - ")
        fields = left.split()
        self.mount_id = int(fields[0])
        self.parent_id = int(fields[1])
        self.root = _unescape(fields[3])
        self.mount_point = _unescape(fields[4])
        self.options = set(fields[5].split(","))
        self.optional = fields[6:]  # shared:N, master:N, propagate_from:N, unbindable
        parts = right.split()
        self.fstype = parts[0] if parts else ""
        self.source = _unescape(parts[1]) if len(parts) > 1 else ""
        self.super_options = set(parts[2].split(",")) if len(parts) > 2 else set()

    @property
    def is_shared(self) -> bool:
        return any(tag.startswith("shared:") for tag in self.optional)

    @property
    def is_slave(self) -> bool:
        return any(tag.startswith("master:") for tag in self.optional)

    def __repr__(self) -> str:
        return (f"MountLine({self.mount_point!r}, {self.fstype}, opts={sorted(self.options)}, "
                f"super={sorted(self.super_options)}, optional={self.optional})")


def _unescape(field: str) -> str:
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def parse_mountinfo(text: str) -> list[MountLine]:
    return [MountLine(line) for line in text.splitlines() if " - " in line]


def mount_at(mounts: Sequence[MountLine], mount_point: str) -> MountLine:
    """The top-most mount at ``mount_point`` (the last listed one wins)."""
    found = [m for m in mounts if m.mount_point == mount_point]
    assert found, f"nothing mounted at {mount_point}: {[m.mount_point for m in mounts]}"
    return found[-1]


def parse_limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/PID/limits as {"Max open files": ("1024", "1024"), ...}."""
    limits: dict[str, tuple[str, str]] = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        values = line[26:].split()
        if name and len(values) >= 2:
            limits[name] = (values[0], values[1])
    return limits


def sections(text: str, marker: str = "=== ") -> dict[str, str]:
    """Split a probe's output at ``=== NAME`` lines into {NAME: text}."""
    result: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith(marker):
            current = line[len(marker):].strip()
            result[current] = []
        else:
            result.setdefault(current, []).append(line)
    return {key: "\n".join(lines) + ("\n" if lines else "") for key, lines in result.items()}


def probe_script(probes: Mapping[str, str]) -> list[str]:
    """``sh -c`` args printing each command's output under ``=== NAME`` (see sections)."""
    script = "; ".join(f"echo '=== {name}'; {command}" for name, command in probes.items())
    return ["sh", "-c", script]


def host_namespace_inodes() -> dict[str, int]:
    return {kind: os.stat(f"/proc/self/ns/{kind}").st_ino
            for kind in ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")}


def process_namespace_inodes(pid: int) -> dict[str, int]:
    return {kind: os.stat(f"/proc/{pid}/ns/{kind}").st_ino
            for kind in ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")}


def read_proc_status(pid: int) -> dict[str, str]:
    return parse_status(Path(f"/proc/{pid}/status").read_text())


def pid_exists(pid: int) -> bool:
    """Alive and not a zombie (a zombie waits for its reaper, not for us)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return text[text.rindex(")") + 2:].split()[0] not in ("Z", "X")
