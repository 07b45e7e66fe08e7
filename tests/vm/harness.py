"""A tiny QEMU harness: run a command as root inside a throw-away VM with real cgroup v2.

The host keeps its own (hybrid) cgroup layout untouched; the guest boots Debian's
stock kernel under TCG, sees the host's ``/`` read-only over 9p with a tmpfs
overlay on top (so it runs the host's python, venv and checkout, and nothing it
writes reaches the host), mounts cgroup2 at /sys/fs/cgroup with every controller
enabled, runs the command and powers off.  Results come back over a second,
read-write 9p share (a host temp dir).

    from .harness import run_in_vm                  # in tests/vm (package "vm")
    r = run_in_vm(["cat", "/sys/fs/cgroup/cgroup.controllers"])
    r.exit_status, r.stdout, r.stderr, r.console_log

Command line (also what tests/vm/build.sh calls):

    python3 tests/vm/harness.py build               # fetch kernel, build initramfs (cached)
    python3 tests/vm/harness.py run -- CMD ARG...   # run one command in a VM
    python3 tests/vm/harness.py run --shell 'SCRIPT'

Build, all cached under tests/vm/.cache (or $PYRUNTIME_VM_CACHE):
  1. the versioned kernel package that ``linux-image-amd64`` depends on is fetched
     with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (never installed);
     only vmlinuz and the needed modules (with their dependencies, read from each
     module's .modinfo, since the package has no modules.dep) are kept;
  2. an initramfs (cpio newc, gzip, written here in Python: no cpio tool needed)
     holding the static /bin/busybox (Debian's busybox-static), those modules
     (decompressed when .ko.xz/.ko.zst) and the /init below.
A second build is a cheap stamp check: no apt, no dpkg.

Errors: ``VMUnavailable`` (qemu, busybox-static or the kernel package cannot be
had: tests skip, naming the apt package) versus ``VMBootError`` (everything is
there but the VM did not boot or did not report: tests fail) and
``VMCommandTimeout`` (the VM booted, the command ran past the timeout).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
CACHE_DIR = Path(os.environ.get("PYRUNTIME_VM_CACHE", HERE / ".cache"))

QEMU = "qemu-system-x86_64"
QEMU_APT = "qemu-system-x86"
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APT = "busybox-static"
KERNEL_META_PACKAGE = "linux-image-amd64"

# Modules the guest loads (dependencies are added automatically, in load order).
GUEST_MODULES = ("virtio_pci", "virtio_rng", "9pnet_virtio", "9p", "overlay")

GUEST_MEMORY_MB = int(os.environ.get("PYRUNTIME_VM_MEMORY", "1024"))
GUEST_CPUS = int(os.environ.get("PYRUNTIME_VM_CPUS", "2"))
KERNEL_CMDLINE = "console=ttyS0 quiet panic=-1 cgroup_no_v1=all"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Inside the guest: the results share, handy for a command that wants to leave files.
GUEST_RESULTS = "/run/vm/results"

# ---------------------------------------------------------------------------------
# Guest scripts.  Stage 1 runs from the initramfs as PID 1, builds the overlay root
# and switch_roots into it; stage 2 (PID 1 in the new root, still busybox) sets up
# cgroup2, runs the command and powers off.  Both log "vm-init:" lines on ttyS0.

INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /bin /proc /sys /dev
/bin/busybox --install -s /bin
export PATH=/bin
exec </dev/console >/dev/console 2>&1
log() { echo "vm-init: $*"; }
die() { echo "vm-init: FATAL: $*"; echo "vm-init: FATAL" >/dev/ttyS0; sleep 1; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
    insmod "/lib/modules/$m" || die "insmod $m"
done
mkdir -p /host-ro /rw /newroot
# 9p transport needs the virtio device probed; it is, once insmod returned.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /host-ro \
    || die "mount 9p hostroot"
mount -t tmpfs -o mode=0755 tmpfs /rw || die "mount tmpfs /rw"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host-ro,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || die "mount overlay"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || die "mount /run"
mkdir -p /newroot/run/vm/results
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 results /newroot/run/vm/results \
    || die "mount 9p results"
cp /bin/busybox /newroot/run/vm/busybox
cp /stage2 /newroot/run/vm/stage2
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
log "switch_root"
exec switch_root /newroot /run/vm/busybox sh /run/vm/stage2
die "switch_root failed"
"""

