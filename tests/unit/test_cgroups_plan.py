"""linux.resources -> cgroup v1/v2 file writes: exact strings, runc's formulas, errors."""

from __future__ import annotations

from typing import Any

import pytest

from pyruntime.errors import ConfigError
from pyruntime.plan import cgroups as plan


def _error(call: Any, *args: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args)
    return info.value


# --- formulas -----------------------------------------------------------------------
@pytest.mark.parametrize(("shares", "weight"), [
    (0, 0), (2, 1), (1024, 39), (262144, 10000), (262143, 9999)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert plan.shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(0, 0), (10, 1), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(blkio: int, io: int) -> None:
    assert plan.blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize(("swap", "limit", "v2"), [
    (0, -1, -1), (-1, 100, -1), (0, 100, 0), (300, 100, 200), (100, 100, 0)])
def test_swap_to_v2(swap: int, limit: int, v2: int) -> None:
    assert plan.swap_to_v2(swap, limit) == v2


# --- v2 -----------------------------------------------------------------------------
def test_v2_memory() -> None:
    assert plan.v2_files({"memory": {"limit": 1000, "reservation": 500, "swap": 3000}}) == {
        "memory.swap.max": "2000", "memory.max": "1000", "memory.low": "500"}
    assert plan.v2_files({"memory": {"limit": -1}}) == {"memory.swap.max": "max",
                                                         "memory.max": "max"}
    assert plan.v2_files({"memory": {"limit": 100, "swap": 100}}) == {
        "memory.swap.max": "0", "memory.max": "100"}
    assert plan.v2_files({"memory": {"limit": 100, "swap": -1}}) == {
        "memory.swap.max": "max", "memory.max": "100"}
    assert plan.v2_files({"memory": {"limit": 100}}) == {"memory.max": "100"}
    assert plan.v2_files({"memory": {"limit": 0, "kernel": 5, "kernelTCP": 5,
                                     "disableOOMKiller": False}}) == {}


def test_v2_cpu() -> None:
    files = plan.v2_files({"cpu": {"shares": 1024, "quota": 50000, "period": 200000,
                                   "burst": 1000, "cpus": "0-1", "mems": "0", "idle": 1}})
    assert files == {"cpu.idle": "1", "cpu.weight": "39", "cpu.max": "50000 200000",
                     "cpu.max.burst": "1000", "cpuset.cpus": "0-1", "cpuset.mems": "0"}
    assert plan.v2_files({"cpu": {"quota": -1}}) == {"cpu.max": "max 100000"}
    assert plan.v2_files({"cpu": {"period": 50000}}) == {"cpu.max": "max 50000"}
    assert plan.v2_files({"cpu": {"quota": 20000}}) == {"cpu.max": "20000 100000"}
    assert plan.v2_files({"cpu": {"shares": 2}}) == {"cpu.weight": "1"}
    assert plan.v2_files({"cpu": {"shares": 262144}}) == {"cpu.weight": "10000"}


@pytest.mark.parametrize(("limit", "value"), [(-1, "max"), (-5, "max"), (0, "0"), (20, "20")])
def test_pids_max(limit: int, value: str) -> None:
    assert plan.v2_files({"pids": {"limit": limit}}) == {"pids.max": value}
    assert plan.v1_files({"pids": {"limit": limit}}) == {"pids": {"pids.max": value}}


def test_v2_io() -> None:
    files = plan.v2_files({"blockIO": {
        "weight": 500,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 700}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 10}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 20}]}})
    assert files == {
        "io.bfq.weight": "500", "io.weight": "4950", "io.bfq.weight_device": "8:0 300",
        "io.max": "8:0 rbps=600\n8:0 wbps=700\n8:16 riops=10\n8:16 wiops=20"}


