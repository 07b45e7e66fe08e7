"""pyruntime.state: container state under --root.

The state store is what every engine call reads: the transition table must
give runc's answers (engines match on some of the wording), ids must never
escape the root, state.json must never be seen half-written, and the status
reported must be what is true now (a dead or replaced init is ``stopped``).
"""

from __future__ import annotations

import datetime
import fcntl
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from unit_helpers import FakeProc
from pyruntime import jsonio, state
from pyruntime.errors import NotFoundError, PyRuntimeError, StateError
from pyruntime.procfs import ProcFS
from pyruntime.state import (CREATED, CREATING, PAUSED, RUNNING, STATUSES, STOPPED, State,
                             StateStore)

# --- the transition table, written out independently of state.TRANSITIONS -------------
ALLOWED = object()
# operation -> status -> ALLOWED (status unchanged), a new status, or runc's refusal
EXPECTED: dict[str, dict[str, object]] = {
    "start": {
        CREATED: RUNNING,
        RUNNING: "cannot start an already running container",
        STOPPED: "cannot start a container that has stopped",
        # runc start.go: `default: fmt.Errorf("cannot start a container in the %s state")`
        PAUSED: "cannot start a container in the paused state",
        CREATING: "cannot start a container in the creating state",
    },
    "kill": {CREATED: ALLOWED, RUNNING: ALLOWED, PAUSED: ALLOWED,
             STOPPED: "container not running", CREATING: "container not running"},
    # runc delete.go: `case libcontainer.Created: return killContainer(container)`:
    # a created container is killed and deleted without --force.
    "delete": {STOPPED: ALLOWED, CREATED: ALLOWED,
               RUNNING: "cannot delete container c1 that is not stopped: running",
               PAUSED: "cannot delete container c1 that is not stopped: paused",
               CREATING: "cannot delete container c1 that is not stopped: creating"},
    "delete --force": {status: ALLOWED for status in STATUSES},
    "state": {status: ALLOWED for status in STATUSES},
    "pause": {RUNNING: PAUSED, PAUSED: "container already paused",
              CREATED: "container not running", CREATING: "container not running",
              STOPPED: "container not running"},
    "resume": {PAUSED: RUNNING, RUNNING: "container not paused", CREATED: "container not paused",
               CREATING: "container not paused", STOPPED: "container not paused"},
}
KNOWN_DEVIATIONS: dict[tuple[str, str], str] = {}


def test_expected_table_covers_every_operation_and_status() -> None:
    assert set(EXPECTED) == set(state.TRANSITIONS)
    assert all(set(row) == set(STATUSES) for row in EXPECTED.values())


def _cases() -> list[object]:
    cases: list[object] = []
    for operation, row in EXPECTED.items():
        for status, expected in row.items():
            marks = []
            if (operation, status) in KNOWN_DEVIATIONS:
                marks.append(pytest.mark.xfail(reason=KNOWN_DEVIATIONS[operation, status],
                                               strict=True))
            cases.append(pytest.param(operation, status, expected, marks=marks,
                                      id=f"{operation}-{status}"))
    return cases


@pytest.mark.parametrize(("operation", "status", "expected"), _cases())
def test_transition(operation: str, status: str, expected: object) -> None:
    if expected is ALLOWED:
        assert state.check_transition(operation, "c1", status) == status
    elif expected in STATUSES:
        assert state.check_transition(operation, "c1", status) == expected
    else:
        with pytest.raises(StateError) as caught:
            state.check_transition(operation, "c1", status)
        assert str(caught.value) == expected


# --- ids --------------------------------------------------------------------------------
@pytest.mark.parametrize("container_id", [
    "a", "Z", "0", "abc-DEF_123+x.y", "..a", ".a", "a..", "x" * state.MAX_ID_LENGTH])
def test_valid_ids(container_id: str) -> None:
    state.check_id(container_id)


@pytest.mark.parametrize("container_id", [
    "", ".", "..", "a/b", "/a", "../a", "a\0b", "a\nb", "a b", " a", "x" * (state.MAX_ID_LENGTH + 1),
    "é", "caf\u00e9", "\u0430", "a\\b", "a:b", "a*",
])
def test_invalid_ids(container_id: str) -> None:
    with pytest.raises(PyRuntimeError) as caught:
        state.check_id(container_id)
    assert str(caught.value) == f"invalid container id format: {container_id!r}"