STAGE2_SCRIPT = r"""BB=/run/vm/busybox
R=/run/vm/results
log() { echo "vm-init: $*"; }
die() { echo "vm-init: FATAL: $*"; $BB sleep 1; $BB poweroff -f; }
$BB mkdir -p /dev/pts /dev/shm /tmp /sys/fs/cgroup
$BB mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
$BB ln -sf pts/ptmx /dev/ptmx 2>/dev/null
$BB mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
# no tmpfs over /tmp: the overlay already keeps the guest's writes in memory, and the
# checkout under test may itself live below the host's /tmp (CI clones anywhere)
$BB mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || die "mount cgroup2"
for c in $($BB cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || log "cannot enable controller $c"
done
$BB hostname pyruntime-vm
$BB ip link set lo up 2>/dev/null
log "controllers: $($BB cat /sys/fs/cgroup/cgroup.subtree_control)"
log "running command"
: > $R/started
$BB env -i PATH="$($BB cat $R/path)" HOME=/root LANG=C.UTF-8 TERM=dumb VM_RESULTS=$R \
    /bin/sh -c ". $R/env.sh && exec /bin/sh $R/cmd.sh" >$R/stdout 2>$R/stderr </dev/null
echo $? > $R/status.tmp
$BB mv $R/status.tmp $R/status
log "command exited $($BB cat $R/status)"
$BB sync
$BB poweroff -f
"""


# ---------------------------------------------------------------------------------
# Errors and results


class VMError(RuntimeError):
    """Base of the harness's errors."""


class VMUnavailable(VMError):
    """qemu, busybox-static or the Debian kernel cannot be had (tests skip)."""


class VMBootError(VMError):
    """The tools are there but the VM did not boot or did not report (tests fail)."""


class VMCommandTimeout(VMError):
    """The VM booted and started the command, which outran the timeout."""

    def __init__(self, message: str, stdout: str, stderr: str, console_log: str) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr
        self.console_log = console_log


@dataclasses.dataclass(frozen=True)
class VMResult:
    exit_status: int
    stdout: str
    stderr: str
    console_log: str
    duration: float  # seconds, qemu start to exit

    def check(self) -> VMResult:
        """Raise AssertionError with all the output when exit_status != 0."""
        if self.exit_status != 0:
            raise AssertionError(
                f"command in VM exited {self.exit_status}\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}\n--- console (tail)\n{_tail(self.console_log)}"
            )
        return self


@dataclasses.dataclass(frozen=True)
class VMImage:
    kernel: Path
    initrd: Path
    kernel_version: str


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------
# Build


