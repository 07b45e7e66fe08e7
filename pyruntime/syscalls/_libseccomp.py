"""A small ctypes binding to libseccomp.so.2: only the calls pyruntime makes.

Why not the Python packages: ``pyseccomp`` (ctypes too) costs about 52 ms to
import, 34 of them in ``ctypes.util.find_library``, which runs ldconfig, on
every ``create`` that has a seccomp profile; the official ``seccomp`` module
is a Cython extension that Debian ships as python3-seccomp for the system
interpreter only and that cannot be pip-installed into a venv.  Opening the
library by its soname costs well under a millisecond, and only a container
with ``linux.seccomp`` pays even that (``load`` is called lazily, in the init).

libseccomp returns ``-errno`` on failure; this layer hands the numbers back
unchanged and ``pyruntime.seccomp`` turns them into errors.  The constants are
those of seccomp.h (v2.6.0); the filter is always created with
SCMP_FLTATR_API_SYSRAWRC set, so a failed load reports the kernel's errno
rather than libseccomp's catch-all ECANCELED.
"""

from __future__ import annotations

import ctypes

SONAME = "libseccomp.so.2"

NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name: "no such syscall"

# enum scmp_filter_attr
ATTR_ACT_DEFAULT = 1
ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_API_TSKIP = 5
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7
ATTR_CTL_OPTIMIZE = 8
ATTR_API_SYSRAWRC = 9
ATTR_CTL_WAITKILL = 10  # libseccomp 2.6.0 and later

# seccomp_api_get(): the level says what this libseccomp and kernel can do together
API_LOG = 3  # SCMP_ACT_LOG, SCMP_FLTATR_CTL_LOG, SCMP_ACT_KILL_PROCESS
API_SSB = 4  # SCMP_FLTATR_CTL_SSB
API_NOTIFY = 5  # SCMP_ACT_NOTIFY
API_WAITKILL = 7  # SCMP_FLTATR_CTL_WAITKILL


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp"""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class SeccompData(ctypes.Structure):
    """struct seccomp_data: what the filter (and a notification) sees of a syscall"""

    _fields_ = [("nr", ctypes.c_int), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class Notif(ctypes.Structure):
    """struct seccomp_notif"""

    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("data", SeccompData)]


class NotifResp(ctypes.Structure):
    """struct seccomp_notif_resp"""

    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64),
                ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


class Version(ctypes.Structure):
    """struct scmp_version"""

    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_library: ctypes.CDLL | None = None


def load() -> ctypes.CDLL:
    """libseccomp, opened once per process, with the signatures we call declared.

    Raises OSError when the library is missing (the caller names the field).
    """
    global _library
    if _library is not None:
        return _library
    lib = ctypes.CDLL(SONAME)
    ctx, c_int, c_uint, u32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint32
    declarations: dict[str, tuple[list[type], type | None]] = {
        "seccomp_init": ([u32], ctx),
        "seccomp_release": ([ctx], None),
        "seccomp_arch_add": ([ctx, u32], c_int),
        "seccomp_arch_exist": ([ctx, u32], c_int),
        "seccomp_arch_resolve_name": ([ctypes.c_char_p], u32),
        "seccomp_arch_native": ([], u32),
        "seccomp_attr_set": ([ctx, c_int, u32], c_int),
        "seccomp_attr_get": ([ctx, c_int, ctypes.POINTER(u32)], c_int),
        "seccomp_syscall_resolve_name": ([ctypes.c_char_p], c_int),
        "seccomp_rule_add_array": ([ctx, u32, c_int, c_uint, ctypes.POINTER(ArgCmp)], c_int),
        "seccomp_load": ([ctx], c_int),
        "seccomp_notify_fd": ([ctx], c_int),
        "seccomp_export_pfc": ([ctx, c_int], c_int),
        "seccomp_api_get": ([], c_uint),
        "seccomp_version": ([], ctypes.POINTER(Version)),
        "seccomp_notify_alloc": ([ctypes.POINTER(ctypes.POINTER(Notif)),
                                  ctypes.POINTER(ctypes.POINTER(NotifResp))], c_int),
        "seccomp_notify_free": ([ctypes.POINTER(Notif), ctypes.POINTER(NotifResp)], None),
        "seccomp_notify_receive": ([c_int, ctypes.POINTER(Notif)], c_int),
        "seccomp_notify_respond": ([c_int, ctypes.POINTER(NotifResp)], c_int),
        "seccomp_notify_id_valid": ([c_int, ctypes.c_uint64], c_int),
    }
    for name, (argtypes, restype) in declarations.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    _library = lib
    return lib


def version() -> str:
    """"2.5.4": for messages that say which libseccomp lacks a feature."""
    found = load().seccomp_version().contents
    return f"{found.major}.{found.minor}.{found.micro}"


def api_level() -> int:
    return int(load().seccomp_api_get())


def resolve_syscall(name: str) -> int:
    """The native number of ``name`` (negative pseudo-numbers for syscalls of other
    architectures), or NR_SCMP_ERROR when this libseccomp does not know it."""
    return int(load().seccomp_syscall_resolve_name(name.encode()))


def resolve_arch(name: str) -> int:
    """libseccomp's own arch name ("x86_64") to its token; 0 if unknown."""
    return int(load().seccomp_arch_resolve_name(name.encode()))


def conditions(args: list[tuple[int, int, int, int]]) -> ctypes.Array[ArgCmp]:
    """(index, op, datum_a, datum_b) tuples as the array seccomp_rule_add_array takes."""
    array = (ArgCmp * len(args))()
    for slot, (index, op, datum_a, datum_b) in enumerate(args):
        array[slot] = ArgCmp(index, op, datum_a, datum_b)
    return array
