"""Bad input: refused with one line on stderr that names the problem, a non-zero
exit, and nothing left behind (the leak guard checks mounts, --root, cgroups and
processes after each test; the tests check the container's folder directly).

Engines show this line to users and match on some of it ("does not exist",
"executable file not found"), so the words matter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from .helpers import BundleFactory, Runtime, assert_one_line_error, bind, pid_exists

pytestmark = pytest.mark.root


def refused_create(rt: Runtime, cid: str, bundle: Path, *needles: str) -> str:
    """create and run both refuse ``bundle``, with the same message; nothing is left."""
    messages = []
    for command in ("create", "run"):
        result = (rt.create(cid, bundle) if command == "create" else rt.run(cid, bundle))
        message = assert_one_line_error(result, *needles)
        assert not (rt.root / cid).exists(), f"{command} left its state folder"
        messages.append(message.split(": ", 1)[1])
    assert messages[0] == messages[1]
    return messages[0]


BAD_CONFIGS: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "empty args": (lambda c: c["process"].update(args=[]), ("process.args",)),
    "unknown namespace": (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
                          ("linux.namespaces[6].type",)),
    "relative mount destination": (
        lambda c: c["mounts"].append({"destination": "relative/dir", "type": "tmpfs",
                                      "source": "tmpfs"}),
        ("mounts[7].destination", "relative/dir")),
    "missing rootfs": (lambda c: c["root"].update(path="/nonexistent/rootfs"),
                       ("root.path", "/nonexistent/rootfs")),
    "missing executable": (lambda c: c["process"].update(args=["no-such-program"]),
                           ("no-such-program", "executable file not found")),
    "missing absolute executable": (lambda c: c["process"].update(args=["/bin/no-such"]),
                                    ("/bin/no-such",)),
    "intelRdt": (lambda c: c["linux"].update(intelRdt={"closID": "pyruntime-it"}),
                 ("linux.intelRdt", "not supported")),
    "timeOffsets": (lambda c: c["linux"].update(timeOffsets={"monotonic": {"secs": 1}}),
                    ("linux.timeOffsets", "not supported")),
    # a name no host can have: this test runs in the host's network namespace
    "netDevices": (lambda c: c["linux"].update(netDevices={"dummy/0": {}}),
                   ('linux.netDevices["dummy/0"]', "must not contain '/'")),
    "sysctl of the host": (lambda c: c["linux"].update(sysctl={"vm.swappiness": "10"}),
                           ("linux.sysctl", "vm.swappiness")),
    "terminal without a console socket": (lambda c: c["process"].update(terminal=True),
                                          ("process.terminal", "--console-socket")),
    "unknown capability": (lambda c: c["process"]["capabilities"].update(bounding=["CAP_NOPE"]),
                           ("CAP_NOPE",)),
    "unknown rlimit": (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOPE",
                                                               "soft": 1, "hard": 1}]),
                       ("RLIMIT_NOPE",)),
    "wrong type": (lambda c: c["process"].update(cwd=42), ("process.cwd",)),
    "unsupported version": (lambda c: c.update(ociVersion="2.0.0"), ("ociVersion",)),
    "missing bind source": (
        lambda c: c["mounts"].append({"destination": "/mnt/a", "type": "bind",
                                      "source": "/nonexistent/source", "options": ["rbind"]}),
        ("mount", "/nonexistent/source")),
    "hostname without uts namespace": (
        lambda c: c["linux"].update(namespaces=[n for n in c["linux"]["namespaces"]
                                                if n["type"] != "uts"]),
        ("hostname", "uts")),
    "no mount namespace": (
        lambda c: c["linux"].update(namespaces=[n for n in c["linux"]["namespaces"]
                                                if n["type"] != "mount"]),
        ("mount namespace",)),
    "capability the host lacks": (
        lambda c: c["process"]["capabilities"]["bounding"].append("CAP_SYS_RESOURCE"),
        ("CAP_SYS_RESOURCE", "not available")),
    "rlimit above the host's ceiling": (
        lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024,
                                                "hard": 1 << 40}]),
        ("RLIMIT_NOFILE",)),
    "unknown filesystem": (
        lambda c: c["mounts"].append({"destination": "/mnt/a", "type": "nosuchfs",
                                      "source": "none"}),
        ("mount", "/mnt/a")),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_refused(rt: Runtime, bundles: BundleFactory, cid: str, case: str) -> None:
    edit, needles = BAD_CONFIGS[case]
    refused_create(rt, cid, bundles.make(["true"], edit=edit), *needles)


def test_malformed_json(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    message = refused_create(rt, cid, bundles.write('{"ociVersion": "1.3.0", '), "config.json")
    assert "json" in message.lower()


def test_config_that_is_not_an_object(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    refused_create(rt, cid, bundles.write("[]"), "config.json")


def test_missing_config(rt: Runtime, test_dir: Path, cid: str) -> None:
    empty = test_dir / "empty-bundle"
    empty.mkdir()
    refused_create(rt, cid, empty, "config.json")


def test_missing_bundle(rt: Runtime, test_dir: Path, cid: str) -> None:
    refused_create(rt, cid, test_dir / "no-such-bundle", "no-such-bundle")


def test_failing_mount_names_the_step(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """A failure inside the container's setup says which step failed and on what,
    and no mount of it stays (the guard checks the host's table)."""
    message = refused_create(rt, cid, bundles.make(["true"], extra_mounts=[
        bind("/nonexistent/bind-source", "/mnt/a")]))
    assert message.startswith("mount: "), message
    assert "/nonexistent/bind-source" in message and "no such file" in message


def test_pid_file_that_cannot_be_written(rt: Runtime, bundles: BundleFactory, cid: str,
                                         test_dir: Path) -> None:
    """The container was already made when the pid file fails: it must be undone."""
    pid_file = test_dir / "no-such-dir" / "pid"
    result = rt.create(cid, bundles.make(["true"]), "--pid-file", str(pid_file))
    assert_one_line_error(result, "pid file", str(pid_file))
    assert not (rt.root / cid).exists()


# --- ids ------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", "../escape", "", "x y", "a\nb"])
def test_invalid_id(rt: Runtime, bundles: BundleFactory, test_dir: Path, bad_id: str) -> None:
    """An id is a folder name under --root: one that could leave it is refused, and
    nothing is made, not even outside --root."""
    before = sorted(p.name for p in test_dir.iterdir())
    bundle = bundles.make(["true"])
    for command in ("create", "run"):
        result = rt(command, "--bundle", str(bundle), bad_id)
        assert_one_line_error(result, "invalid container id")
    assert sorted(p.name for p in test_dir.iterdir()) == sorted([*before, bundle.name])
    assert not rt.root.exists() or list(rt.root.iterdir()) == []


def test_overlong_id(rt: Runtime, bundles: BundleFactory) -> None:
    result = rt("create", "--bundle", str(bundles.make(["true"])), "x" * 1025)
    assert_one_line_error(result, "invalid container id")


def test_duplicate_id(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """The second create fails, and the first container is exactly as it was: same
    pid, same state, and it still starts and runs its own process."""
    first = bundles.make(["echo", "first"])
    rt.create(cid, first).ok()
    state = rt.state(cid)
    result = rt("create", "--bundle", str(bundles.make(["echo", "second"])), cid)
    assert_one_line_error(result, "already exists", cid)
    assert rt.state(cid) == state
    assert pid_exists(state["pid"])
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    assert rt.output(cid) == "first\n"
    rt.delete(cid).ok()


# --- commands on the wrong container ----------------------------------------------
@pytest.mark.parametrize("command", [["start"], ["state"], ["kill"], ["kill", "--all"],
                                     ["delete"]])
def test_command_on_an_unknown_id(rt: Runtime, cid: str, command: list[str]) -> None:
    result = rt(*command, cid)
    assert_one_line_error(result, f"container {cid} does not exist")


def test_unknown_id_with_other_containers_present(rt: Runtime, bundles: BundleFactory,
                                                  cid: str) -> None:
    """Not found is about the id, not about an empty --root."""
    rt.create(cid, bundles.make(["true"])).ok()
    try:
        assert_one_line_error(rt("state", f"{cid}-other"), "does not exist")
    finally:
        rt.delete(cid, force=True).ok()


@pytest.mark.parametrize("signal", ["SIGFOO", "FOO", "65", "-9", "RTMIN+99"])
def test_unknown_signal(rt: Runtime, bundles: BundleFactory, cid: str, signal: str) -> None:
    """Refused before anything is sent: the container is still created."""
    rt.create(cid, bundles.make(["true"])).ok()
    state = rt.state(cid)
    result = rt.kill(cid, signal)
    assert_one_line_error(result, "signal")
    assert rt.state(cid) == state
    rt.delete(cid, force=True).ok()


def test_start_of_a_running_container(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    rt.create(cid, bundles.make(["sleep", "1000"])).ok()
    rt.start(cid).ok()
    state = rt.state(cid)
    assert_one_line_error(rt.start(cid), "already running")
    assert rt.state(cid) == state
    rt.delete(cid, force=True).ok()


def test_delete_of_a_running_container_without_force(rt: Runtime, bundles: BundleFactory,
                                                     cid: str) -> None:
    """Refused, and the container is untouched: still running, same pid."""
    rt.create(cid, bundles.make(["sleep", "1000"])).ok()
    rt.start(cid).ok()
    state = rt.state(cid)
    assert_one_line_error(rt.delete(cid), cid, "running")
    assert rt.state(cid) == state
    assert pid_exists(state["pid"])
    rt.delete(cid, force=True).ok()


def test_delete_of_a_created_container_without_force(rt: Runtime, bundles: BundleFactory,
                                                     cid: str) -> None:
    """runc's rule (engines depend on it): a created container is deleted without
    --force, its init killed, and process.args never run."""
    rt.create(cid, bundles.make(["true"])).ok()
    pid = rt.state(cid)["pid"]
    rt.delete(cid).ok()
    assert not (rt.root / cid).exists()
    assert not pid_exists(pid)


def test_kill_of_a_stopped_container(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    rt.create(cid, bundles.make(["true"])).ok()
    rt.start(cid).ok()
    rt.wait_status(cid, "stopped")
    assert_one_line_error(rt.kill(cid, "KILL"), "not running")
    rt.delete(cid).ok()


@pytest.mark.parametrize("argv", [["frobnicate"], ["create"], ["create", "--bogus", "x"],
                                  ["list", "--format", "yaml"], ["exec", "x", "ls"],
                                  ["create", "--preserve-fds", "many", "x"]])
def test_bad_command_lines(rt: Runtime, argv: list[str]) -> None:
    """Usage errors are one line too, and never create the --root folder's entries."""
    assert_one_line_error(rt(*argv))
    assert not rt.root.exists() or list(rt.root.iterdir()) == []


def test_state_output_is_json_even_for_a_created_container(rt: Runtime, bundles: BundleFactory,
                                                           cid: str) -> None:
    """Not bad input, but the other side of it: stdout of a successful command is
    only the JSON (nothing mixed in that would break an engine's parser)."""
    rt.create(cid, bundles.make(["true"])).ok()
    result = rt("state", cid).ok()
    rt.delete(cid, force=True).ok()
    assert json.loads(result.stdout)["id"] == cid
    assert result.stderr == ""
