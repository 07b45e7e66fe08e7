"""Checks of runtime.md: state, lifecycle, operations and their errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conformance.helpers import (Bundle, Runtime, clause, container_cgroup_file, new_id,
                                 ns_inode, pid_alive, snapshot_tree, spawn_ns_holder, wait_for)

SLEEP = ["/bin/sleep", "300"]
MakeBundle = Callable[..., Bundle]


def created(rt: Runtime, bundle: MakeBundle, args: list[str] | None = None,
            **overrides: Any) -> tuple[str, Bundle]:
    """A container in status ``created`` (asserting that create worked)."""
    b = bundle(args or SLEEP, **overrides)
    cid = new_id()
    r = rt.create(cid, b)
    assert r.ok, f"create failed:\n{r}\n{rt.container_stderr(cid)}"
    return cid, b


def running(rt: Runtime, bundle: MakeBundle, args: list[str] | None = None,
            **overrides: Any) -> tuple[str, Bundle]:
    cid, b = created(rt, bundle, args, **overrides)
    r = rt.start(cid)
    assert r.ok, f"start failed:\n{r}"
    return cid, b


def stopped(rt: Runtime, bundle: MakeBundle, args: list[str] | None = None,
            **overrides: Any) -> tuple[str, Bundle]:
    cid, b = running(rt, bundle, args or ["/bin/true"], **overrides)
    assert rt.wait_status(cid, "stopped") == "stopped", "container did not stop"
    return cid, b


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------


def check_common_state(st: dict[str, Any], cid: str, b: Bundle) -> None:
    assert isinstance(st.get("ociVersion"), str) and st["ociVersion"], f"ociVersion: {st}"
    assert st.get("id") == cid, f"id: {st}"
    assert isinstance(st.get("bundle"), str) and os.path.isabs(st["bundle"]), f"bundle: {st}"
    assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path), f"bundle: {st}"


@clause("runtime.md", "`created`: the runtime has finished the [create operation](#create) "
        "(after step 2 in the [lifecycle](#lifecycle)), and the container process has neither "
        "exited nor executed the user-specified program")
def test_state_created(rt: Runtime, bundle: MakeBundle) -> None:
    """After create, state reports status created, the id, the absolute bundle and a live pid."""
    cid, b = created(rt, bundle)
    st = rt.state(cid)
    check_common_state(st, cid, b)
    assert st.get("status") == "created", st


@clause("runtime.md", "**`pid`** (int, REQUIRED when `status` is `created` or `running` on Linux")
def test_state_pid_created_and_running(rt: Runtime, bundle: MakeBundle) -> None:
    """pid is present in created and running, is the container process (in the
    container's pid namespace) and stays the same across start (exec, not spawn)."""
    cid, b = created(rt, bundle)
    st = rt.state(cid)
    pid = st.get("pid")
    assert isinstance(pid, int) and pid > 0, st
    assert pid_alive(pid), f"pid {pid} from state is not a live process"
    assert ns_inode(pid, "pid") != ns_inode("self", "pid"), \
        "state pid is not in the container's (new) pid namespace"
    assert rt.start(cid).ok
    st2 = rt.state(cid)
    assert st2.get("status") == "running", st2
    assert st2.get("pid") == pid, f"pid changed from {pid} to {st2.get('pid')}"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:2] == [b"/bin/sleep", b"300"], f"pid {pid} runs {cmdline}, not process.args"


@clause("runtime.md", "`running`: the container process has executed the user-specified program "
        "but has not exited")
def test_state_running(rt: Runtime, bundle: MakeBundle) -> None:
    """After start of a long-running process, status is running."""
    cid, b = running(rt, bundle)
    st = rt.state(cid)
    check_common_state(st, cid, b)
    assert st.get("status") == "running", st


@clause("runtime.md", "`stopped`: the container process has exited")
def test_state_stopped(rt: Runtime, bundle: MakeBundle) -> None:
    """Once the process exited, status is stopped (and the state is still queryable)."""
    cid, b = stopped(rt, bundle)
    st = rt.state(cid)
    check_common_state(st, cid, b)
    assert st.get("status") == "stopped", st


@clause("runtime.md", "When serialized in JSON, the format MUST adhere to the JSON Schema "
        "[`schema/state-schema.json`](schema/state-schema.json).")
