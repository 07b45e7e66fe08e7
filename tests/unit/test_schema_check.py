"""pyruntime.spec.schema_check: the fast validator must agree with jsonschema on our schemas.

It runs on the ``create`` hot path instead of ``jsonschema`` (which costs
160-240 ms to import), so these tests pin down that it accepts and rejects the
same documents, that its messages name the first offending field, and that it
stays cheap to import.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyruntime import errors, jsonio
from pyruntime.spec import schema_check

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "runtime-spec-v1.3.0"
FIXTURES = SPEC / "schema" / "test"
KINDS = ("config", "state", "features")
VALIDATE = {"config": schema_check.validate_config, "state": schema_check.validate_state,
            "features": schema_check.validate_features}

# What `runc spec` writes (runc 1.1), i.e. the typical config on the hot path.
RUNC_SPEC_CONFIG: dict[str, object] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {name: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for name in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}

# A config that touches nearly every Linux field, as the seed for mutations.
FULL_LINUX_CONFIG: dict[str, object] = copy.deepcopy(RUNC_SPEC_CONFIG)
FULL_LINUX_CONFIG.update({
    "ociVersion": "1.3.0",
    "domainname": "example.test",
    "annotations": {"com.example.key": "value"},
    "hooks": {"createRuntime": [{"path": "/bin/hook", "args": ["hook"], "env": ["A=1"], "timeout": 5}],
              "poststop": [{"path": "/bin/cleanup"}]},
})
FULL_LINUX_CONFIG["mounts"] = [  # type: ignore[operator]
    *RUNC_SPEC_CONFIG["mounts"],  # type: ignore[misc]
    {"destination": "/data", "type": "none", "source": "/srv", "options": ["rbind", "idmap"],
     "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
     "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
]
FULL_LINUX_CONFIG["process"].update({  # type: ignore[attr-defined]
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1, "gid": 1, "umask": 18, "additionalGids": [5, 6]},
    "oomScoreAdj": 100,
    "scheduler": {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "execCPUAffinity": {"initial": "0-3,7", "final": "1"},
    "apparmorProfile": "profile",
    "selinuxLabel": "system_u:system_r:container_t:s0",
})
FULL_LINUX_CONFIG["linux"].update({  # type: ignore[attr-defined]
    "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time")],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 0}},
    "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
                {"type": "p", "path": "/dev/fifo"}],
    "netDevices": {"eth0": {"name": "ctr0"}, "ens4": {}},
    "sysctl": {"net.ipv4.ip_forward": "1"},
    "cgroupsPath": "/pyruntime/test",
    "resources": {
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                         "access": "rw"}],
        "memory": {"limit": 536870912, "swap": -1, "swappiness": 0, "disableOOMKiller": False},
        "cpu": {"shares": 1024, "quota": 100000, "period": 100000, "cpus": "0-1", "idle": 0},
        "blockIO": {"weight": 10, "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "pids": {"limit": 32771},
        "rdma": {"mlx5_1": {"hcaHandles": 3}},
        "unified": {"memory.high": "max"},
    },
    "intelRdt": {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20",
                 "schemata": ["L2:0=ff"], "enableMonitoring": True},
    "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]},
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
    "rootfsPropagation": "private",
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "personality": {"domain": "LINUX", "flags": []},
})


def fixture_params(kind: str, expect: str) -> list[object]:
    """One pytest param per fixture file, or a single skipped param if the spec folder is missing."""
    folder = FIXTURES / kind / expect
    if not folder.is_dir():
        reason = f"runtime-spec v1.3.0 fixtures not found at {folder}"
        return [pytest.param(kind, None, id=f"{kind}/{expect}/missing", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(kind, path, id=f"{kind}/{expect}/{path.name}") for path in sorted(folder.glob("*.json"))]


@functools.lru_cache(maxsize=None)
def strict_jsonschema(kind: str) -> jsonschema.protocols.Validator:
    """jsonschema with our integer rule: true and 1.0 are not integers (schema_check is strict there)."""
    schema = json.loads((REPO / "schema" / f"{kind}.schema.json").read_text())
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def problem_of(kind: str, document: object) -> tuple[str, str] | None:
    try:
        VALIDATE[kind](document)
    except errors.ConfigError as exc:
        return exc.field, exc.problem
    return None


# ---------------------------------------------------------------- fixtures

@pytest.mark.parametrize(("kind", "path"), [p for kind in KINDS for p in fixture_params(kind, "good")])
def test_good_fixture_accepted(kind: str, path: Path) -> None:
    assert problem_of(kind, jsonio.load_file(str(path))) is None


@pytest.mark.parametrize(("kind", "path"), [p for kind in KINDS for p in fixture_params(kind, "bad")])
def test_bad_fixture_rejected(kind: str, path: Path) -> None:
    try:
        document = jsonio.load_file(str(path))
    except jsonio.JSONError:
        return  # not JSON at all (invalid-json.json): rejected before the schema
    assert problem_of(kind, document) is not None


def test_bad_fixture_messages() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"runtime-spec v1.3.0 fixtures not found at {FIXTURES}")
    expected = {
        "freebsd-vnet-disable.json": ("freebsd.jail.vnet", 'must be one of "new", "inherit"'),
        "linux-hugepage.json": ("linux.resources.hugepageLimits[0].pageSize", "must match ^[1-9][0-9]*[KMG]B$"),
        "linux-netdevice.json": ("linux.netDevices.eth0.name", "must be a string"),
        "linux-rdma.json": ("linux.resources.rdma.mlx5_1.hcaHandles", "must be an integer between 0 and 4294967295"),
    }
    for name, want in expected.items():
        assert problem_of("config", jsonio.load_file(str(FIXTURES / "config" / "bad" / name))) == want, name
    assert problem_of("features", jsonio.load_file(str(FIXTURES / "features" / "bad" / "missing-ociVersionMax.json"))) \
        == ("ociVersionMax", "is required")


def test_seed_configs_valid_for_both() -> None:
    for document in (RUNC_SPEC_CONFIG, FULL_LINUX_CONFIG):
        assert problem_of("config", document) is None
        strict_jsonschema("config").validate(document)
        jsonschema.Draft202012Validator(strict_jsonschema("config").schema).validate(document)


# ---------------------------------------------------------------- messages

DELETE = object()


def mutated(*edits: tuple[tuple[str | int, ...], object]) -> dict[str, object]:
    """A copy of FULL_LINUX_CONFIG with each (path, value) set, or deleted if value is DELETE."""
    document = copy.deepcopy(FULL_LINUX_CONFIG)
    for path, value in edits:
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return document


@pytest.mark.parametrize(("path", "value", "field", "problem"), [
    (("process", "args"), [], "process.args", "must be a non-empty array"),
    (("linux", "namespaces", 2, "type"), "net", "linux.namespaces[2].type",
     'must be one of "mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"'),
    (("mounts", 0, "destination"), 42, "mounts[0].destination", "must be a string"),
    (("ociVersion",), DELETE, "ociVersion", "is required"),
    (("process", "user", "uid"), "0", "process.user.uid", "must be an integer between 0 and 4294967295"),
    (("process", "user", "uid"), -1, "process.user.uid", "must be an integer between 0 and 4294967295"),
    (("process", "user", "uid"), 0.0, "process.user.uid", "must be an integer between 0 and 4294967295"),
    (("process", "user", "gid"), True, "process.user.gid", "must be an integer between 0 and 4294967295"),
    (("process", "user", "gid"), DELETE, "process.user.gid", "is required"),
    (("process", "cwd"), DELETE, "process.cwd", "is required"),
    (("process", "args"), DELETE, "process.args", "is required"),
    (("root",), DELETE, "root", "is required"),
    (("hooks", "poststop", 0, "timeout"), 0, "hooks.poststop[0].timeout", "must be an integer >= 1"),
    (("process", "rlimits", 0, "type"), "NOFILE", "process.rlimits[0].type", "must match ^RLIMIT_[A-Z]+$"),
    (("linux", "sysctl", "net.ipv4.ip_forward"), 1, 'linux.sysctl["net.ipv4.ip_forward"]', "must be a string"),
    (("annotations", ""), "x", "annotations", 'key "" must not be empty'),
    (("linux", "resources", "rdma", "mlx5_1"), {}, "linux.resources.rdma.mlx5_1",
     'must have at least one of "hcaHandles", "hcaObjects"'),
    (("mounts", 7, "gidMappings"), DELETE, "mounts[7].gidMappings", "is required when uidMappings is set"),
    (("linux", "devices", 0, "major"), DELETE, "linux.devices[0].major", "is required"),
    (("linux", "seccomp", "syscalls", 0, "names"), [], "linux.seccomp.syscalls[0].names",
     "must be a non-empty array"),
    (("linux", "resources", "pids", "limit"), 2**63, "linux.resources.pids.limit",
     "must be an integer between -9223372036854775808 and 9223372036854775807"),
    (("linux",), [], "linux", "must be an object"),
])
def test_error_field_and_problem(path: tuple[str | int, ...], value: object, field: str, problem: str) -> None:
    document = mutated((path, value))
    with pytest.raises(errors.ConfigError) as caught:
        schema_check.validate_config(document)
    assert (caught.value.field, caught.value.problem) == (field, problem)
    assert str(caught.value) == f"config.json: {field}: {problem}"
    assert not strict_jsonschema("config").is_valid(document)


def test_root_and_other_sources() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        schema_check.validate_config([])
    assert (caught.value.field, str(caught.value)) == ("", "config.json: must be an object")
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "running", "bundle": "/b", "pid": -1}
    with pytest.raises(errors.ConfigError) as caught:
        schema_check.validate_state(state)
    assert str(caught.value) == "state.json: pid: must be an integer >= 0"
    del state["pid"]
    assert problem_of("state", state) == ("pid", "is required")
    features = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": {"cgroup": {"v3": True}}}
    with pytest.raises(errors.ConfigError) as caught:
        schema_check.validate_features(features)
    assert str(caught.value) == "features.json: linux.cgroup.v3: is not allowed"
    assert problem_of("features", {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "hooks": "x"}) == \
        ("hooks", "must be an array or null")


# ---------------------------------------------------------------- agreement with jsonschema

WRONG_VALUES = [None, True, False, 0, -1, 1.0, 0.5, 2**32, 2**63, 2**64, "", "bogus", "RLIMIT_", "MB:\n",
                "64kB", [], [1], {}, {"x": 1}]


def all_paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += all_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += all_paths(value, prefix + (index,))
    return paths


SEED_PATHS = all_paths(FULL_LINUX_CONFIG)[1:]


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, object]:
    document = copy.deepcopy(FULL_LINUX_CONFIG)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(SEED_PATHS))
        parent: object = document
        try:
            for part in path[:-1]:
                parent = parent[part]  # type: ignore[index]
            last = path[-1]
            parent[last]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
        action = draw(st.sampled_from(["replace", "delete", "unknown-key", "int", "string"]))
        if action == "delete":
            del parent[last]  # type: ignore[attr-defined]
        elif action == "unknown-key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["bogus", "", "x-extension"]))] = draw(st.sampled_from(WRONG_VALUES))
        elif action == "int":
            parent[last] = draw(st.integers(-2**65, 2**65) | st.sampled_from([-1, 0, 1, 255, 65536, 2**32]))  # type: ignore[index]
        elif action == "string":
            parent[last] = draw(st.text(alphabet="RLIMT_ABCmb:0123456789-,KMGB \nrwpcu", max_size=12))  # type: ignore[index]
        else:
            parent[last] = copy.deepcopy(draw(st.sampled_from(WRONG_VALUES)))  # type: ignore[index]
    return document


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_agrees_with_jsonschema_on_mutated_configs(document: dict[str, object]) -> None:
    ours = problem_of("config", document)
    reference = strict_jsonschema("config").is_valid(document)
    assert (ours is None) == reference, ours


@settings(max_examples=150, deadline=None, database=None)
@given(st.fixed_dictionaries({}, optional={
    "ociVersion": st.sampled_from(["1.3.0", 1]),
    "id": st.sampled_from(["c1", None]),
    "status": st.sampled_from(["creating", "created", "running", "stopped", "paused", "gone", 3]),
    "pid": st.sampled_from([0, 42, -1, 1.0, "42"]),
    "bundle": st.sampled_from(["/b", []]),
    "annotations": st.sampled_from([{}, {"a": "b"}, {"": "b"}, {"a": 1}]),
    "extra": st.just(True),
}))
def test_agrees_with_jsonschema_on_states(document: dict[str, object]) -> None:
    assert (problem_of("state", document) is None) == strict_jsonschema("state").is_valid(document)


def test_float_integers_are_a_deliberate_difference() -> None:
    document = mutated((("process", "user", "uid"), 1.0))
    assert jsonschema.Draft202012Validator(strict_jsonschema("config").schema).is_valid(document)
    assert problem_of("config", document) == ("process.user.uid", "must be an integer between 0 and 4294967295")


@pytest.mark.parametrize("path", [("linux", "intelRdt", "memBwSchema"), ("process", "rlimits", 0, "type"),
                                  ("linux", "intelRdt", "schemata", 0), ("linux", "resources", "devices", 0, "access")])
@pytest.mark.parametrize("value", ["MB:1\n", "MB:1\n\n", "RLIMIT_NOFILE\n", "RLIMIT_NOFILE\n\n", "rw\n", "a\nb"])
def test_patterns_with_newlines_follow_python_re(path: tuple[str | int, ...], value: str) -> None:
    """Python's ``$`` also matches before a final newline; we keep jsonschema's verdict exactly."""
    document = mutated((path, value))
    assert (problem_of("config", document) is None) == strict_jsonschema("config").is_valid(document)


# ---------------------------------------------------------------- load-time drift detection

def test_unknown_keyword_fails_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "drift.json").write_text(json.dumps(
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}},
         "$defs": {"A": {"type": "array", "uniqueItems": True}, "Unused": {"format": "uri"}}}))
    monkeypatch.setattr(schema_check, "_SCHEMA_DIR", str(tmp_path))
    monkeypatch.setattr(schema_check, "_loaded", {})
    with pytest.raises(NotImplementedError, match="uniqueItems|format"):
        schema_check.load("drift.json")
    (tmp_path / "remote.json").write_text(json.dumps({"$ref": "https://example.com/schema.json"}))
    with pytest.raises(NotImplementedError, match=r"\$ref"):
        schema_check.load("remote.json")


@pytest.mark.parametrize("kind", KINDS)
def test_our_schemas_load(kind: str) -> None:
    assert callable(schema_check.load(f"{kind}.schema.json"))


# ---------------------------------------------------------------- import budget

def test_import_budget_for_a_typical_create() -> None:
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from pyruntime import jsonio
from pyruntime.spec import schema_check
schema_check.validate_config(jsonio.loads({json.dumps(RUNC_SPEC_CONFIG)!r}))
schema_check.validate_config(jsonio.load_file({str(REPO / "bundles" / "busybox" / "config.json")!r})) \\
    if __import__("os").path.exists({str(REPO / "bundles" / "busybox" / "config.json")!r}) else None
banned = ("re", "typing", "json", "jsonschema", "dataclasses", "enum", "pathlib")
print(",".join(name for name in banned if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported on the hot path: {result.stdout.strip()}"