def test_v2_hugetlb_rdma_unified() -> None:
    files = plan.v2_files({
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 7}},
        "unified": {"memory.high": "max", "cgroup.max.depth": "5", "cpu.weight": "77"},
        "cpu": {"shares": 1024}})
    assert files == {"cpu.weight": "77", "hugetlb.2MB.max": "4194304",
                     "hugetlb.2MB.rsvd.max": "4194304",
                     "rdma.max": "mlx4_0 hca_object=7\nmlx5_1 hca_handle=3 hca_object=10000",
                     "memory.high": "max", "cgroup.max.depth": "5"}
    assert plan.v2_controllers(files) == ["cpu", "hugetlb", "rdma", "memory"]


def test_v2_empty() -> None:
    assert plan.v2_files(None) == {} and plan.v2_files({}) == {}
    assert plan.v2_files({"devices": [{"allow": False, "access": "rwm"}]}) == {}


# --- v1 -----------------------------------------------------------------------------
def test_v1_everything() -> None:
    files = plan.v1_files({
        "memory": {"limit": 1000, "reservation": 500, "swap": 3000, "kernelTCP": 9,
                   "swappiness": 10, "disableOOMKiller": True},
        "cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 10,
                "realtimeRuntime": 950, "realtimePeriod": 1000000, "cpus": "0", "mems": "0",
                "idle": 0},
        "pids": {"limit": 20},
        "blockIO": {"weight": 500, "leafWeight": 300,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 100, "leafWeight": 50},
                                     {"major": 8, "minor": 16, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600},
                                              {"major": 8, "minor": 16, "rate": 601}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 1073741824}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500},
                                                       {"name": "lo", "priority": 1}]},
        "rdma": {"rxe3": {"hcaObjects": 10000}},
    })
    assert files == {
        "cpuset": {"cpuset.cpus": "0", "cpuset.mems": "0"},
        "memory": {"memory.limit_in_bytes": "1000", "memory.memsw.limit_in_bytes": "3000",
                   "memory.kmem.tcp.limit_in_bytes": "9", "memory.oom_control": "1",
                   "memory.swappiness": "10", "memory.soft_limit_in_bytes": "500"},
        "cpu": {"cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "950",
                "cpu.shares": "1024", "cpu.cfs_period_us": "200000", "cpu.cfs_burst_us": "10",
                "cpu.cfs_quota_us": "50000", "cpu.idle": "0"},
        "pids": {"pids.max": "20"},
        "blkio": {"blkio.weight": "500", "blkio.leaf_weight": "300",
                  "blkio.weight_device": "8:0 100\n8:16 200",
                  "blkio.leaf_weight_device": "8:0 50",
                  "blkio.throttle.read_bps_device": "8:0 600\n8:16 601",
                  "blkio.throttle.write_iops_device": "8:16 300"},
        "hugetlb": {"hugetlb.1GB.limit_in_bytes": "1073741824",
                    "hugetlb.1GB.rsvd.limit_in_bytes": "1073741824"},
        "net_cls": {"net_cls.classid": "1048577"},
        "net_prio": {"net_prio.ifpriomap": "eth0 500\nlo 1"},
        "rdma": {"rdma.max": "rxe3 hca_object=10000"},
    }


def test_v1_small_cases() -> None:
    assert plan.v1_files({"memory": {"limit": -1}}) == {
        "memory": {"memory.limit_in_bytes": "-1"}}
    assert plan.v1_files({"cpu": {"quota": -1}}) == {"cpu": {"cpu.cfs_quota_us": "-1"}}
    assert plan.v1_files({"memory": {"limit": 0, "swappiness": 0}}) == {
        "memory": {"memory.swappiness": "0"}}
    assert plan.v1_files(None) == {}


def test_device_rules() -> None:
    rules = plan.v1_device_rules([
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "access": "r"},
        {"allow": True, "type": "c", "major": -1, "minor": -1},
    ])
    assert rules == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 10:229 rw"),
                     ("devices.allow", "b 8:* r"), ("devices.allow", "c *:* rwm")]
    defaults = plan.default_device_rules()
    assert defaults[0] == ("devices.allow", "c *:* m")
    assert ("devices.allow", "c 1:3 rwm") in defaults
    assert ("devices.allow", "c 136:* rwm") in defaults
    assert ("devices.allow", "c 5:2 rwm") in defaults