def _log(msg: str) -> None:
    print(f"[vm-harness] {msg}", file=sys.stderr, flush=True)


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """Serialise builds (pytest-xdist workers, parallel runs) on one cache dir."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_static_elf(path: Path) -> bool:
    """True when the ELF at path has no PT_INTERP (no dynamic loader)."""
    with open(path, "rb") as fh:
        hdr = fh.read(64)
        if len(hdr) < 64 or hdr[:4] != b"\x7fELF" or hdr[4] != 2:  # 64-bit only
            return False
        endian = "<" if hdr[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", hdr, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", hdr, 54)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from(endian + "I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def check_host_tools() -> None:
    """Raise VMUnavailable naming the apt package for whatever is missing."""
    missing = []
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (apt-get install {QEMU_APT})")
    if not (BUSYBOX.is_file() and _is_static_elf(BUSYBOX)):
        missing.append(f"a static {BUSYBOX} (apt-get install {BUSYBOX_APT})")
    for tool, pkg in (("apt-get", "apt"), ("dpkg-deb", "dpkg")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (package {pkg}: a Debian host is needed)")
    if missing:
        raise VMUnavailable("VM tests need: " + "; ".join(missing))


def _run(cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def _kernel_package() -> str:
    """The versioned package linux-image-amd64 depends on, e.g. linux-image-6.1.0-57-amd64."""
    override = os.environ.get("PYRUNTIME_VM_KERNEL_PACKAGE")
    if override:
        return override
    proc = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    deps = re.findall(r"^\s*Depends:\s*(linux-image-\S+)", proc.stdout, re.M)
    if proc.returncode != 0 or not deps:
        raise VMUnavailable(
            f"cannot resolve {KERNEL_META_PACKAGE} with apt-cache (run 'apt-get update' first): "
            f"{proc.stderr.strip() or proc.stdout.strip() or 'no Depends'}"
        )
    return str(deps[0])


def _module_name(path: Path) -> str:
    name = path.name
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        if shutil.which("zstd") is None:
            raise VMUnavailable(f"{path.name} is zstd-compressed: apt-get install zstd")
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    return data


def _modinfo_depends(ko: bytes) -> list[str]:
    # .modinfo holds NUL-separated key=value strings; "depends=a,b" is always there.
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", ko)
    if not m or not m.group(1):
        return []
    return [d.decode() for d in m.group(1).split(b",") if d]


def _resolve_modules(moddir: Path, wanted: Sequence[str]) -> list[tuple[str, bytes]]:
    """(name, decompressed .ko) for wanted and their dependencies, dependencies first."""
    index = {_module_name(p): p for p in moddir.rglob("*.ko*") if p.is_file()}
    builtin_file = moddir / "modules.builtin"
    builtin = set()
    if builtin_file.exists():
        builtin = {_module_name(Path(line.strip())) for line in builtin_file.read_text().splitlines()}
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            if name in builtin:
                return
            raise VMBootError(f"kernel module {name} not found under {moddir}")
        data = _read_module(index[name])
        for dep in _modinfo_depends(data):
            visit(dep)
        ordered.append((name, data))

    for w in wanted:
        visit(w)
    return ordered


def _fetch_kernel(cache: Path, package: str) -> Path:
    """Download + unpack package; keep vmlinuz and the needed modules in cache/<package>."""
    dest = cache / package
    manifest = dest / "manifest.json"
    if manifest.exists():
        info = json.loads(manifest.read_text())
        if info.get("wanted") == list(GUEST_MODULES):
            return dest
    _log(f"fetching {package} with apt-get download (once; cached in {cache})")
    with tempfile.TemporaryDirectory(prefix="dl-", dir=cache) as tmp:
        os.chmod(tmp, 0o777)  # so apt's sandbox user (_apt) may write there: no warning
        proc = _run(["apt-get", "download", package], cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise VMUnavailable(
                f"apt-get download {package} failed (run 'apt-get update'?): {proc.stderr.strip()[-600:]}"
            )
        unpack = Path(tmp) / "x"
        proc = _run(["dpkg-deb", "-x", str(debs[0]), str(unpack)])
        if proc.returncode != 0:
            raise VMBootError(f"dpkg-deb -x {debs[0].name} failed: {proc.stderr.strip()}")
        vmlinuz = sorted((unpack / "boot").glob("vmlinuz-*"))
        moddirs = sorted(p for p in (unpack / "lib" / "modules").glob("*") if p.is_dir())
        if not vmlinuz or not moddirs:
            raise VMBootError(f"{debs[0].name} has no /boot/vmlinuz-* or /lib/modules/<ver>")
        modules = _resolve_modules(moddirs[0], GUEST_MODULES)
        staging = cache / (package + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "modules").mkdir(parents=True)
        shutil.copyfile(vmlinuz[0], staging / "vmlinuz")
        for name, data in modules:
            (staging / "modules" / f"{name}.ko").write_bytes(data)
        config = sorted((unpack / "boot").glob("config-*"))
        pvh = bool(config) and "\nCONFIG_PVH=y\n" in config[0].read_text()
        elf = _extract_vmlinux(vmlinuz[0].read_bytes()) if pvh else None
        if elf is not None:
            (staging / "vmlinux").write_bytes(elf)
        (staging / "manifest.json").write_text(json.dumps({
            "package": package,
            "kernel_version": moddirs[0].name,
            "wanted": list(GUEST_MODULES),
            "load_order": [name for name, _ in modules],
            "pvh_vmlinux": elf is not None,
        }, indent=1))
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return dest


def _extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF inside a bzImage (xz or gzip payload), like scripts/extract-vmlinux.

    qemu boots such an ELF straight at its PVH entry point: no firmware real-mode
    setup and no in-guest decompression, which under TCG saves ~3-4 s per boot.
    """
    for magic, make in ((b"\xfd7zXZ\x00", lzma.LZMADecompressor),
                        (b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))):
        at = bzimage.find(magic)
        while at != -1:
            try:
                out = make().decompress(bzimage[at:])
            except (lzma.LZMAError, zlib.error):
                out = b""
            if out[:4] == b"\x7fELF":
                return out
            at = bzimage.find(magic, at + 1)
    return None


