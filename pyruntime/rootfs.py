"""Building the container's root filesystem inside its new mount namespace.

Runs in the init, in this order (runc's): propagation of ``/``, the rootfs
bound onto itself, ``mounts[]`` in config order, /dev (devices, links, ptmx),
then ``pivot_root`` (or MS_MOVE + chroot with ``--no-pivot``).  After the
pivot: readonlyPaths, maskedPaths, then ``root.readonly``.  Every target is
an O_PATH descriptor from ``paths.ensure_in_root``.
"""

from __future__ import annotations

import errno
import os
import stat

from pyruntime import paths
from pyruntime.errors import ConfigError, SyscallError
from pyruntime.plan import mounts as m
from pyruntime.plan.devices import DEFAULT_DEVICES, DEFAULT_LINKS, DEVICE_TYPES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyruntime.cgroups.detect import CgroupMountSource
    from pyruntime.plan.mounts import MountOp
    from pyruntime.spec.model import Device, Spec
    from pyruntime.syscalls.linux import LinuxSyscalls

ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC = 1, 2, 4, 8
ST_NODIRATIME, ST_NOATIME, ST_RELATIME = 2048, 1024, 4096
_STATVFS_TO_MS = ((ST_RDONLY, m.MS_RDONLY), (ST_NOSUID, m.MS_NOSUID), (ST_NODEV, m.MS_NODEV),
                  (ST_NOEXEC, m.MS_NOEXEC), (ST_NOATIME, m.MS_NOATIME),
                  (ST_NODIRATIME, m.MS_NODIRATIME), (ST_RELATIME, m.MS_RELATIME))

ROOTFS_PROPAGATION = {
    "shared": m.MS_SHARED, "rshared": m.MS_SHARED | m.MS_REC,
    "slave": m.MS_SLAVE, "rslave": m.MS_SLAVE | m.MS_REC,
    "private": m.MS_PRIVATE, "rprivate": m.MS_PRIVATE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE, "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}


class RootfsContext:
    """What the rootfs steps share: the spec, the seam, and facts from the parent."""

    __slots__ = ("spec", "sys", "operations", "in_user_namespace", "new_cgroup_namespace",
                 "hierarchies", "root_fd")

    def __init__(self, spec: Spec, sys: LinuxSyscalls, operations: Sequence[MountOp],
                 in_user_namespace: bool, new_cgroup_namespace: bool,
                 hierarchies: Sequence[CgroupMountSource]) -> None:
        self.spec = spec
        self.sys = sys
        self.operations = operations
        self.in_user_namespace = in_user_namespace
        self.new_cgroup_namespace = new_cgroup_namespace
        self.hierarchies = hierarchies
        self.root_fd = -1


def locked_flags(path: str) -> int:
    """The flags a bind remount must keep (see ``MS_LOCKABLE``)."""
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS if flags & st) & m.MS_LOCKABLE


def remount_bind(sys: LinuxSyscalls, target: str, flags: int, label: str) -> None:
    extra = locked_flags(target) & ~m.MS_RDONLY
    if flags & (m.MS_NOATIME | m.MS_RELATIME | m.MS_STRICTATIME):
        extra &= ~(m.MS_NOATIME | m.MS_RELATIME)
    clean = flags & ~(m.MS_REC | m.MS_REMOUNT | m.MS_BIND)
    sys.mount(None, target, None, m.MS_BIND | m.MS_REMOUNT | clean | extra, None, label)


# --- before pivot_root ----------------------------------------------------------
def make_root_private(context: RootfsContext) -> None:
    """Keep our mounts from reaching the host: ``/`` becomes rslave (or as asked)."""
    wanted = context.spec.linux.rootfs_propagation
    flag = m.MS_PRIVATE | m.MS_REC if wanted in ("private", "rprivate") else m.MS_SLAVE | m.MS_REC
    context.sys.mount(None, "/", None, flag, None, "/")


def bind_rootfs(context: RootfsContext) -> None:
    """pivot_root needs the new root to be a mount point: bind it onto itself."""
    root = context.spec.root_path
    context.sys.mount(root, root, None, m.MS_BIND | m.MS_REC, None, root)
    context.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def mount_all(context: RootfsContext) -> None:
    for operation in context.operations:
        mount_one(context, operation)


def _source_path(context: RootfsContext, operation: MountOp) -> str:
    source = operation.source or ""
    return source if source.startswith("/") else os.path.join(context.spec.bundle, source)


def mount_one(context: RootfsContext, operation: MountOp) -> None:
    sys = context.sys
    label = operation.destination
    if operation.fstype in ("cgroup", "cgroup2"):
        mount_cgroup(context, operation)
        return
    if operation.is_bind:
        source = _source_path(context, operation)
        try:
            source_is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except OSError as exc:
            raise SyscallError("bind mount source", source, exc.errno or 0) from exc
        target_fd = paths.ensure_in_root(sys, context.root_fd, label, source_is_dir)
        try:
            sys.mount(source, paths.fd_path(target_fd), None,
                      m.MS_BIND | (operation.flags & m.MS_REC), None, label)
        finally:
            os.close(target_fd)
    else:
        target_fd = paths.ensure_in_root(sys, context.root_fd, label, True)
        try:
            sys.mount(operation.source or operation.fstype or "none", paths.fd_path(target_fd),
                      operation.fstype, operation.flags, operation.data or None, label)
        finally:
            os.close(target_fd)
    _after_mount(context, operation)