def test_rfc3339_now() -> None:
    before = time.time()
    text = state.rfc3339_now()
    after = time.time()
    assert len(text) == len("2026-12-04T03:01:02.123456789Z")
    parsed = datetime.datetime.strptime(text[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ")
    seconds = parsed.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert before - 1e-6 <= seconds <= after + 1e-6
    assert text[19] == "." and text[-1] == "Z" and text[20:29].isdigit()


# --- State ------------------------------------------------------------------------------
def _record(**changes: object) -> State:
    record = State("c1", CREATED, "/b", "/b/rootfs", {"k": "v"}, pid=42, start_time=1000,
                   created="2026-01-01T00:00:00.000000000Z", owner=0)
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_state_json_round_trip() -> None:
    record = _record()
    again = State.from_json(jsonio.loads(jsonio.dumps(record.to_json())))
    assert again.to_json() == record.to_json()


def test_state_json_missing_field_is_a_clear_error() -> None:
    raw = _record().to_json()
    del raw["pid"]
    with pytest.raises(PyRuntimeError, match=r"^state.json: 'pid'$"):
        State.from_json(raw)


@pytest.mark.parametrize(("status", "pid"), [(CREATED, 42), (RUNNING, 42), (PAUSED, 42),
                                             (STOPPED, 0), (CREATING, 0)])
def test_oci_state_pid_only_while_it_means_something(status: str, pid: int) -> None:
    result = _record().oci_state(status, "1.3.0")
    assert list(result)[:4] == ["ociVersion", "id", "pid", "status"]
    assert (result["pid"], result["status"], result["owner"]) == (pid, status, "root")
    assert result["annotations"] == {"k": "v"}
    assert "annotations" not in _record(annotations={}).oci_state(status, "1.3.0")


# --- StateStore ---------------------------------------------------------------------------
def _locked_elsewhere(path: str) -> bool:
    """True if another open file description holds a lock on ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_claim_makes_a_private_locked_folder(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "root"))
    folder = store.claim("c1")
    try:
        assert folder.path == str(tmp_path / "root" / "c1")
        assert stat.S_IMODE(os.stat(tmp_path / "root").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(folder.path).st_mode) == 0o700
        assert _locked_elsewhere(folder.path)
        assert not os.get_inheritable(folder.fd)
    finally:
        folder.close()
    assert not _locked_elsewhere(folder.path)
    assert folder.fd == -1


def test_duplicate_claim(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.claim("c1").close()
    with pytest.raises(PyRuntimeError) as caught:
        store.claim("c1")
    assert str(caught.value) == "container with id c1 already exists"


def test_claim_checks_the_id_before_touching_the_disk(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "root"))
    with pytest.raises(PyRuntimeError, match="invalid container id"):
        store.claim("../escape")
    assert not (tmp_path / "root").exists()
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("make", ["nothing", "file", "symlink"])
def test_open_of_something_that_is_not_a_container(tmp_path: Path, make: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    if make == "file":
        (tmp_path / "c1").write_text("")
    elif make == "symlink":
        (tmp_path / "c1").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(NotFoundError) as caught:
        StateStore(str(tmp_path)).open("c1")
    assert str(caught.value) == "container c1 does not exist"
    assert caught.value.container_id == "c1"


def test_open_locks_exclusive_or_shared(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.claim("c1").close()
    exclusive = store.open("c1")
    assert _locked_elsewhere(exclusive.path)
    exclusive.close()
    first = store.open("c1", shared=True)
    second = store.open("c1", shared=True, wait=False)  # shared locks coexist
    try:
        assert not store.is_locked_by_other(second)
    finally:
        first.close()
        second.close()


def test_open_without_waiting_returns_an_unlocked_folder(tmp_path: Path) -> None:
    """``state`` must answer while a ``create`` holds the lock."""
    store = StateStore(str(tmp_path))
    creating = store.claim("c1")
    try:
        started = time.monotonic()
        folder = store.open("c1", shared=True, wait=False)
        assert time.monotonic() - started < 1
        assert store.is_locked_by_other(folder)
        folder.close()
    finally:
        creating.close()


def test_open_that_waited_for_a_delete_finds_nothing(tmp_path: Path) -> None:
    """A command queued behind ``delete`` must not act on the removed folder."""
    store = StateStore(str(tmp_path))
    deleting = store.claim("c1")
    outcome: list[BaseException | None] = []

    def waiter() -> None:
        try:
            store.open("c1").close()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            outcome.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.1)  # let it block on the lock
    assert outcome == []
    deleting.remove()
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], NotFoundError)


def test_ids_lists_only_container_folders(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "root"))
    assert store.ids() == []
    for name in ("b", "a", "c"):
        store.claim(name).close()
    (tmp_path / "root" / "file").write_text("")
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    assert store.ids() == ["a", "b", "c"]


def test_write_state_is_atomic_and_private(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    folder = store.claim("c1")
    try:
        folder.write_state(_record(status=CREATING))
        folder.write_state(_record(status=CREATED))
        assert sorted(os.listdir(folder.path)) == ["state.json"]
        assert stat.S_IMODE(os.stat(os.path.join(folder.path, "state.json")).st_mode) == 0o600
        assert folder.read_state().status == CREATED
    finally:
        folder.close()


def test_failed_write_leaves_the_old_state_whole(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = StateStore(str(tmp_path)).claim("c1")
    try:
        folder.write_state(_record(status=CREATED))
        before = Path(folder.path, "state.json").read_bytes()

        def broken_rename(src: str, dst: str) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "rename", broken_rename)
        with pytest.raises(OSError):
            folder.write_state(_record(status=RUNNING))
        monkeypatch.undo()
        assert Path(folder.path, "state.json").read_bytes() == before
    finally:
        folder.close()


def test_short_write_never_becomes_state_json(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A short write (ENOSPC mid-way, a signal) must not be renamed into place."""
    folder = StateStore(str(tmp_path)).claim("c1")
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data)[: max(1, len(data) // 2)])

    try:
        monkeypatch.setattr(os, "write", short_write)
        try:
            folder.write_state(_record())
        except OSError:
            pass
        monkeypatch.undo()
        path = Path(folder.path, "state.json")
        if path.exists():
            jsonio.loads(path.read_bytes())  # whole, or not there at all
    finally:
        monkeypatch.undo()
        folder.close()


def test_read_state_errors(tmp_path: Path) -> None:
    folder = StateStore(str(tmp_path)).claim("c1")
    try:
        with pytest.raises(NotFoundError):
            folder.read_state()
        Path(folder.path, "state.json").write_text("{half")
        with pytest.raises(PyRuntimeError, match=r"^read state of c1: "):
            folder.read_state()
        Path(folder.path, "state.json").write_text("[]")
        with pytest.raises(PyRuntimeError, match="not an object"):
            folder.read_state()
    finally:
        folder.close()


def test_remove_deletes_everything_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    folder = StateStore(str(tmp_path / "root")).claim("c1")
    Path(folder.path, "sub").mkdir()
    Path(folder.path, "sub", "f").write_text("")
    Path(folder.path, "link").symlink_to(outside)
    folder.remove()
    assert not os.path.exists(folder.path)
    assert (outside / "keep").exists()
    assert folder.fd == -1


# --- current_status ---------------------------------------------------------------------
PROCESS_CONDITIONS = ("alive", "dead", "zombie", "dead-x", "reused")


def _status_case(fake_proc: FakeProc, tmp_path: Path, stored: str, condition: str,
                 fifo: bool, locked: bool) -> str:
    if condition == "alive":
        fake_proc.add(42, start_time=1000)
    elif condition == "zombie":
        fake_proc.add(42, state="Z", start_time=1000)
    elif condition == "dead-x":
        fake_proc.add(42, state="X", start_time=1000)
    elif condition == "reused":
        fake_proc.add(42, start_time=2000)
    store = StateStore(str(tmp_path / "root"), ProcFS(str(fake_proc.root)))
    folder = store.claim("c1")
    try:
        if fifo:
            os.mkfifo(folder.fifo_path)
        return store.current_status(folder, _record(status=stored), locked)
    finally:
        folder.close()


def _expected_status(stored: str, condition: str, fifo: bool, locked: bool) -> str:
    if stored == CREATING:
        return STOPPED if locked else CREATING  # our lock: the create that held it died
    if stored == STOPPED or condition != "alive":
        return STOPPED
    if stored == CREATED and not fifo:
        return RUNNING  # started by someone who died before recording it
    return stored


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked"])
@pytest.mark.parametrize("fifo", [True, False], ids=["fifo", "nofifo"])
@pytest.mark.parametrize("condition", PROCESS_CONDITIONS)
@pytest.mark.parametrize("stored", STATUSES)
def test_current_status(fake_proc: FakeProc, tmp_path: Path, stored: str, condition: str,
                        fifo: bool, locked: bool) -> None:
    assert (_status_case(fake_proc, tmp_path, stored, condition, fifo, locked)
            == _expected_status(stored, condition, fifo, locked))


def test_current_status_with_pid_zero_is_stopped(fake_proc: FakeProc, tmp_path: Path) -> None:
    fake_proc.add(0)
    store = StateStore(str(tmp_path / "root"), ProcFS(str(fake_proc.root)))
    folder = store.claim("c1")
    try:
        assert store.current_status(folder, _record(pid=0, status=RUNNING), True) == STOPPED
    finally:
        folder.close()
