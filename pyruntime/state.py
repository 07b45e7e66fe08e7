"""Container state under ``--root``: one folder per id, a lock, an atomic state.json.

Layout (the folder and everything in it is mode 0700/0600, root only)::

    ROOT/ID/             flock(2)ed by every command that reads or changes ID
    ROOT/ID/state.json   written to state.json.tmp, fsync'ed, renamed into place
    ROOT/ID/exec.fifo    exists while the container waits for ``start``

The status on disk is what pyruntime last did; the status reported is what is
true now: a container whose init died (or whose pid was reused: the start
time no longer matches) is ``stopped``, and a ``creating`` left by a create
that died is ``stopped`` too (a live create would still hold the lock).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from pyruntime import jsonio
from pyruntime.errors import NotFoundError, PyRuntimeError, StateError, SyscallError
from pyruntime.procfs import ProcFS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"
STATUSES = (CREATING, CREATED, RUNNING, PAUSED, STOPPED)

# operation -> statuses it accepts, and the status it leaves (None: unchanged)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "start": (frozenset({CREATED}), RUNNING),
    "kill": (frozenset({CREATED, RUNNING, PAUSED}), None),
    # runc (and containerd's shim, which deletes without --force) also deletes a
    # created container; the spec asks for an error: a documented deviation
    "delete": (frozenset({CREATED, STOPPED}), None),
    "delete --force": (frozenset({CREATING, CREATED, RUNNING, PAUSED, STOPPED}), None),
    "state": (frozenset(STATUSES), None),
    "pause": (frozenset({RUNNING}), PAUSED),
    "resume": (frozenset({PAUSED}), RUNNING),
}

# (operation, status) -> runc's wording, for the refusals engines look at
_REFUSALS = {
    ("start", RUNNING): "cannot start an already running container",
    ("start", STOPPED): "cannot start a container that has stopped",
    ("start", PAUSED): "cannot start a container in the paused state",
    ("start", CREATING): "cannot start a container in the creating state",
    ("kill", STOPPED): "container not running",
    ("kill", CREATING): "container not running",
    **{("pause", status): "container not running" for status in (CREATING, CREATED, STOPPED)},
    ("pause", PAUSED): "container already paused",
    **{("resume", status): "container not paused" for status in (CREATING, CREATED, RUNNING,
                                                                 STOPPED)},
}

MAX_ID_LENGTH = 1024
STATE_FILE = "state.json"
FIFO_FILE = "exec.fifo"
STATUS_FILE = "exec.status"


def check_transition(operation: str, container_id: str, status: str) -> str:
    """The status after ``operation``, or StateError in runc's words."""
    allowed, after = TRANSITIONS[operation]
    if status not in allowed:
        message = _REFUSALS.get((operation, status))
        if message is None:
            message = f"cannot delete container {container_id} that is not stopped: {status}"
        raise StateError(message)
    return after or status


