"""bpf(2) through ctypes: load a cgroup device program, attach it, list what is attached.

Apart from ``linux.py`` because only the cgroup v2 driver needs it, at create,
and it should cost the other commands nothing.  Each call raises
``SyscallError`` naming the operation; a refused load retries once with the
verifier's log, so the error says why the kernel refused the program.
"""

from __future__ import annotations

import ctypes
import errno
import os

from pyruntime.errors import PyRuntimeError, SyscallError

SYS_bpf = 321  # x86_64
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_QUERY = 5, 8, 9, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type
BPF_F_ALLOW_MULTI = 2
LOG_SIZE = 1 << 16
PROGRAM_NAME = b"pyruntime_dev"  # at most 15 bytes: what bpftool and fdinfo show


class ProgLoadAttr(ctypes.Structure):
    """The BPF_PROG_LOAD part of union bpf_attr (the fields we set, in kernel order)."""
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32)]


class ProgAttachAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32)]


class ProgQueryAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("query_flags", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32)]


_libc: ctypes.CDLL | None = None


def _bpf(command: int, attr: ctypes.Structure) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    result = int(_libc.syscall(ctypes.c_long(SYS_bpf), ctypes.c_int(command),
                               ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))))
    return result if result >= 0 else -ctypes.get_errno()


def load_device_program(code: bytes, license: str, label: str) -> int:
    """BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program: its fd (close-on-exec)."""
    instructions = ctypes.create_string_buffer(code, len(code))
    license_text = ctypes.create_string_buffer(license.encode())
    attr = ProgLoadAttr(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(code) // 8,
                        insns=ctypes.addressof(instructions),
                        license=ctypes.addressof(license_text), prog_name=PROGRAM_NAME)
    fd = _bpf(BPF_PROG_LOAD, attr)
    if fd >= 0:
        return fd
    log = ctypes.create_string_buffer(LOG_SIZE)
    attr.log_level, attr.log_size, attr.log_buf = 1, LOG_SIZE, ctypes.addressof(log)
    again = _bpf(BPF_PROG_LOAD, attr)
    if again >= 0:  # a load that only works with a log would be odd, but it worked
        return again
    verifier = log.value.decode(errors="replace").strip().splitlines()
    if verifier and -again in (errno.EACCES, errno.EINVAL):
        raise PyRuntimeError(f"load device filter for {label}: the kernel refused it: "
                             f"{' / '.join(verifier[-3:])}")
    raise SyscallError("bpf(BPF_PROG_LOAD) device filter for", label, -again)


def attach_device_program(cgroup_fd: int, program_fd: int, label: str) -> None:
    """BPF_PROG_ATTACH to the cgroup as BPF_CGROUP_DEVICE, alongside any others (multi)."""
    attr = ProgAttachAttr(target_fd=cgroup_fd, attach_bpf_fd=program_fd,
                          attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI)
    result = _bpf(BPF_PROG_ATTACH, attr)
    if result < 0:
        raise SyscallError("bpf(BPF_PROG_ATTACH) device filter to", label, -result)


def attached_device_programs(cgroup_fd: int, label: str, room: int = 64) -> list[int]:
    """BPF_PROG_QUERY: the ids of the device programs attached to this cgroup itself."""
    ids = (ctypes.c_uint32 * room)()
    attr = ProgQueryAttr(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE,
                         prog_ids=ctypes.addressof(ids), prog_cnt=room)
    result = _bpf(BPF_PROG_QUERY, attr)
    if result < 0:
        raise SyscallError("bpf(BPF_PROG_QUERY) device filters of", label, -result)
    return list(ids[:attr.prog_cnt])


def load_and_attach(folder: str, code: bytes, license: str) -> None:
    """Load ``code``, attach it to the cgroup at ``folder``, close both fds.

    The attachment holds its own reference, and the kernel detaches and frees
    the program when the cgroup is removed, so ``delete`` has nothing to undo."""
    try:
        cgroup_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SyscallError("open", folder, exc.errno or 0) from exc
    try:
        program_fd = load_device_program(code, license, folder)
        try:
            attach_device_program(cgroup_fd, program_fd, folder)
        finally:
            os.close(program_fd)
    finally:
        os.close(cgroup_fd)
