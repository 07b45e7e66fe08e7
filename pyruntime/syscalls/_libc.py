"""ctypes signatures and constants for the calls Python 3.11's ``os`` lacks.

Kept apart from ``linux.py`` so that the constants can be read (and tested)
without loading libc.  libc is opened by its soname: ``ctypes.util.find_library``
would run ldconfig, which costs more than a whole ``state`` command.
"""

from __future__ import annotations

import ctypes

# Flag values that callers pass in (MS_*, CLONE_*, MOUNT_ATTR_*, RESOLVE_*) live
# with the pure tables in pyruntime.plan, which need no libc to be read.

# close_range(2)
CLOSE_RANGE_CLOEXEC = 0x4

# x86_64 system call numbers (the only architecture this project runs on today)
SYS_capset = 126
SYS_keyctl = 250
SYS_ioprio_set = 251
SYS_sched_setattr = 314
SYS_pivot_root = 155
SYS_pidfd_send_signal = 424
SYS_close_range = 436
SYS_openat2 = 437
SYS_mount_setattr = 442

# capset(2)
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# ioctl(2) on sockets, for bringing up loopback without pyroute2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long),
                ("f_blocks", ctypes.c_ulong), ("f_bfree", ctypes.c_ulong),
                ("f_bavail", ctypes.c_ulong), ("f_files", ctypes.c_ulong),
                ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.c_int * 2),
                ("f_namelen", ctypes.c_long), ("f_frsize", ctypes.c_long),
                ("f_flags", ctypes.c_long), ("f_spare", ctypes.c_long * 4)]


def load() -> ctypes.CDLL:
    """Open libc with errno capture, and declare the signatures we call."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    c_char_p, c_ulong, c_int = ctypes.c_char_p, ctypes.c_ulong, ctypes.c_int
    libc.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_char_p]
    libc.umount2.argtypes = [c_char_p, c_int]
    libc.unshare.argtypes = [c_int]
    libc.setns.argtypes = [c_int, c_int]
    libc.sethostname.argtypes = [c_char_p, ctypes.c_size_t]
    libc.setdomainname.argtypes = [c_char_p, ctypes.c_size_t]
    libc.prctl.argtypes = [c_int, c_ulong, c_ulong, c_ulong, c_ulong]
    libc.fstatfs.argtypes = [c_int, ctypes.POINTER(StatFs)]
    libc.personality.argtypes = [c_ulong]
    libc.syscall.restype = ctypes.c_long
    return libc