def test_optional_and_per_line() -> None:
    assert plan.is_optional("hugetlb.2MB.rsvd.max", "1")
    assert plan.is_optional("memory.swap.max", "max")
    assert plan.is_optional("memory.swap.max", "0")
    assert not plan.is_optional("memory.swap.max", "100")
    assert not plan.is_optional("memory.max", "max")
    assert "io.max" in plan.PER_LINE_FILES and "devices.allow" not in plan.PER_LINE_FILES


# --- errors -------------------------------------------------------------------------
R = "linux.resources"
ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    ("both", {"memory": {"limit": -2}}, f"{R}.memory.limit", "must be -1 or a positive number"),
    ("both", {"memory": {"limit": "1"}}, f"{R}.memory.limit", "must be -1 or a positive number"),
    ("both", {"memory": {"reservation": True}}, f"{R}.memory.reservation",
     "must be -1 or a positive number"),
    ("both", {"memory": {"swap": 10}}, f"{R}.memory.swap",
     "cannot be set without a memory limit"),
    ("both", {"memory": {"swap": 10, "limit": -1}}, f"{R}.memory.swap",
     "cannot be set without a memory limit"),
    ("both", {"memory": {"swap": 10, "limit": 20}}, f"{R}.memory.swap",
     "memory+swap limit must be at least the memory limit"),
    ("both", {"memory": {"swappiness": 101}}, f"{R}.memory.swappiness",
     "must be an integer from 0 to 100"),
    ("both", {"memory": {"disableOOMKiller": 1}}, f"{R}.memory.disableOOMKiller",
     "must be true or false"),
    ("both", {"cpu": {"shares": 1}}, f"{R}.cpu.shares", "must be between 2 and 262144"),
    ("both", {"cpu": {"shares": 262145}}, f"{R}.cpu.shares", "must be between 2 and 262144"),
    ("both", {"cpu": {"period": 999}}, f"{R}.cpu.period",
     "must be between 1000 and 1000000 (1ms to 1s)"),
    ("both", {"cpu": {"quota": 100, "burst": 101}}, f"{R}.cpu.burst",
     "must be no larger than quota"),
    ("both", {"cpu": {"cpus": "0-x"}}, f"{R}.cpu.cpus", "'0-x' is not a cpu list like 0-3,7"),
    ("both", {"cpu": {"mems": 0}}, f"{R}.cpu.mems", "must be a string like 0-3,7"),
    ("both", {"cpu": {"idle": 2}}, f"{R}.cpu.idle", "must be an integer from 0 to 1"),
    ("both", {"pids": {"limit": 1.5}}, f"{R}.pids.limit",
     f"must be an integer from {-(2**63)} to {2**63 - 1}"),
    ("both", {"pids": []}, f"{R}.pids", "must be an object"),
    ("both", {"blockIO": {"weight": 5}}, f"{R}.blockIO.weight",
     "must be an integer from 10 to 1000"),
    ("both", {"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}},
     f"{R}.blockIO.weightDevice[0]", "must set weight or leafWeight"),
    ("both", {"blockIO": {"weightDevice": [{"minor": 0, "weight": 10}]}},
     f"{R}.blockIO.weightDevice[0].major", "is required"),
    ("both", {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}},
     f"{R}.blockIO.throttleReadBpsDevice[0].rate", "is required"),
    ("both", {"blockIO": {"throttleWriteBpsDevice": "x"}}, f"{R}.blockIO.throttleWriteBpsDevice",
     "must be an array"),
    ("both", {"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
     f"{R}.hugepageLimits[0].pageSize", "must be a size like 64KB, 2MB or 1GB"),
    ("both", {"hugepageLimits": [{"pageSize": "2MB"}]}, f"{R}.hugepageLimits[0].limit",
     "is required"),
    ("both", {"rdma": {"mlx": {}}}, f'{R}.rdma["mlx"]', "must set hcaHandles or hcaObjects"),
    ("v1", {"network": {"priorities": [{"name": "", "priority": 1}]}},
     f"{R}.network.priorities[0].name", "must be an interface name"),
    ("v1", {"network": {"classID": -1}}, f"{R}.network.classID",
     "must be an integer from 0 to 4294967295"),
    ("v1", {"unified": {"memory.max": "1"}}, f"{R}.unified", "cannot be used on cgroup v1"),
    ("v2", {"unified": {"a/b": "1"}}, f'{R}.unified["a/b"]',
     'must be a file name (no "/" or "..")'),
    ("v2", {"unified": {"..memory": "1"}}, f'{R}.unified["..memory"]',
     'must be a file name (no "/" or "..")'),
    ("v2", {"unified": {"memory": "1"}}, f'{R}.unified["memory"]',
     "must look like <controller>.<name>"),
    ("v2", {"unified": {".max": "1"}}, f'{R}.unified[".max"]',
     "must look like <controller>.<name>"),
    ("v2", {"unified": {"memory.max": 1}}, f'{R}.unified["memory.max"]', "must be a string"),
    ("v2", {"cpu": {"realtimeRuntime": 5}}, f"{R}.cpu.realtimeRuntime",
     "realtime scheduling is not supported on cgroup v2"),
    ("v2", {"cpu": {"realtimePeriod": 5}}, f"{R}.cpu.realtimePeriod",
     "realtime scheduling is not supported on cgroup v2"),
    ("v2", {"memory": {"swappiness": 5}}, f"{R}.memory.swappiness",
     "swappiness has no cgroup v2 equivalent"),
    ("v2", {"memory": {"disableOOMKiller": True}}, f"{R}.memory.disableOOMKiller",
     "disabling the oom killer has no cgroup v2 equivalent"),
    ("v2", {"blockIO": {"leafWeight": 10}}, f"{R}.blockIO.leafWeight",
     "leafWeight has no cgroup v2 equivalent"),
    ("v2", {"network": {"classID": 1}}, f"{R}.network", "net_cls/net_prio has no cgroup v2 "
                                                        "equivalent"),
]