def _after_mount(context: RootfsContext, operation: MountOp) -> None:
    """Remount, propagation and recursive attributes apply to the new mount itself,
    so the destination is resolved again: the old descriptor is below it."""
    if not (operation.needs_remount or operation.propagation or operation.attr_set
            or operation.attr_clr):
        return
    sys = context.sys
    label = operation.destination
    fd = paths.open_in_root(sys, context.root_fd, label)
    try:
        target = paths.fd_path(fd)
        if operation.needs_remount:
            remount_bind(sys, target, operation.flags, label)
        for propagation in operation.propagation:
            sys.mount(None, target, None, propagation, None, label)
        if operation.attr_set or operation.attr_clr:
            sys.mount_setattr(fd, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, operation.attr_set,
                              operation.attr_clr, 0, label)
    finally:
        os.close(fd)


def mount_cgroup(context: RootfsContext, operation: MountOp) -> None:
    """``type: cgroup``: the cgroup tree as this host has it, scoped to the container.

    With a new cgroup namespace (and no user namespace, which may not mount
    cgroup v1) each hierarchy is mounted afresh, showing the namespace's root;
    otherwise our own cgroup folders on the host are bind-mounted.  On a
    v1/hybrid host a tmpfs holds one folder per hierarchy, as on the host.
    """
    sys = context.sys
    label = operation.destination
    flags = operation.flags & ~(m.MS_BIND | m.MS_REC)
    fresh = context.new_cgroup_namespace and not context.in_user_namespace
    unified = [h for h in context.hierarchies if h.name == ""]
    if unified:
        _mount_hierarchy(context, unified[0], label, flags, fresh)
        return
    target_fd = paths.ensure_in_root(sys, context.root_fd, label, True)
    try:
        sys.mount("tmpfs", paths.fd_path(target_fd), "tmpfs",
                  flags & ~m.MS_RDONLY, "mode=755", label)
    finally:
        os.close(target_fd)
    for hierarchy in context.hierarchies:
        _mount_hierarchy(context, hierarchy, f"{label}/{hierarchy.name}", flags, fresh)
    if flags & m.MS_RDONLY:
        fd = paths.open_in_root(sys, context.root_fd, label)
        try:
            sys.mount(None, paths.fd_path(fd), None, m.MS_REMOUNT | flags, "mode=755", label)
        finally:
            os.close(fd)


def _mount_hierarchy(context: RootfsContext, hierarchy: CgroupMountSource, destination: str,
                     flags: int, fresh: bool) -> None:
    sys = context.sys
    fd = paths.ensure_in_root(sys, context.root_fd, destination, True)
    try:
        target = paths.fd_path(fd)
        if fresh:
            sys.mount(hierarchy.fstype, target, hierarchy.fstype, flags,
                      hierarchy.controllers or None, destination)
            return
        sys.mount(hierarchy.host_path, target, None, m.MS_BIND | m.MS_REC, None, destination)
    finally:
        os.close(fd)
    fd = paths.open_in_root(sys, context.root_fd, destination)
    try:
        remount_bind(sys, paths.fd_path(fd), flags, destination)
    finally:
        os.close(fd)


def _dev_is_bind_mounted(context: RootfsContext) -> bool:
    return any(op.destination.rstrip("/") == "/dev" and op.is_bind for op in context.operations)


def create_devices(context: RootfsContext) -> None:
    """The default devices and ``linux.devices``; bind-mounted from the host in a
    user namespace, where mknod(2) is not allowed."""
    if _dev_is_bind_mounted(context):
        return
    for path, major, minor in DEFAULT_DEVICES:
        _create_device(context, path, stat.S_IFCHR, major, minor, 0o666, 0, 0, None)
    for index, device in enumerate(context.spec.linux.devices):
        _create_device(context, device.path, DEVICE_TYPES[device.type], device.major,
                       device.minor, device.file_mode, device.uid, device.gid, (index, device))


def _create_device(context: RootfsContext, path: str, kind: int, major: int, minor: int,
                   mode: int, uid: int, gid: int, configured: tuple[int, Device] | None) -> None:
    sys = context.sys
    parent, name = os.path.split(path)
    parent_fd = paths.ensure_in_root(sys, context.root_fd, parent, True)
    try:
        try:
            existing = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            matches = (stat.S_IFMT(existing.st_mode) == kind
                       and existing.st_rdev == os.makedev(major, minor))
            if not matches and configured is not None:
                raise ConfigError(f"linux.devices[{configured[0]}].path",
                                  f"{path} exists and is not the requested device")
            os.unlink(name, dir_fd=parent_fd)
        if context.in_user_namespace:
            _bind_host_device(context, parent_fd, name, path)
            return
        try:
            os.mknod(name, kind | (mode & 0o7777), os.makedev(major, minor), dir_fd=parent_fd)
            os.chmod(name, mode & 0o7777, dir_fd=parent_fd, follow_symlinks=False)
            os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
        except OSError as exc:
            raise SyscallError("mknod", path, exc.errno or 0) from exc
    finally:
        os.close(parent_fd)