class _Cpio:
    """Minimal cpio 'newc' writer (what the kernel's initramfs unpacker reads)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\x00"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        self.buf.write(b"\x00" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\x00" * (-self.buf.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, 0o100000 | perm, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def _build_initramfs(kdir: Path, cache: Path) -> Path:
    info = json.loads((kdir / "manifest.json").read_text())
    order: list[str] = info["load_order"]
    busybox = BUSYBOX.read_bytes()
    modules = [(n, (kdir / "modules" / f"{n}.ko").read_bytes()) for n in order]
    h = hashlib.sha256()
    for part in (busybox, INIT_SCRIPT.encode(), STAGE2_SCRIPT.encode(), *(d for _, d in modules)):
        h.update(hashlib.sha256(part).digest())
    out = kdir / f"initramfs-{h.hexdigest()[:16]}.cpio.gz"
    if out.exists():
        return out
    _log(f"building {out.name}")
    cpio = _Cpio()
    for d in ("bin", "dev", "lib", "lib/modules", "proc", "sys"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.file("init", INIT_SCRIPT.encode(), 0o755)
    cpio.file("stage2", STAGE2_SCRIPT.encode(), 0o644)
    for name, data in modules:
        cpio.file(f"lib/modules/{name}.ko", data)
    cpio.file("modules.list", "".join(f"{n}.ko\n" for n in order).encode())
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
    for old in kdir.glob("initramfs-*.cpio.gz"):
        old.unlink()
    tmp.rename(out)
    return out


_IMAGE: VMImage | None = None


def ensure_built(cache: Path = CACHE_DIR) -> VMImage:
    """Fetch the kernel and build the initramfs unless cached.  Cheap when cached."""
    global _IMAGE
    if _IMAGE is not None and _IMAGE.initrd.exists():
        return _IMAGE
    check_host_tools()
    with _locked(cache):
        # Reuse any cached kernel without asking apt (no 'apt-get update' needed then);
        # PYRUNTIME_VM_REFRESH=1 re-resolves linux-image-amd64.
        kdir = None
        if not os.environ.get("PYRUNTIME_VM_REFRESH") and not os.environ.get("PYRUNTIME_VM_KERNEL_PACKAGE"):
            for m in sorted(cache.glob("linux-image-*/manifest.json"), reverse=True):
                if json.loads(m.read_text()).get("wanted") == list(GUEST_MODULES):
                    kdir = m.parent
                    break
        if kdir is None:
            kdir = _fetch_kernel(cache, _kernel_package())
        initrd = _build_initramfs(kdir, cache)
        info = json.loads((kdir / "manifest.json").read_text())
        kernel = kdir / "vmlinuz"
        if info.get("pvh_vmlinux") and not os.environ.get("PYRUNTIME_VM_BZIMAGE"):
            kernel = kdir / "vmlinux"
        _IMAGE = VMImage(kernel=kernel, initrd=initrd, kernel_version=info["kernel_version"])
        return _IMAGE


# ---------------------------------------------------------------------------------
# Run


def _qemu_argv(image: VMImage, results: Path, console: Path, memory_mb: int, cpus: int) -> list[str]:
    model = "passthrough" if os.geteuid() == 0 else "none"
    return [
        QEMU,
        "-accel", "tcg,thread=multi",  # /dev/kvm here is nested and cannot boot stock kernels
        "-cpu", "max",
        "-m", str(memory_mb),
        "-smp", str(cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
        "-nic", "none",
        "-serial", f"file:{console}",
        "-no-reboot",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", KERNEL_CMDLINE,
        "-fsdev", f"local,id=hostroot,path=/,security_model={model},readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=results,path={results},security_model={model},multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
        "-device", "virtio-rng-pci",
    ]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def run_in_vm(
    command: Sequence[str] | str,
    timeout: float = 120,
    cwd: str | os.PathLike[str] = REPO_ROOT,
    env: Mapping[str, str] | None = None,
    memory_mb: int = GUEST_MEMORY_MB,
    cpus: int = GUEST_CPUS,
) -> VMResult:
    """Boot a VM, run command as root in cwd (a list is exec'd, a str is a /bin/sh
    script), return its exit status and output.

    The environment is PATH (standard dirs), HOME=/root, LANG=C.UTF-8, TERM=dumb,
    VM_RESULTS (a read-write dir shared with the host) and whatever env adds.
    cwd defaults to this checkout (the repo root this file lives in).
    """
    image = ensure_built()
    if isinstance(command, str):
        body = command
    else:
        if not command:
            raise ValueError("empty command")
        body = "exec " + shlex.join(command)
    with tempfile.TemporaryDirectory(prefix="pyruntime-vm-") as tmp:
        results = Path(tmp) / "results"
        results.mkdir()
        os.chmod(results, 0o777)
        console = Path(tmp) / "console.log"
        (results / "cmd.sh").write_text(f"cd {shlex.quote(os.fspath(cwd))} || exit 126\n{body}\n")
        (results / "path").write_text(GUEST_PATH)
        (results / "env.sh").write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
        )
        argv = _qemu_argv(image, results, console, memory_mb, cpus)
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            qemu_out, _ = proc.communicate(timeout=timeout)
        except BaseException as exc:  # timeout, or ^C: never leave a qemu behind
            proc.kill()
            qemu_out, _ = proc.communicate()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            log = _read(console)
            if (results / "started").exists():
                raise VMCommandTimeout(
                    f"command in VM still running after {timeout:.0f}s: {body!r}\n"
                    f"--- stdout (tail)\n{_tail(_read(results / 'stdout'))}\n"
                    f"--- stderr (tail)\n{_tail(_read(results / 'stderr'))}",
                    _read(results / "stdout"), _read(results / "stderr"), log,
                ) from None
            raise VMBootError(
                f"VM did not boot within {timeout:.0f}s\n--- console (tail)\n{_tail(log)}"
                f"\n--- qemu\n{qemu_out.strip()}"
            ) from None
        duration = time.monotonic() - start
        log = _read(console)
        status_text = _read(results / "status").strip()
        if not status_text.isdigit():
            raise VMBootError(
                f"VM exited (qemu status {proc.returncode}) without reporting an exit status"
                f" after {duration:.1f}s\n--- qemu\n{qemu_out.strip()}\n--- console (tail)\n{_tail(log)}"
            )
        return VMResult(
            exit_status=int(status_text),
            stdout=_read(results / "stdout"),
            stderr=_read(results / "stderr"),
            console_log=log,
            duration=duration,
        )


def unavailable_reason() -> str | None:
    """None when VMs can be booted here; else why not (for pytest.skip)."""
    if os.environ.get("PYRUNTIME_SKIP_VM"):
        return "VM tests disabled by PYRUNTIME_SKIP_VM"
    try:
        ensure_built()
    except VMUnavailable as exc:
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tests/vm/harness.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="fetch the kernel and build the initramfs (cached)")
    rp = sub.add_parser("run", help="run a command in a VM")
    rp.add_argument("--timeout", type=float, default=120)
    rp.add_argument("--cwd", default=str(REPO_ROOT))
    rp.add_argument("--shell", help="a /bin/sh script instead of argv")
    rp.add_argument("--console", action="store_true", help="print the console log too")
    rp.add_argument("argv", nargs="*")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build":
            t = time.monotonic()
            image = ensure_built()
            print(f"kernel {image.kernel_version}: {image.kernel}\ninitrd: {image.initrd}"
                  f"\n({time.monotonic() - t:.1f}s)")
            return 0
        command: Sequence[str] | str = args.shell if args.shell is not None else args.argv
        res = run_in_vm(command, timeout=args.timeout, cwd=args.cwd)
    except VMError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 125
    if args.console:
        sys.stderr.write(res.console_log)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    print(f"[vm-harness] exit {res.exit_status} in {res.duration:.1f}s", file=sys.stderr)
    return res.exit_status


if __name__ == "__main__":
    sys.exit(main())