def check_id(container_id: str) -> None:
    """runc's rule: letters, digits, and ``_+-.``, not ``.``/``..``, bounded length."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
    if (not container_id or len(container_id) > MAX_ID_LENGTH or container_id in (".", "..")
            or not set(container_id) <= allowed):
        raise PyRuntimeError(f"invalid container id format: {container_id!r}")


def rfc3339_now() -> str:
    """``2026-12-04T03:01:02.123456789Z``, as runc writes ``created`` (UTC, nanoseconds)."""
    now = time.time_ns()
    seconds, nanos = divmod(now, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class State:
    """What state.json holds: the OCI state fields and what we need to act later."""

    __slots__ = ("id", "status", "pid", "start_time", "bundle", "rootfs", "created",
                 "annotations", "owner", "config", "cgroup")

    def __init__(self, container_id: str, status: str, bundle: str, rootfs: str,
                 annotations: dict[str, str], pid: int = 0, start_time: int = 0,
                 created: str = "", owner: int = 0, config: dict[str, Any] | None = None
                 ) -> None:
        self.id = container_id
        self.status = status
        self.pid = pid
        self.start_time = start_time
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created or rfc3339_now()
        self.annotations = annotations
        self.owner = owner
        # config.json as it was at create: later edits of the bundle must not count
        # (its hooks for start and delete, its process for exec)
        self.config: dict[str, Any] = config or {}
        self.cgroup: dict[str, Any] | None = None  # the cgroup driver, as cgroups.from_json reads it

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status, "pid": self.pid,
                "startTime": self.start_time, "bundle": self.bundle, "rootfs": self.rootfs,
                "created": self.created, "annotations": self.annotations, "owner": self.owner,
                "config": self.config, "cgroup": self.cgroup}

    @property
    def hooks(self) -> dict[str, Any] | None:
        hooks = self.config.get("hooks")
        return hooks if isinstance(hooks, dict) else None

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> State:
        try:
            record = cls(str(raw["id"]), str(raw["status"]), str(raw["bundle"]),
                       str(raw["rootfs"]), dict(raw.get("annotations") or {}),  # type: ignore[call-overload]
                       int(raw["pid"]), int(raw["startTime"]),  # type: ignore[call-overload]
                       str(raw["created"]), int(raw["owner"]),  # type: ignore[call-overload]
                       raw.get("config") if isinstance(raw.get("config"), dict) else None)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise PyRuntimeError(f"state.json: {exc}") from exc
        cgroup = raw.get("cgroup")
        record.cgroup = cgroup if isinstance(cgroup, dict) else None
        return record

    def hook_state(self, status: str, oci_version: str) -> dict[str, object]:
        """The state hooks get on stdin: the spec's fields only."""
        result: dict[str, object] = {"ociVersion": oci_version, "id": self.id, "status": status,
                                     "pid": self.pid, "bundle": self.bundle}
        if self.annotations:
            result["annotations"] = self.annotations
        return result

    def oci_state(self, status: str, oci_version: str) -> dict[str, object]:
        """The state the spec defines (runtime.md "State"), in runc's field order."""
        result: dict[str, object] = {
            "ociVersion": oci_version, "id": self.id,
            "pid": self.pid if status in (CREATED, RUNNING, PAUSED) else 0,
            "status": status, "bundle": self.bundle, "rootfs": self.rootfs,
            "created": self.created, "owner": _user_name(self.owner)}
        if self.annotations:
            result["annotations"] = self.annotations
        return result


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class ContainerDir:
    """One container's folder, held open and locked for the life of a command."""

    __slots__ = ("id", "path", "fd")

    def __init__(self, container_id: str, path: str, fd: int) -> None:
        self.id = container_id
        self.path = path
        self.fd = fd

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.path, FIFO_FILE)

    @property
    def status_path(self) -> str:
        return os.path.join(self.path, STATUS_FILE)

    def has_state(self) -> bool:
        return os.path.exists(os.path.join(self.path, STATE_FILE))

    def read_state(self) -> State:
        try:
            raw = jsonio.load_file(os.path.join(self.path, STATE_FILE))
        except FileNotFoundError as exc:
            raise NotFoundError(self.id) from exc
        except (OSError, jsonio.JSONError) as exc:
            raise PyRuntimeError(f"read state of {self.id}: {exc}") from exc
        if not isinstance(raw, dict):
            raise PyRuntimeError(f"read state of {self.id}: not an object")
        return State.from_json(raw)

    def write_state(self, state: State) -> None:
        """Atomically: readers see the old file or the new one, never half of one."""
        final = os.path.join(self.path, STATE_FILE)
        temporary = final + ".tmp"
        write_file_atomically(temporary, final, jsonio.dumps(state.to_json()))

    def remove(self) -> None:
        remove_tree(self.path)
        os.close(self.fd)
        self.fd = -1

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def write_file_atomically(temporary: str, final: str, text: str, mode: int = 0o600) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temporary, flags, mode)
    try:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, final)


def remove_tree(path: str) -> None:
    """``shutil.rmtree`` without the import; never follows symlinks."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class StateStore:
    """All containers under one ``--root``."""

    __slots__ = ("root", "procfs")

    def __init__(self, root: str, procfs: ProcFS | None = None) -> None:
        self.root = root
        self.procfs = procfs or ProcFS()

    def _ensure_root(self) -> None:
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise SyscallError("mkdir", self.root, exc.errno or 0) from exc

    def claim(self, container_id: str) -> ContainerDir:
        """Make and lock the folder of a new container; fail if the id is taken."""
        check_id(container_id)
        self._ensure_root()
        path = os.path.join(self.root, container_id)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError as exc:
            raise PyRuntimeError(f"container with id {container_id} already exists") from exc
        except OSError as exc:
            raise SyscallError("mkdir", path, exc.errno or 0) from exc
        folder = ContainerDir(container_id, path, os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        fcntl.flock(folder.fd, fcntl.LOCK_EX)
        return folder

    def open(self, container_id: str, shared: bool = False, wait: bool = True) -> ContainerDir:
        """Lock an existing container's folder; NotFoundError if there is none.

        With ``wait=False`` a folder locked by someone else is returned unlocked
        (``state`` must not block behind a ``create`` in progress).
        """
        check_id(container_id)
        path = os.path.join(self.root, container_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(container_id) from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotFoundError(container_id) from exc
            raise SyscallError("open", path, exc.errno or 0) from exc
        operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            return ContainerDir(container_id, path, fd)
        if os.fstat(fd).st_nlink == 0:  # deleted while we waited for the lock
            os.close(fd)
            raise NotFoundError(container_id)
        return ContainerDir(container_id, path, fd)

    def is_locked_by_other(self, folder: ContainerDir) -> bool:
        try:
            fcntl.flock(folder.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False

    def ids(self) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self.root)
                          if entry.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def current_status(self, folder: ContainerDir, state: State, locked: bool) -> str:
        """What is true now, whatever state.json last said."""
        if state.status == CREATING:
            return CREATING if not locked else STOPPED
        if state.status == STOPPED or not self.procfs.is_alive(state.pid, state.start_time):
            return STOPPED
        if state.status == CREATED and not os.path.exists(folder.fifo_path):
            return RUNNING
        return state.status