def _bind_host_device(context: RootfsContext, parent_fd: int, name: str, path: str) -> None:
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(name, flags, 0o600, dir_fd=parent_fd))
    target_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        context.sys.mount(path, paths.fd_path(target_fd), None, m.MS_BIND, None, path)
    finally:
        os.close(target_fd)


def create_dev_links(context: RootfsContext) -> None:
    """/dev/fd, /dev/std*, /dev/core, and /dev/ptmx -> pts/ptmx over a devpts."""
    links = list(DEFAULT_LINKS)
    if any(op.destination.rstrip("/") == "/dev/pts" and op.fstype == "devpts"
           for op in context.operations):
        links.append(("/dev/ptmx", "pts/ptmx"))
    dev_fd = paths.ensure_in_root(context.sys, context.root_fd, "/dev", True)
    try:
        for link, target in links:
            name = os.path.basename(link)
            if name == "ptmx":
                try:
                    os.unlink(name, dir_fd=dev_fd)
                except FileNotFoundError:
                    pass
            try:
                os.symlink(target, name, dir_fd=dev_fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise SyscallError("symlink", link, exc.errno or 0) from exc
    finally:
        os.close(dev_fd)


def pivot_root(context: RootfsContext) -> None:
    """runc's way: pivot_root(".", ".") then detach the old root stacked beneath."""
    sys = context.sys
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(context.root_fd)
        sys.pivot_root(".", ".")
        os.fchdir(old_root)
        sys.mount(None, ".", None, m.MS_SLAVE | m.MS_REC, None, "old root")
        sys.umount(".", m.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
    _finish_root(context)


def move_root(context: RootfsContext) -> None:
    """``--no-pivot``: for roots pivot_root cannot use (e.g. on a ramfs)."""
    root = context.spec.root_path
    os.fchdir(context.root_fd)
    context.sys.mount(root, "/", None, m.MS_MOVE, None, root)
    os.chroot(".")
    os.chdir("/")
    _finish_root(context)


def _finish_root(context: RootfsContext) -> None:
    os.close(context.root_fd)
    context.root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    wanted = context.spec.linux.rootfs_propagation
    if wanted and wanted not in ("slave", "rslave"):
        context.sys.mount(None, "/", None, ROOTFS_PROPAGATION[wanted], None, "/")


# --- after pivot_root -----------------------------------------------------------
def _open_existing(context: RootfsContext, path: str) -> int | None:
    try:
        return paths.open_in_root(context.sys, context.root_fd, path)
    except SyscallError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def make_readonly_paths(context: RootfsContext) -> None:
    for path in context.spec.linux.readonly_paths:
        fd = _open_existing(context, path)
        if fd is None:
            continue
        try:
            context.sys.mount(paths.fd_path(fd), paths.fd_path(fd), None,
                              m.MS_BIND | m.MS_REC, None, path)
        finally:
            os.close(fd)
        fd = paths.open_in_root(context.sys, context.root_fd, path)
        try:
            remount_bind(context.sys, paths.fd_path(fd), m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV
                         | m.MS_NOEXEC, path)
        finally:
            os.close(fd)


def mask_paths(context: RootfsContext) -> None:
    """Files get /dev/null bound over them, folders an empty read-only tmpfs.

    The /dev/null used is checked to be the real device (char 1:3), so an
    image cannot turn a mask into a bind of something else (CVE-2025-31133).
    """
    null_fd = paths.open_in_root(context.sys, context.root_fd, "/dev/null")
    try:
        info = os.fstat(null_fd)
        if not stat.S_ISCHR(info.st_mode) or info.st_rdev != os.makedev(1, 3):
            raise SyscallError("mask paths: check", "/dev/null", errno.EPERM)
        for path in context.spec.linux.masked_paths:
            fd = _open_existing(context, path)
            if fd is None:
                continue
            try:
                target = paths.fd_path(fd)
                if paths.is_directory(fd):
                    context.sys.mount("tmpfs", target, "tmpfs", m.MS_RDONLY, None, path)
                else:
                    context.sys.mount(paths.fd_path(null_fd), target, None, m.MS_BIND, None, path)
            finally:
                os.close(fd)
    finally:
        os.close(null_fd)


def make_root_readonly(context: RootfsContext) -> None:
    if context.spec.root_readonly:
        remount_bind(context.sys, "/", m.MS_RDONLY, "/")


def close_root(context: RootfsContext) -> None:
    if context.root_fd >= 0:
        os.close(context.root_fd)
        context.root_fd = -1
