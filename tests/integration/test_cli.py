"""The command line as engines parse it: --version, spec, list, --log.

containerd's runc shim reads ``<name> version X`` and ``spec: V`` from
--version, parses ``list --format json`` and reads --log as JSON lines; a
change of shape breaks them even if every container still runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import ENV_MARKER, BundleFactory, Runtime

pytestmark = pytest.mark.root

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version_shape(rt: Runtime, flag: str) -> None:
    result = rt(flag).ok()
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"pyruntime version \d+\.\d+\.\d+\S*", lines[0]), lines
    assert "spec: 1.3.0" in lines
    assert result.stderr == ""


def test_spec_writes_a_config_that_run_accepts(rt: Runtime, test_dir: Path, rootfs: Path,
                                               cid: str) -> None:
    """``spec`` then ``run`` (root.path pointed at a rootfs, args made observable):
    the default config must be one pyruntime itself supports."""
    bundle = test_dir / "spec-bundle"
    bundle.mkdir()
    rt("spec", "--bundle", str(bundle)).ok()
    config = json.loads((bundle / "config.json").read_text())
    assert config["ociVersion"] == "1.3.0"
    assert config["process"]["terminal"] is False
    config["root"]["path"] = str(rootfs)
    config["process"]["args"] = ["sh", "-c", "echo spec-ok; hostname"]
    config["process"]["env"].append(f"{ENV_MARKER}={rt.token}")
    (bundle / "config.json").write_text(json.dumps(config))
    result = rt.run(cid, bundle).ok()
    assert result.stdout == f"spec-ok\n{config['hostname']}\n"


def test_spec_refuses_to_overwrite(rt: Runtime, test_dir: Path) -> None:
    bundle = test_dir / "spec-bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text("mine")
    result = rt("spec", "--bundle", str(bundle))
    assert result.returncode != 0
    assert "exists" in result.stderr
    assert (bundle / "config.json").read_text() == "mine"


def test_spec_rootless_is_valid_json_with_a_user_namespace(rt: Runtime, test_dir: Path) -> None:
    bundle = test_dir / "spec-rootless"
    bundle.mkdir()
    rt("spec", "--rootless", "--bundle", str(bundle)).ok()
    config = json.loads((bundle / "config.json").read_text())
    assert {"type": "user"} in config["linux"]["namespaces"]
    assert config["linux"]["uidMappings"]


def _two_containers(rt: Runtime, bundles: BundleFactory, token: str) -> tuple[str, str]:
    """One created, one running (sleeping)."""
    created, running = f"a-{token}", f"b-{token}"
    rt.create(created, bundles.make(["true"])).ok()
    rt.create(running, bundles.make(["sleep", "1000"])).ok()
    rt.start(running).ok()
    return created, running


def test_list_table(rt: Runtime, bundles: BundleFactory, token: str) -> None:
    created, running = _two_containers(rt, bundles, token)
    try:
        states = {cid: rt.state(cid) for cid in (created, running)}
        lines = rt("list").ok().stdout.splitlines()
    finally:
        for cid in (created, running):
            rt.delete(cid, force=True).ok()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == [created, running]
    for cid, state in states.items():
        assert rows[cid] == [cid, str(state["pid"]), state["status"], state["bundle"],
                             state["created"], "root"]
    assert rows[created][2] == "created" and rows[running][2] == "running"
    columns = [lines[0].index(name) for name in ("PID", "STATUS", "BUNDLE")]
    for line in lines[1:]:  # a table: every column starts where its header does
        assert [line[c - 1] for c in columns] == [" "] * 3 and " " not in [line[c] for c in columns]


def test_list_json(rt: Runtime, bundles: BundleFactory, token: str) -> None:
    created, running = _two_containers(rt, bundles, token)
    try:
        states = {cid: rt.state(cid) for cid in (created, running)}
        listed = json.loads(rt("list", "--format", "json").ok().stdout)
    finally:
        for cid in (created, running):
            rt.delete(cid, force=True).ok()
    by_id = {entry["id"]: entry for entry in listed}
    assert sorted(by_id) == [created, running]
    for cid, state in states.items():
        for key in ("pid", "status", "bundle", "created"):
            assert by_id[cid][key] == state[key], key


def test_list_quiet(rt: Runtime, bundles: BundleFactory, token: str) -> None:
    assert rt("list", "-q").ok().stdout == ""
    created, running = _two_containers(rt, bundles, token)
    try:
        quiet = rt("list", "-q").ok().stdout
    finally:
        for cid in (created, running):
            rt.delete(cid, force=True).ok()
    assert quiet == f"{created}\n{running}\n"
    assert rt("list", "-q").ok().stdout == ""


def test_list_shows_a_stopped_container(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    rt.run(cid, bundles.make(["true"]), "--keep").ok()
    listed = json.loads(rt("list", "--format", "json").ok().stdout)
    rt.delete(cid).ok()
    assert [(e["id"], e["status"], e["pid"]) for e in listed] == [(cid, "stopped", 0)]


def test_log_json_records_an_error(rt: Runtime, test_dir: Path, cid: str) -> None:
    """--log F --log-format json: one JSON object per line with level, msg, time."""
    log = test_dir / "pyruntime.log"
    result = rt("state", cid, global_args=["--log", str(log), "--log-format", "json"])
    assert result.returncode != 0
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    errors = [e for e in entries if e["level"] == "error"]
    assert len(errors) == 1, entries
    assert f"container {cid} does not exist" in errors[0]["msg"]
    assert RFC3339.match(errors[0]["time"]), errors[0]["time"]


def test_log_text_records_an_error(rt: Runtime, test_dir: Path, cid: str) -> None:
    log = test_dir / "pyruntime.log"
    rt("state", cid, global_args=["--log", str(log)])
    line = log.read_text().strip()
    assert re.fullmatch(r'time="[^"]+" level=error msg=".*does not exist.*"', line), line


def test_log_of_a_failed_create_names_the_step(rt: Runtime, bundles: BundleFactory,
                                               test_dir: Path, cid: str) -> None:
    """The error that reached stderr is also in the log, word for word."""
    log = test_dir / "pyruntime.log"
    bundle = bundles.make(["no-such-program"])
    result = rt("create", "--bundle", str(bundle), cid,
                global_args=["--log", str(log), "--log-format", "json"])
    assert result.returncode != 0
    errors = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [e for e in errors if e["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["msg"] in result.stderr
    assert "executable file not found" in errors[0]["msg"]


def test_help(rt: Runtime) -> None:
    result = rt("--help").ok()
    for command in ("create", "start", "run", "state", "kill", "delete", "list", "spec"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