@pytest.mark.parametrize(("versions", "resources", "field", "problem"), ERRORS)
def test_errors(versions: str, resources: dict[str, Any], field: str, problem: str) -> None:
    table: dict[str, list[Any]] = {"v1": [plan.v1_files], "v2": [plan.v2_files],
                                   "both": [plan.v1_files, plan.v2_files]}
    converters = table[versions]
    for convert in converters:
        error = _error(convert, resources)
        assert (error.field, error.problem) == (field, problem)
        assert str(error) == f"config.json: {field}: {problem}"


@pytest.mark.parametrize(("entry", "field", "problem"), [
    ({"access": "rwm"}, "linux.resources.devices[0].allow", "must be true or false"),
    ({"allow": True, "type": "p"}, "linux.resources.devices[0].type", "must be a, b or c"),
    ({"allow": True, "access": "rwx"}, "linux.resources.devices[0].access",
     "must be made of r, w and m, each at most once"),
    ({"allow": True, "access": "rr"}, "linux.resources.devices[0].access",
     "must be made of r, w and m, each at most once"),
    ({"allow": True, "major": -2}, "linux.resources.devices[0].major",
     f"must be an integer from -1 to {2**63 - 1}"),
    ("x", "linux.resources.devices[0]", "must be an object"),
])
def test_device_rule_errors(entry: Any, field: str, problem: str) -> None:
    error = _error(plan.v1_device_rules, [entry])
    assert (error.field, error.problem) == (field, problem)
