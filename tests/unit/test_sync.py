"""pyruntime.process.sync: the message protocol between create and its children.

Over real pipes, because buffering (several messages per read, a message
split over reads, one bigger than a read) and EOF are what the protocol must
get right; a misread message would leave ``create`` waiting or believing a
failed child.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from pyruntime.errors import ChildError
from pyruntime.process import sync
from pyruntime.process.sync import Channel


@pytest.fixture
def pipe() -> Iterator[tuple[Channel, Channel]]:
    """(reader, writer) over one pipe, closed afterwards."""
    read_fd, write_fd = os.pipe()
    reader, writer = Channel(read_fd=read_fd), Channel(write_fd=write_fd)
    yield reader, writer
    reader.close()
    writer.close()


def test_send_and_receive(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.send(sync.INIT_PID, pid=1234)
    writer.send(sync.READY)
    assert reader.receive() == {"type": "init_pid", "pid": 1234}
    assert reader.expect(sync.READY) == {"type": "ready"}


def test_each_message_is_one_line(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.send(sync.ERROR, stage="mount", message="a\nb")
    writer.close()
    raw = os.read(reader.read_fd, 4096)
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")


def test_eof_is_none(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.send(sync.READY)
    writer.close()
    assert reader.receive() == {"type": "ready"}
    assert reader.receive() is None


def test_eof_in_expect_is_a_child_error(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.close()
    with pytest.raises(ChildError) as caught:
        reader.expect(sync.READY)
    assert caught.value.stage == "sync"
    assert str(caught.value) == "sync: expected ready, but the other side is gone"


def test_error_message_becomes_child_error_with_its_stage(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.send(sync.ERROR, stage="pivot_root", message="pivot_root .: invalid argument")
    with pytest.raises(ChildError) as caught:
        reader.expect(sync.READY)
    assert caught.value.stage == "pivot_root"
    assert str(caught.value) == "pivot_root: pivot_root .: invalid argument"


def test_unexpected_type_is_a_child_error(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.send(sync.USERNS)
    with pytest.raises(ChildError) as caught:
        reader.expect(sync.INIT_PID)
    assert str(caught.value) == "sync: expected init_pid, got userns"


@pytest.mark.parametrize("line", [b'{"type": "bogus"}\n', b"[1, 2]\n", b'{"pid": 3}\n'])
def test_messages_outside_the_protocol(pipe: tuple[Channel, Channel], line: bytes) -> None:
    reader, _ = pipe
    os.write(pipe[1].write_fd, line)
    with pytest.raises(ChildError, match="unexpected message"):
        reader.receive()


def test_malformed_line_is_a_child_error(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    os.write(writer.write_fd, b"{not json\n")
    with pytest.raises(ChildError):
        reader.receive()


def test_send_refuses_unknown_kinds(pipe: tuple[Channel, Channel]) -> None:
    with pytest.raises(AssertionError):
        pipe[1].send("bogus")


def test_several_messages_in_one_read(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    os.write(writer.write_fd, b'{"type":"userns"}\n{"type":"init_pid","pid":7}\n{"type":"ready"}\n')
    received = [reader.receive() for _ in range(3)]
    assert [m["type"] if m else None for m in received] == ["userns", "init_pid", "ready"]


def test_message_split_over_reads(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    os.write(writer.write_fd, b'{"type":"init')
    thread = threading.Timer(0.05, lambda: os.write(writer.write_fd, b'_pid","pid":9}\n'))
    thread.start()
    assert reader.expect(sync.INIT_PID)["pid"] == 9
    thread.join()


def test_partial_line_at_eof_is_eof(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    os.write(writer.write_fd, b'{"type":"ready"')
    writer.close()
    assert reader.receive() is None


def test_long_error_is_cut_to_one_atomic_write(pipe: tuple[Channel, Channel]) -> None:
    """The intermediate and the init share the pipe: a message longer than PIPE_BUF could
    interleave with the other's, so its text is shortened until the line fits."""
    reader, writer = pipe
    message = "x" * 200_000
    writer.send(sync.ERROR, stage="s", message=message)
    with pytest.raises(ChildError) as caught:
        reader.expect(sync.READY)
    text = str(caught.value)
    assert text.startswith("s: xxxx") and text.endswith("...")
    assert len(text) < sync.PIPE_BUF
    assert len(sync.encode_message(sync.ERROR, {"stage": "s", "message": message})) <= sync.PIPE_BUF


def test_close_is_idempotent(pipe: tuple[Channel, Channel]) -> None:
    reader, writer = pipe
    writer.close()
    writer.close()
    assert (writer.read_fd, writer.write_fd) == (-1, -1)


def test_pipe_pair_directions_and_cloexec() -> None:
    parent_reads, child_writes, parent_writes, child_reads = sync.pipe_pair()
    try:
        for channel in (parent_reads, child_writes, parent_writes, child_reads):
            fd = channel.read_fd if channel.read_fd >= 0 else channel.write_fd
            assert not os.get_inheritable(fd)
        child_writes.send(sync.USERNS)
        assert parent_reads.expect(sync.USERNS)["type"] == "userns"
        parent_writes.send(sync.MAPPED)
        assert child_reads.expect(sync.MAPPED)["type"] == "mapped"
    finally:
        for channel in (parent_reads, child_writes, parent_writes, child_reads):
            channel.close()


def test_a_failed_hook_stays_a_hook_error() -> None:
    """The lifecycle answers a failed create hook by running poststop (runtime.md step 12):
    the kind of the child's failure must survive the pipe."""
    from pyruntime.errors import HookError

    hook = sync.error_from({"type": "error", "stage": "createContainer hooks",
                            "message": "createContainer hook /bin/false: exited with status 1",
                            "hook": True})
    other = sync.error_from({"type": "error", "stage": "mount", "message": "mount /x: no"})
    assert isinstance(hook, HookError) and str(hook).startswith("createContainer hooks: ")
    assert isinstance(other, ChildError) and not isinstance(other, HookError)