def test_state_schema(rt: Runtime, bundle: MakeBundle, spec_dir: Path) -> None:
    """The state JSON validates against the spec's state schema in created, running, stopped."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    schema_dir = spec_dir / "schema"
    if not (schema_dir / "state-schema.json").exists():
        pytest.skip(f"no state-schema.json under {schema_dir}")
    resources = []
    for name in ("defs.json", "state-schema.json"):
        doc = json.loads((schema_dir / name).read_text())
        resources.append((name, referencing.Resource.from_contents(
            doc, default_specification=referencing.jsonschema.DRAFT4)))
    registry = referencing.Registry().with_resources(resources)
    validator = jsonschema.Draft4Validator(
        json.loads((schema_dir / "state-schema.json").read_text()), registry=registry)
    cid, _ = created(rt, bundle, ["/bin/sh", "-c", "sleep 1"],
                     annotations={"org.example.conformance": "yes"})
    states = [rt.state(cid)]
    assert rt.start(cid).ok
    states.append(rt.state(cid))
    assert rt.wait_status(cid, "stopped") == "stopped"
    states.append(rt.state(cid))
    for st in states:
        errors = [e.message for e in validator.iter_errors(st)]
        assert not errors, f"state {st} violates state-schema.json: {errors}"


@clause("runtime.md", "**`annotations`** (map, OPTIONAL) contains the list of annotations "
        "associated with the container.")
def test_state_annotations(rt: Runtime, bundle: MakeBundle) -> None:
    """Annotations of config.json are reported in the state."""
    ann = {"org.example.conformance": "value-1", "com.example.other": "x y"}
    cid, _ = created(rt, bundle, annotations=ann)
    st = rt.state(cid)
    assert st.get("annotations") == ann, st


@clause("runtime.md", "**`bundle`** (string, REQUIRED) is the absolute path to the container's "
        "bundle directory.")
def test_state_bundle_absolute_from_relative(rt: Runtime, bundle: MakeBundle) -> None:
    """Given a relative bundle path, state still reports the absolute path."""
    b = bundle(SLEEP).write()
    cid = new_id()
    r = rt.call("create", "--bundle", b.path.name, cid, cwd=b.path.parent,
                stdout_path=rt.workdir / f"{cid}.stdout", stderr_path=rt.workdir / f"{cid}.stderr")
    rt.created.append(cid)
    assert r.ok, f"create with a relative bundle path failed:\n{r}"
    st = rt.state(cid)
    assert os.path.isabs(st.get("bundle", "")), st
    assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path), st


@clause("runtime.md", "Attempting to query a container that does not exist MUST "
        "[generate an error](#errors).")
def test_state_unknown_id(rt: Runtime) -> None:
    """state of an id no container has exits non-zero."""
    r = rt.state_result(new_id("missing"))
    assert not r.ok, f"state of an unknown id succeeded:\n{r}"


@clause("runtime.md", "This operation MUST [generate an error](#errors) if it is not provided "
        "the ID of a container.")
def test_state_without_id(rt: Runtime) -> None:
    """state without an id exits non-zero."""
    r = rt.call("state")
    assert not r.ok, f"state without an id succeeded:\n{r}"


# --------------------------------------------------------------------------
# Create
# --------------------------------------------------------------------------


@clause("runtime.md", "This operation MUST [generate an error](#errors) if it is not provided a "
        "path to the bundle and the container ID to associate with the container.")
def test_create_without_id(rt: Runtime, bundle: MakeBundle) -> None:
    """create without a container id exits non-zero."""
    b = bundle().write()
    r = rt.call("create", "--bundle", str(b.path))
    assert not r.ok, f"create without an id succeeded:\n{r}"


@clause("runtime.md", "If the ID provided is not unique across all containers within the scope "
        "of the runtime, or is not valid in any other way, the implementation MUST "
        "[generate an error](#errors) and a new container MUST NOT be created.")
def test_create_duplicate_id(rt: Runtime, bundle: MakeBundle) -> None:
    """A second create with the same id fails and leaves the original container untouched."""
    cid, _ = created(rt, bundle)
    before = rt.state(cid)
    b2 = bundle(["/bin/sh", "-c", "exec sleep 301"])
    r = rt.create(cid, b2)
    assert not r.ok, f"create with a duplicate id succeeded:\n{r}"
    after = rt.state(cid)
    assert after == before, f"original container changed: {before} -> {after}"
    assert pid_alive(before["pid"]), "original container process died"


@clause("runtime.md", "Unless otherwise stated, generating an error MUST leave the state of the "
        "environment as if the operation were never attempted")
def test_failed_create_leaves_nothing(rt: Runtime, bundle: MakeBundle) -> None:
    """A create that fails (bind mount of a missing source) leaves no container: state
    errors and the same id can be created afterwards."""
    bad = bundle(SLEEP)
    bad.config["mounts"].append({"destination": "/mnt/x", "type": "bind",
                                 "source": str(bad.path / "does-not-exist"),
                                 "options": ["rbind"]})
    cid = new_id()
    r = rt.create(cid, bad)
    assert not r.ok, f"create with a missing bind source succeeded:\n{r}"
    assert not rt.state_result(cid).ok, "a failed create left a container behind"
    r = rt.create(cid, bundle(SLEEP))
    assert r.ok, f"id unusable after a failed create:\n{r}"


@clause("runtime.md", "If the runtime is unable to create the environment specified in the "
        "[`config.json`](config.md), it MUST [generate an error](#errors).")
def test_create_missing_rootfs_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """root.path pointing to a missing directory makes create fail."""
    b = bundle(SLEEP)
    b.config["root"]["path"] = "no-such-rootfs"
    cid = new_id()
    r = rt.create(cid, b)
    assert not r.ok, f"create with a missing rootfs succeeded:\n{r}"
    assert not rt.state_result(cid).ok, "container exists after a failed create"


@clause("runtime.md", "[`process.args`](config.md#process) MUST NOT be applied until triggered "
        "by the [`start`](#start) operation.")
def test_process_args_not_run_before_start(rt: Runtime, bundle: MakeBundle) -> None:
    """The user process (which writes a file) has not run after create, and runs after start."""
    b = bundle(["/bin/sh", "-c", "echo ran > /out/ran; exec sleep 300"]).bind_out()
    cid = new_id()
    assert rt.create(cid, b).ok
    time.sleep(0.5)
    assert not (b.out / "ran").exists(), "process.args ran during create"
    assert rt.status(cid) == "created"
    assert rt.start(cid).ok
    assert wait_for(lambda: (b.out / "ran").exists(), 5), "process.args did not run after start"


@clause("runtime.md", "Any changes made to the [`config.json`](config.md) file after this "
        "operation will not have an effect on the container.")
def test_config_changes_after_create_ignored(rt: Runtime, bundle: MakeBundle) -> None:
    """Rewriting config.json between create and start changes nothing: the original args run."""
    b = bundle(["/bin/sh", "-c", "echo original > /out/marker; exec sleep 300"]).bind_out()
    cid = new_id()
    assert rt.create(cid, b).ok
    b.config["process"]["args"] = ["/bin/sh", "-c", "echo changed > /out/marker; exec sleep 300"]
    b.config["hostname"] = "changed"
    b.write()
    assert rt.start(cid).ok
    assert wait_for(lambda: (b.out / "marker").exists(), 5)
    time.sleep(0.1)
    assert (b.out / "marker").read_text().strip() == "original"


# --------------------------------------------------------------------------
# Start
# --------------------------------------------------------------------------


@clause("runtime.md", "This operation MUST [generate an error](#errors) if it is not provided "
        "the container ID.")
@pytest.mark.parametrize("op", ["start", "kill", "delete"])
def test_operation_without_id(rt: Runtime, op: str) -> None:
    """start/kill/delete without a container id exit non-zero."""
    r = rt.call(op)
    assert not r.ok, f"{op} without an id succeeded:\n{r}"


START_NOT_CREATED = ("Attempting to `start` a container that is not [`created`](#state) MUST "
                     "have no effect on the container and MUST [generate an error](#errors).")
KILL_NOT_LIVE = ("Attempting to send a signal to a container that is neither "
                 "[`created` nor `running`](#state) MUST have no effect on the container and MUST "
                 "[generate an error](#errors).")
DELETE_NOT_STOPPED = ("Attempting to `delete` a container that is not [`stopped`](#state) MUST "
                      "have no effect on the container and MUST [generate an error](#errors).")


@pytest.mark.parametrize("op", [
    pytest.param("start", marks=clause("runtime.md", START_NOT_CREATED)),
    pytest.param("kill", marks=clause("runtime.md", KILL_NOT_LIVE)),
    pytest.param("delete", marks=clause("runtime.md", DELETE_NOT_STOPPED)),
])
def test_operation_unknown_id(rt: Runtime, op: str) -> None:
    """start/kill/delete of an id no container has exit non-zero."""
    args = [op, new_id("missing")] + (["KILL"] if op == "kill" else [])
    r = rt.call(*args)
    assert not r.ok, f"{op} of an unknown id succeeded:\n{r}"


@clause("runtime.md", "Attempting to `start` a container that is not [`created`](#state) MUST "
        "have no effect on the container and MUST [generate an error](#errors).")
def test_start_running_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """A second start of a running container fails; the container keeps running, same pid."""
    b = bundle(["/bin/sh", "-c", "echo x >> /out/count; exec sleep 300"]).bind_out()
    cid = new_id()
    rt.create_and_start(cid, b)
    before = rt.state(cid)
    r = rt.start(cid)
    assert not r.ok, f"start of a running container succeeded:\n{r}"
    after = rt.state(cid)
    assert after.get("status") == "running" and after.get("pid") == before.get("pid"), after
    time.sleep(0.2)
    assert (b.out / "count").read_text().count("x") == 1, "process ran twice"


@clause("runtime.md", "Attempting to `start` a container that is not [`created`](#state) MUST "
        "have no effect on the container and MUST [generate an error](#errors).")
def test_start_stopped_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """start of a stopped container fails, runs nothing and leaves it stopped."""
    b = bundle(["/bin/sh", "-c", "echo x >> /out/count"]).bind_out()
    cid = new_id()
    rt.create_and_start(cid, b)
    assert rt.wait_status(cid, "stopped") == "stopped"
    r = rt.start(cid)
    assert not r.ok, f"start of a stopped container succeeded:\n{r}"
    assert rt.status(cid) == "stopped"
    time.sleep(0.2)
    assert (b.out / "count").read_text().count("x") == 1, "process ran again"


@clause("runtime.md", "This operation MUST generate an error if `process` was not set.")
def test_start_without_process_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """With no process in config.json, start fails (create may already refuse)."""
    b = bundle()
    del b.config["process"]
    cid = new_id()
    if not rt.create(cid, b).ok:
        return  # refusing at create also keeps start from running anything
    r = rt.start(cid)
    assert not r.ok, f"start without process succeeded:\n{r}"


# --------------------------------------------------------------------------
# Kill
# --------------------------------------------------------------------------


@clause("runtime.md", "This operation MUST send the specified signal to the container process.")
def test_kill_created(rt: Runtime, bundle: MakeBundle) -> None:
    """kill KILL of a created container succeeds and stops it without running args."""
    b = bundle(["/bin/sh", "-c", "echo ran > /out/ran; exec sleep 300"]).bind_out()
    cid = new_id()
    assert rt.create(cid, b).ok
    r = rt.kill(cid, "KILL")
    assert r.ok, f"kill of a created container failed:\n{r}"
    assert rt.wait_status(cid, "stopped") == "stopped"
    assert not (b.out / "ran").exists(), "process.args ran although never started"


@clause("runtime.md", "This operation MUST send the specified signal to the container process.")
def test_kill_running_delivers_signal(rt: Runtime, bundle: MakeBundle) -> None:
    """The process receives exactly the signal named (USR1 caught by a trap, then TERM)."""
    script = ("trap 'echo USR1 >> /out/sig' USR1; trap 'echo TERM >> /out/sig; exit 0' TERM; "
              "echo ready > /out/ready; while :; do sleep 0.05; done")
    b = bundle(["/bin/sh", "-c", script]).bind_out()
    cid = new_id()
    rt.create_and_start(cid, b)
    assert wait_for(lambda: (b.out / "ready").exists(), 5), "process did not start"
    r = rt.kill(cid, "USR1")
    assert r.ok, f"kill USR1 failed:\n{r}"
    assert wait_for(lambda: "USR1" in (b.out / "sig").read_text() if (b.out / "sig").exists()
                    else False, 5), "SIGUSR1 not received"
    assert rt.status(cid) == "running", "USR1 (trapped) must not stop the container"
    assert rt.kill(cid, "TERM").ok
    assert rt.wait_status(cid, "stopped") == "stopped"
    assert (b.out / "sig").read_text().split() == ["USR1", "TERM"]


@clause("runtime.md", "This operation MUST send the specified signal to the container process.")
def test_kill_running_sigkill(rt: Runtime, bundle: MakeBundle) -> None:
    """kill KILL stops a running container; its process is gone."""
    cid, _ = running(rt, bundle)
    pid = rt.state(cid)["pid"]
    assert rt.kill(cid, "KILL").ok
    assert rt.wait_status(cid, "stopped") == "stopped"
    assert wait_for(lambda: not pid_alive(pid), 5)


@clause("runtime.md", "Attempting to send a signal to a container that is neither "
        "[`created` nor `running`](#state) MUST have no effect on the container and MUST "
        "[generate an error](#errors).")
def test_kill_stopped_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """kill of a stopped container fails and it stays stopped."""
    cid, _ = stopped(rt, bundle)
    r = rt.kill(cid, "KILL")
    assert not r.ok, f"kill of a stopped container succeeded:\n{r}"
    assert rt.status(cid) == "stopped"


# --------------------------------------------------------------------------
# Delete
# --------------------------------------------------------------------------


@clause("runtime.md", "Attempting to `delete` a container that is not [`stopped`](#state) MUST "
        "have no effect on the container and MUST [generate an error](#errors).")
def test_delete_created_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """delete (without force) of a created container fails; it stays created with its pid."""
    cid, _ = created(rt, bundle)
    before = rt.state(cid)
    r = rt.delete(cid)
    assert not r.ok, f"delete of a created container succeeded:\n{r}"
    after = rt.state(cid)
    assert after.get("status") == "created" and after.get("pid") == before.get("pid"), after
    assert pid_alive(before["pid"])


@clause("runtime.md", "Attempting to `delete` a container that is not [`stopped`](#state) MUST "
        "have no effect on the container and MUST [generate an error](#errors).")
def test_delete_running_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """delete (without force) of a running container fails; it keeps running."""
    cid, _ = running(rt, bundle)
    before = rt.state(cid)
    r = rt.delete(cid)
    assert not r.ok, f"delete of a running container succeeded:\n{r}"
    after = rt.state(cid)
    assert after.get("status") == "running" and after.get("pid") == before.get("pid"), after
    assert pid_alive(before["pid"])


@clause("runtime.md", "Deleting a container MUST delete the resources that were created during "
        "the `create` step.")
def test_delete_stopped_removes_container(rt: Runtime, bundle: MakeBundle) -> None:
    """delete of a stopped container succeeds; afterwards state errors."""
    cid, _ = stopped(rt, bundle)
    r = rt.delete(cid)
    assert r.ok, f"delete of a stopped container failed:\n{r}"
    assert not rt.state_result(cid).ok, "state still known after delete"


@clause("runtime.md", "Deleting a container MUST delete the resources that were created during "
        "the `create` step.")
def test_delete_removes_cgroup(rt: Runtime, bundle: MakeBundle) -> None:
    """The cgroup the runtime made for the container is gone after delete."""
    cid, _ = running(rt, bundle)
    pid = rt.state(cid)["pid"]
    procs = container_cgroup_file(pid, "pids", "cgroup.procs")
    if procs is None:
        pytest.skip("container cgroup not visible from the host")
    own = container_cgroup_file(os.getpid(), "pids", "cgroup.procs")
    if own is not None and own.parent == procs.parent:
        pytest.skip("the container shares the caller's cgroup (runtime made none)")
    cgdir = procs.parent
    assert rt.kill(cid, "KILL").ok
    assert rt.wait_status(cid, "stopped") == "stopped"
    assert rt.delete(cid).ok
    assert wait_for(lambda: not cgdir.exists(), 3), f"cgroup {cgdir} survives delete"


@clause("runtime.md", "Note that resources associated with the container, but not created by "
        "this container, MUST NOT be deleted.")
def test_delete_keeps_foreign_resources(rt: Runtime, bundle: MakeBundle) -> None:
    """delete leaves the bundle (config, rootfs files, bind-mounted host dir) and a joined
    network namespace (held by another process) intact."""
    holder = spawn_ns_holder("--net")
    try:
        b = bundle(["/bin/sh", "-c", "echo hello > /out/from-container"]).bind_out()
        (b.out / "pre-existing").write_text("keep me")
        (b.path / "sentinel").write_text("bundle file")
        b.config["linux"]["namespaces"] = [
            ns if ns["type"] != "network" else {"type": "network",
                                                "path": f"/proc/{holder.pid}/ns/net"}
            for ns in b.config["linux"]["namespaces"]]
        b.write()
        net_before = ns_inode(holder.pid, "net")
        rootfs_before = snapshot_tree(b.rootfs)
        cid = new_id()
        rt.create_and_start(cid, b)
        assert rt.wait_status(cid, "stopped") == "stopped"
        config_text = b.config_path.read_text()
        assert rt.delete(cid).ok
        assert b.config_path.read_text() == config_text, "config.json changed"
        assert (b.path / "sentinel").read_text() == "bundle file"
        assert (b.out / "pre-existing").read_text() == "keep me"
        assert (b.out / "from-container").read_text().strip() == "hello"
        after = snapshot_tree(b.rootfs)
        missing = [k for k in rootfs_before if after.get(k) != rootfs_before[k]]
        assert not missing, f"rootfs entries removed or changed by delete: {missing[:10]}"
        assert pid_alive(holder.pid) and ns_inode(holder.pid, "net") == net_before, \
            "joined network namespace was destroyed"
    finally:
        holder.stop()
