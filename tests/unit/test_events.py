"""``events`` without containers: interval parsing, runc's stats shape from fake
cgroupfs trees (v1 and v2), and the watch loop with a fake clock and counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyruntime import events
from pyruntime.cgroups import CgroupV1, CgroupV2, Hierarchy
from pyruntime.errors import NotFoundError, StateError, UsageError

MiB = 1024 * 1024


@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5.0), ("200ms", 0.2), ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 0.00025),
    ("300µs", 0.0003), ("10ns", 1e-8), ("0", 0.0), ("+2s", 2.0), (".5s", 0.5)])
def test_go_durations(text: str, seconds: float) -> None:
    assert events.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "1x", "1.2.3s", "ms5", "--1s", "1 s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="for flag -interval"):
        events.parse_duration(text)


def test_interval_must_be_positive() -> None:
    assert events.interval_from("") == 5.0  # runc's default
    for text in ("0", "0s", "-1s"):
        with pytest.raises(UsageError, match="duration interval must be greater than 0"):
            events.interval_from(text)


def _files(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def _assert_runc_shape(data: dict[str, Any]) -> None:
    assert set(data) == {"cpu", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                         "network_interfaces"}
    assert set(data["cpu"]["usage"]) == {"total", "percpu", "percpu_kernel", "percpu_user",
                                         "kernel", "user"}
    assert set(data["cpu"]["throttling"]) == {"periods", "throttledPeriods", "throttledTime"}
    assert set(data["memory"]) == {"cache", "usage", "swap", "kernel", "kernelTCP", "raw"}
    for entry in ("usage", "swap", "kernel", "kernelTCP"):
        assert set(data["memory"][entry]) == {"limit", "usage", "max", "failcnt"}
    assert set(data["pids"]) == {"current", "limit"}
    assert set(data["blkio"]) == set(events.BLKIO_KEYS)


def test_v1_stats_shape(tmp_path: Path) -> None:
    _files(tmp_path / "memory" / "c", {
        "memory.usage_in_bytes": "100\n", "memory.limit_in_bytes": f"{64 * MiB}\n",
        "memory.max_usage_in_bytes": "150\n", "memory.failcnt": "3\n",
        "memory.memsw.usage_in_bytes": "110\n", "memory.memsw.limit_in_bytes": "999\n",
        "memory.kmem.usage_in_bytes": "7\n", "memory.stat": "total_cache 4\nrss 5\ncache 9\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"})
    _files(tmp_path / "cpu,cpuacct" / "c", {
        "cpuacct.usage": "1000\n", "cpuacct.usage_percpu": "600 400 \n",
        "cpuacct.usage_all": "cpu user system\n0 500 100\n1 300 100\n",
        "cpuacct.stat": "user 2\nsystem 1\n",
        "cpu.stat": "nr_periods 4\nnr_throttled 1\nthrottled_time 77\n"})
    _files(tmp_path / "pids" / "c", {"pids.current": "2\n", "pids.max": "max\n"})
    _files(tmp_path / "hugetlb" / "c", {"hugetlb.2MB.usage_in_bytes": "0\n",
                                        "hugetlb.2MB.max_usage_in_bytes": "0\n",
                                        "hugetlb.2MB.failcnt": "1\n"})
    _files(tmp_path / "blkio" / "c", {
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 5\n8:0 Write 6\nTotal 11\n",
        "blkio.throttle.io_serviced_recursive": "8:0 Read 1\nTotal 1\n"})
    manager = CgroupV1(str(tmp_path), [
        Hierarchy("memory", ("memory",), "c"), Hierarchy("cpu,cpuacct", ("cpu", "cpuacct"), "c"),
        Hierarchy("pids", ("pids",), "c"), Hierarchy("hugetlb", ("hugetlb",), "c"),
        Hierarchy("blkio", ("blkio",), "c")])
    data = events.collect(manager)
    _assert_runc_shape(data)
    tick = 10**9 // 100
    assert data["cpu"]["usage"] == {"total": 1000, "percpu": [600, 400],
                                    "percpu_user": [500, 300], "percpu_kernel": [100, 100],
                                    "user": 2 * tick, "kernel": tick}
    assert data["cpu"]["throttling"] == {"periods": 4, "throttledPeriods": 1,
                                         "throttledTime": 77}
    assert data["memory"]["usage"] == {"limit": 64 * MiB, "usage": 100, "max": 150,
                                       "failcnt": 3}
    assert data["memory"]["swap"] == {"limit": 999, "usage": 110, "max": 0, "failcnt": 0}
    assert data["memory"]["kernel"]["usage"] == 7
    assert data["memory"]["cache"] == 4 and list(data["memory"]["raw"]) == ["cache", "rss",
                                                                            "total_cache"]
    assert data["pids"] == {"current": 2, "limit": 0}
    assert data["hugetlb"] == {"2MB": {"usage": 0, "max": 0, "failcnt": 1}}
    assert data["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 5},
        {"major": 8, "minor": 0, "op": "Write", "value": 6}]
    assert events.oom_counters(manager) == (2, 0)


def test_v2_stats_shape(tmp_path: Path) -> None:
    _files(tmp_path / "c", {
        "memory.current": "4096\n", "memory.max": f"{64 * MiB}\n", "memory.peak": "8192\n",
        "memory.swap.current": "10\n", "memory.swap.max": "max\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        "memory.stat": "file 12\nanon 34\n", "pids.current": "2\n", "pids.max": "max\n",
        "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
        "hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 4\n",
        "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n"})
    manager = CgroupV2(str(tmp_path), "c")
    data = events.collect(manager)
    _assert_runc_shape(data)
    assert data["memory"]["usage"] == {"limit": 64 * MiB, "usage": 4096, "max": 8192,
                                       "failcnt": 3}
    # runc's v1-compatible swap: memory plus swap; "max" stays the unlimited value
    assert data["memory"]["swap"] == {"limit": 2**64 - 1, "usage": 4106, "max": 0, "failcnt": 0}
    assert data["memory"]["cache"] == 12 and data["memory"]["raw"] == {"anon": 34, "file": 12}
    assert data["pids"] == {"current": 2, "limit": 0}
    assert data["cpu"]["usage"]["total"] == 5000 and data["cpu"]["usage"]["percpu"] == []
    assert data["hugetlb"] == {"2MB": {"usage": 0, "max": 0, "failcnt": 4}}
    assert data["blkio"]["ioServicedRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 1},
        {"major": 8, "minor": 0, "op": "Write", "value": 2}]
    assert events.oom_counters(manager) == (1, 1)


def test_v2_swap_limit_adds_the_memory_limit(tmp_path: Path) -> None:
    _files(tmp_path / "c", {"memory.current": "1\n", "memory.max": "100\n",
                            "memory.swap.current": "2\n", "memory.swap.max": "50\n"})
    swap = events.collect(CgroupV2(str(tmp_path), "c"))["memory"]["swap"]
    assert swap["limit"] == 150 and swap["usage"] == 3


def test_empty_folders_still_give_the_whole_shape(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    _assert_runc_shape(events.collect(CgroupV2(str(tmp_path), "c")))
    _assert_runc_shape(events.collect(CgroupV1(str(tmp_path), [])))


# --- the loop ------------------------------------------------------------------------------
class FakeRecord:
    def __init__(self, cgroup: dict[str, Any] | None) -> None:
        self.pid, self.start_time, self.cgroup = 42, 7, cgroup


class FakeProcFS:
    def __init__(self, alive_for: int) -> None:
        self.alive_for = alive_for

    def is_alive(self, pid: int, start_time: int) -> bool:
        self.alive_for -= 1
        return self.alive_for >= 0


class FakeRuntime:
    def __init__(self, status: str, cgroup: dict[str, Any] | None, alive_for: int = 0) -> None:
        self.status, self.record = status, FakeRecord(cgroup)
        self.procfs = FakeProcFS(alive_for)

    def status_of(self, container_id: str) -> tuple[FakeRecord, str]:
        if container_id != "box":
            raise NotFoundError(container_id)
        return self.record, self.status


def test_watch_emits_stats_each_interval_and_oom_when_a_counter_grows(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _files(folder, {"memory.events": "oom 0\noom_kill 0\n", "memory.max": "100\n"})
    runtime = FakeRuntime("running", CgroupV2(str(tmp_path), "c").to_json(), alive_for=30)
    now = [0.0]
    emitted: list[dict[str, Any]] = []

    def sleep(seconds: float) -> None:
        now[0] += max(seconds, 0.05)
        if now[0] >= 1.2:  # after the stats at 0.5 and 1.0; the counters only grow
            (folder / "memory.events").write_text("oom 1\noom_kill 1\n")

    events.watch(runtime, "box", 0.5, emitted.append, poll=0.1,  # type: ignore[arg-type]
                 clock=lambda: now[0], sleep=sleep)
    kinds = [event["type"] for event in emitted]
    assert kinds.count("oom") == 1 and kinds.index("oom") >= 2, kinds
    assert kinds.count("stats") >= 4, kinds
    assert emitted[kinds.index("oom")] == {"type": "oom", "id": "box"}
    assert emitted[0]["data"]["memory"]["usage"]["limit"] == 100


def test_watch_reports_an_oom_that_killed_the_init(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    _files(folder, {"memory.events": "oom_kill 0\n"})
    runtime = FakeRuntime("running", CgroupV2(str(tmp_path), "c").to_json(), alive_for=0)
    emitted: list[dict[str, Any]] = []
    original = events.oom_counters
    calls = iter([(0, 0), (0, 1)])
    events_module: Any = events
    events_module.oom_counters = lambda manager: next(calls)
    try:
        events.watch(runtime, "box", 5, emitted.append)  # type: ignore[arg-type]
    finally:
        events_module.oom_counters = original
    assert emitted == [{"type": "oom", "id": "box"}]


def test_stopped_unknown_and_cgroupless_containers() -> None:
    with pytest.raises(StateError, match="container with id box is not running"):
        events.stats_event(FakeRuntime("stopped", {}), "box")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="does not exist"):
        events.stats_event(FakeRuntime("running", {}), "other")  # type: ignore[arg-type]
    with pytest.raises(StateError, match="no cgroup"):
        events.stats_event(FakeRuntime("running", None), "box")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="greater than 0"):
        events.watch(FakeRuntime("running", {}), "box", 0, print)  # type: ignore[arg-type]
