"""``events`` on this host's cgroup v1: runc's stats JSON and the OOM event, through the CLI."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error

pytestmark = pytest.mark.root

MiB = 1024 * 1024
LIMIT = 64 * MiB
STATS_KEYS = {"cpu", "memory", "pids", "blkio", "hugetlb"}


def _config(args: list[str]) -> dict[str, Any]:
    return {"linux": {"resources": {"memory": {"limit": LIMIT}, "pids": {"limit": 50}}},
            "process": {"args": args}}


def _big_shm(config: dict[str, Any]) -> None:
    """/dev/shm big enough that the memory limit, not the tmpfs size, stops the writer."""
    for mount in config["mounts"]:
        if mount["destination"] == "/dev/shm":
            mount["options"] = [o for o in mount["options"] if not o.startswith("size=")]
            mount["options"].append("size=512m")


def _started(rt: Runtime, bundles: BundleFactory, cid: str, args: list[str]) -> None:
    rt.create(cid, bundles.make(args, edit=_big_shm, **_config(args))).ok()
    rt.start(cid).ok()


def test_events_stats_prints_one_runc_stats_object(rt: Runtime, bundles: BundleFactory,
                                                   cid: str) -> None:
    _started(rt, bundles, cid, ["sleep", "1000"])
    try:
        result = rt("events", "--stats", cid).ok()
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result
        event = json.loads(lines[0])
        assert set(event) == {"type", "id", "data"} and event["type"] == "stats"
        assert event["id"] == cid
        data = event["data"]
        assert STATS_KEYS <= set(data), data
        assert set(data["cpu"]["usage"]) >= {"total", "percpu", "kernel", "user"}
        assert set(data["cpu"]["throttling"]) == {"periods", "throttledPeriods", "throttledTime"}
        assert set(data["memory"]) >= {"usage", "swap", "kernel", "raw"}
        assert set(data["memory"]["usage"]) == {"limit", "usage", "max", "failcnt"}
        assert data["memory"]["usage"]["limit"] == LIMIT
        assert 0 < data["memory"]["usage"]["usage"] <= LIMIT
        assert data["memory"]["raw"], "memory.stat is in raw"
        assert data["pids"] == {"current": 1, "limit": 50}
        assert data["cpu"]["usage"]["total"] > 0 and data["cpu"]["usage"]["percpu"]
    finally:
        rt.delete(cid, force=True).ok()


def test_events_streams_stats_then_oom_until_the_container_stops(
        rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    # the tmpfs pages head writes are charged to the container; no swap here, so at
    # 64 MiB the OOM killer acts (on head or on the shell: either way an OOM event)
    script = "sleep 1.5; head -c 200m /dev/zero > /dev/shm/x; echo head=$?; exit 0"
    rt.create(cid, bundles.make(["sh", "-c", script], edit=_big_shm,
                                **_config(["sh", "-c", script]))).ok()
    events = subprocess.Popen(rt.argv("events", "--interval", "200ms", cid),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=rt.env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(events.stdout or ()), daemon=True)
    reader.start()
    try:
        time.sleep(0.3)  # events is polling before the container runs
        rt.start(cid).ok()
        events.wait(timeout=40)  # it ends by itself once the container has stopped
        reader.join(5)
        assert events.returncode == 0, events.stderr.read() if events.stderr else ""
        parsed = [json.loads(line) for line in lines]
        kinds = [event["type"] for event in parsed]
        assert "oom" in kinds, kinds
        first_oom = kinds.index("oom")
        assert kinds[:first_oom].count("stats") >= 2, kinds
        assert parsed[first_oom] == {"type": "oom", "id": cid}
        assert all(event["id"] == cid for event in parsed)
        assert all(STATS_KEYS <= set(e["data"]) for e in parsed if e["type"] == "stats")
        assert rt.status(cid) == "stopped"
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
        rt.delete(cid, force=True).ok()


def test_events_of_a_stopped_or_unknown_container(rt: Runtime, bundles: BundleFactory,
                                                  cid: str) -> None:
    assert_one_line_error(rt("events", "--stats", "nosuch-" + cid), "does not exist")
    rt.create(cid, bundles.make(["true"])).ok()
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    try:
        for flags in (["--stats"], ["--interval", "100ms"]):
            assert_one_line_error(rt("events", *flags, cid),
                                  f"container with id {cid} is not running")
        assert_one_line_error(rt("events", "--interval", "0s", cid),
                              "duration interval must be greater than 0")
    finally:
        rt.delete(cid).ok()
