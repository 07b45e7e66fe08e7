"""Checks of config.md on Linux: version, root, mounts, process, hostname, hooks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conformance.helpers import (Bundle, Probe, Runtime, cap_mask, clause, new_id, ns_inode,
                                 pid_alive, run_probe, wait_for)

MakeBundle = Callable[..., Bundle]
SLEEP = ["/bin/sleep", "300"]


def run_sh(rt: Runtime, b: Bundle, script: str) -> str:
    """Run ``sh -c script`` as the container process; return its stdout."""
    b.config["process"]["args"] = ["/bin/sh", "-c", script]
    return rt.run(b)


def create_fails(rt: Runtime, b: Bundle) -> bool:
    """True if create errors and no container is left under that id."""
    cid = new_id()
    r = rt.create(cid, b)
    if r.ok:
        return False
    assert not rt.state_result(cid).ok, "create failed but left a container"
    return True


# --------------------------------------------------------------------------
# Version, root
# --------------------------------------------------------------------------


@clause("config.md", "For example, if a configuration is compliant with version 1.1 of this "
        "specification, it is compatible with all runtimes that support any 1.1 or later release "
        "of this specification")
def test_accepts_current_oci_version(rt: Runtime, bundle: MakeBundle) -> None:
    """A bundle declaring ociVersion 1.3.0 (the version checked here) is run."""
    b = bundle(["/bin/sh", "-c", "echo ok"])
    b.config["ociVersion"] = "1.3.0"
    assert rt.run(b).strip() == "ok"


@clause("config.md", "If true then the root filesystem MUST be read-only inside the container, "
        "defaults to false.")
def test_root_readonly(rt: Runtime, bundle: MakeBundle) -> None:
    """root.readonly=true: writing to / fails and / is mounted ro."""
    b = bundle()
    b.config["root"]["readonly"] = True
    out = run_sh(rt, b, "touch /newfile 2>/dev/null && echo WROTE || echo REFUSED; "
                        "awk '$5==\"/\"{print \"opts=\" $6}' /proc/self/mountinfo")
    assert "REFUSED" in out, f"could write to a read-only root: {out}"
    opts = [line for line in out.splitlines() if line.startswith("opts=")]
    assert opts and "ro" in opts[-1][5:].split(","), out


@clause("config.md", "If true then the root filesystem MUST be read-only inside the container, "
        "defaults to false.")
def test_root_writable_by_default(rt: Runtime, bundle: MakeBundle) -> None:
    """Without root.readonly the root is writable (the default is false)."""
    b = bundle()
    del b.config["root"]["readonly"]
    out = run_sh(rt, b, "touch /newfile && echo WROTE")
    assert "WROTE" in out and (b.rootfs / "newfile").exists()


@clause("config.md", "On POSIX platforms, `path` is either an absolute path or a relative path "
        "to the bundle.")
def test_root_absolute_path(rt: Runtime, bundle: MakeBundle) -> None:
    """An absolute root.path works like the relative one."""
    b = bundle()
    b.config["root"]["path"] = str(b.rootfs)
    (b.rootfs / "marker").write_text("abs")
    assert run_sh(rt, b, "cat /marker").strip() == "abs"


# --------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------


@clause("config.md", "The runtime MUST mount entries in the listed order.")
def test_mounts_in_listed_order(rt: Runtime, bundle: MakeBundle) -> None:
    """A tmpfs at /mnt/a then a bind at /mnt/a/b: the bind is visible only if mounted second."""
    b = bundle()
    src = b.path / "bindsrc"
    src.mkdir()
    (src / "file").write_text("from-host")
    b.config["mounts"] += [
        {"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/mnt/a/b", "type": "bind", "source": str(src), "options": ["rbind"]},
    ]
    assert run_sh(rt, b, "cat /mnt/a/b/file").strip() == "from-host"


@clause("config.md", "Runtimes MUST/SHOULD/MAY implement the following option strings for Linux:")
def test_mount_options_applied(rt: Runtime, bundle: MakeBundle) -> None:
    """tmpfs with ro,nosuid,nodev,noexec,noatime and a bind with ro appear so in mountinfo."""
    b = bundle()
    src = b.path / "bindsrc"
    src.mkdir()
    b.config["mounts"] += [
        {"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro", "nosuid", "nodev", "noexec", "noatime", "size=1m"]},
        {"destination": "/mnt/b", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
    ]
    p = run_probe(rt, b)
    t = p.mount_at("/mnt/t")
    assert t.fstype == "tmpfs", t
    missing = {"ro", "nosuid", "nodev", "noexec", "noatime"} - t.options
    assert not missing, f"tmpfs mount lacks {missing}: {t}"
    bm = p.mount_at("/mnt/b")
    assert "ro" in bm.options, f"bind mount not read-only: {bm}"


@clause("config.md", "For compatibility with old tools and configurations, it MAY be a relative "
        "path, in which case it MUST be interpreted as relative to \"/\".")
def test_mount_relative_destination(rt: Runtime, bundle: MakeBundle) -> None:
    """A relative destination "mnt/rel" ends up at /mnt/rel."""
    b = bundle()
    b.config["mounts"].append({"destination": "mnt/rel", "type": "tmpfs", "source": "tmpfs",
                               "options": ["size=1m"]})
    p = run_probe(rt, b)
    assert p.mount_at("/mnt/rel").fstype == "tmpfs"


@clause("config-linux.md", "The following filesystems SHOULD be made available in each "
        "container's filesystem:")
def test_default_filesystems(rt: Runtime, bundle: MakeBundle) -> None:
    """/proc (proc), /sys (sysfs), /dev/pts (devpts), /dev/shm (tmpfs) are mounted."""
    p = run_probe(rt, bundle())
    for mp, fstype in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"),
                       ("/dev/shm", "tmpfs")):
        assert p.mount_at(mp).fstype == fstype, f"{mp} is not {fstype}"


# --------------------------------------------------------------------------
# Process
# --------------------------------------------------------------------------


@clause("config.md", "**`args`** (array of strings, OPTIONAL) with similar semantics to "
        "[IEEE Std 1003.1-2008 `execvp`'s *argv*]")
def test_process_args_exact(rt: Runtime, bundle: MakeBundle) -> None:
    """argv reaches the program unchanged (spaces, empty strings)."""
    b = bundle(["/bin/sh", "-c", 'printf "%s|" "$0" "$@"', "a b", "", "c"])
    assert rt.run(b) == "a b||c|"


@clause("config.md", "This specification extends the IEEE standard in that at least one entry is "
        "REQUIRED (non-Windows), and that entry is used with the same semantics as `execvp`'s "
        "*file*.")
def test_process_args_path_lookup(rt: Runtime, bundle: MakeBundle) -> None:
    """args[0] without a slash is looked up in the PATH of process.env."""
    b = bundle(["echo", "found"])
    b.config["process"]["env"] = ["PATH=/bin"]
    assert rt.run(b).strip() == "found"


@clause("config.md", "**`env`** (array of strings, OPTIONAL) with the same semantics as "
        "[IEEE Std 1003.1-2008's `environ`]")
def test_process_env(rt: Runtime, bundle: MakeBundle) -> None:
    """Every process.env entry is in the process's environment, byte for byte."""
    b = bundle()
    env = ["PATH=/bin:/usr/bin", "CONF_A=1", "CONF_B=with space", "CONF_EMPTY=", "CONF_EQ=a=b"]
    b.config["process"]["env"] = env
    got = run_probe(rt, b).all("env")
    missing = [e for e in env if e not in got]
    assert not missing, f"missing env entries {missing}; process env: {got}"


@clause("config.md", "**`cwd`** (string, REQUIRED) is the working directory that will be set for "
        "the executable.")
def test_process_cwd(rt: Runtime, bundle: MakeBundle) -> None:
    """The process starts in process.cwd."""
    b = bundle()
    b.config["process"]["cwd"] = "/work"
    assert run_probe(rt, b).get("cwd") == "/work"


@clause("config.md", "**`uid`** (int, REQUIRED) specifies the user ID in the "
        "[container namespace](glossary.md#container-namespace).")
def test_process_user(rt: Runtime, bundle: MakeBundle) -> None:
    """uid, gid and additionalGids become the real/effective/saved ids and groups."""
    b = bundle()
    b.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 1002]}
    p = run_probe(rt, b)
    assert p.get("Uid").split() == ["1000"] * 4, p.get("Uid")
    assert p.get("Gid").split() == ["1001"] * 4, p.get("Gid")
    groups = set(p.get("Groups").split()) if p.all("Groups") else set()
    assert {"5", "1002"} <= groups <= {"5", "1002", "1001"}, f"Groups: {groups}"


@clause("config.md", "**`umask`** (int, OPTIONAL) specifies the [umask][umask_2] of the user.")
def test_process_umask(rt: Runtime, bundle: MakeBundle) -> None:
    """user.umask 0o027 is the process umask."""
    b = bundle()
    b.config["process"]["user"]["umask"] = 0o027
    p = run_probe(rt, b)
    assert p.get("umask") == "0027", f"umask {p.get('umask')}"


@clause("config.md", "`rlim.rlim_cur` MUST match the configured value.")
def test_rlimits(rt: Runtime, bundle: MakeBundle) -> None:
    """RLIMIT_NOFILE 512/1024 and RLIMIT_CORE 0/4096 are the soft/hard limits."""
    b = bundle()
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                                      {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]
    lim = run_probe(rt, b).limits()
    assert lim.get("Max open files") == ("512", "1024"), lim
    assert lim.get("Max core file size") == ("0", "4096"), lim


@clause("config.md", "The runtime MUST [generate an error](runtime.md#errors) for any values "
        "which cannot be mapped to a relevant kernel interface.")
def test_rlimits_unknown_type_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """An rlimit type the kernel does not know makes create fail."""
    b = bundle()
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_CONFORMANCE_BOGUS", "soft": 1, "hard": 1}]
    assert create_fails(rt, b), "unknown rlimit type accepted"


@clause("config.md", "If `rlimits` contains duplicated entries with same `type`, the runtime MUST "
        "[generate an error](runtime.md#errors).")
def test_rlimits_duplicate_errors(rt: Runtime, bundle: MakeBundle) -> None:
    """Two RLIMIT_NOFILE entries make create fail."""
    b = bundle()
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512},
                                      {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 256}]
    assert create_fails(rt, b), "duplicate rlimits accepted"


@clause("config.md", "**`capabilities`** (object, OPTIONAL) is an object containing arrays that "
        "specifies the sets of capabilities for the process.")
def test_capabilities_root(rt: Runtime, bundle: MakeBundle) -> None:
    """uid 0 with bounding=effective=permitted={CHOWN,KILL}: exactly those sets, nothing inherited."""
    caps = ["CAP_CHOWN", "CAP_KILL"]
    b = bundle()
    b.config["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    p = run_probe(rt, b)
    m = cap_mask(caps)
    assert p.cap("CapBnd") == m, f"CapBnd {p.get('CapBnd')} != {m:016x}"
    assert p.cap("CapPrm") == m, f"CapPrm {p.get('CapPrm')} != {m:016x}"
    assert p.cap("CapEff") == m, f"CapEff {p.get('CapEff')} != {m:016x}"
    assert p.cap("CapInh") == 0 and p.cap("CapAmb") == 0, (p.get("CapInh"), p.get("CapAmb"))


@clause("config.md", "**`ambient`** (array of strings, OPTIONAL) the `ambient` field is an array "
        "of ambient capabilities that are kept for the process.")
def test_capabilities_ambient_non_root(rt: Runtime, bundle: MakeBundle) -> None:
    """uid 1000 with all five sets {NET_BIND_SERVICE,KILL}: each set is exactly that."""
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    b = bundle()
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.config["process"]["capabilities"] = {k: caps for k in
                                           ("bounding", "effective", "permitted", "inheritable",
                                            "ambient")}
    p = run_probe(rt, b)
    m = cap_mask(caps)
    for s in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"):
        assert p.cap(s) == m, f"{s} {p.get(s)} != {m:016x}"


@clause("config.md", "Any value which cannot be mapped to a relevant kernel interface, or cannot "
        "be granted otherwise MUST be [logged as a warning](runtime.md#warnings) by the runtime.")
def test_capabilities_unknown_is_only_a_warning(rt: Runtime, bundle: MakeBundle) -> None:
    """An unknown capability name is a warning, and a warning does not change the flow
    (runtime.md: "it MUST continue as if the warning had not been logged"): the container runs."""
    b = bundle(["/bin/sh", "-c", "echo ran"])
    caps = b.config["process"]["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps[k] = caps[k] + ["CAP_CONFORMANCE_BOGUS"]
    assert rt.run(b).strip() == "ran"


@clause("config.md", "**`noNewPrivileges`** (bool, OPTIONAL) setting `noNewPrivileges` to true "
        "prevents the process from gaining additional privileges.")
@pytest.mark.parametrize("value", [True, False])
def test_no_new_privileges(rt: Runtime, bundle: MakeBundle, value: bool) -> None:
    """noNewPrivileges true/false shows as NoNewPrivs 1/0 in /proc/self/status."""
    b = bundle()
    b.config["process"]["noNewPrivileges"] = value
    assert run_probe(rt, b).get("NoNewPrivs") == ("1" if value else "0")


@clause("config.md", "If `oomScoreAdj` is set, the runtime MUST set `oom_score_adj` to the given "
        "value.")
def test_oom_score_adj_set(rt: Runtime, bundle: MakeBundle) -> None:
    """oomScoreAdj 432 is the process's oom_score_adj."""
    b = bundle()
    b.config["process"]["oomScoreAdj"] = 432
    assert run_probe(rt, b).get("oom_score_adj") == "432"


def _set_oom_123() -> None:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("123")


@clause("config.md", "If `oomScoreAdj` is not set, the runtime MUST NOT change the value of "
        "`oom_score_adj`.")
def test_oom_score_adj_unset_unchanged(rt: Runtime, bundle: MakeBundle) -> None:
    """Without oomScoreAdj, the container keeps the caller's value (123, set for the runtime)."""
    b = bundle()
    b.config["process"]["args"] = ["/probe.sh"]
    cid = new_id()
    r = rt.create(cid, b, preexec=_set_oom_123)
    assert r.ok, f"create failed:\n{r}"
    assert rt.start(cid).ok
    assert rt.wait_status(cid, "stopped") == "stopped"
    assert Probe.parse(rt.container_output(cid)).get("oom_score_adj") == "123"


@clause("config.md", "**`hostname`** (string, OPTIONAL) specifies the container's hostname as "
        "seen by processes running inside the container.")
def test_hostname(rt: Runtime, bundle: MakeBundle) -> None:
    """hostname is what the process sees (new UTS namespace)."""
    b = bundle(hostname="conf-host-42")
    assert run_probe(rt, b).get("hostname") == "conf-host-42"


@clause("config.md", "**`domainname`** (string, OPTIONAL) specifies the container's domainname "
        "as seen by processes running inside the container.")
def test_domainname(rt: Runtime, bundle: MakeBundle) -> None:
    """domainname is what the process sees (new UTS namespace)."""
    b = bundle(domainname="conf.example")
    assert run_probe(rt, b).get("domainname") == "conf.example"


# --------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------

HOOK_SCRIPT = r"""#!/bin/sh
# hook.sh NAME DIR [EXIT [SLEEP]]: record state (stdin), order, namespaces, args, env.
name=$1; dir=$2
cat > "$dir/state-$name.json"
echo "$name" >> "$dir/log"
for n in pid uts net mnt ipc; do echo "$n=$(readlink /proc/self/ns/$n)"; done > "$dir/ns-$name"
echo "$*" > "$dir/args-$name"
env > "$dir/env-$name"
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$dir/state-$name.json")
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" > "$dir/cmdline-$name"
fi
[ -n "$4" ] && exec sleep "$4"
exit "${3:-0}"
"""

HOOK_TYPES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"]
#: Hooks run in the container namespace find their path (and /out) in the container.
IN_CONTAINER = {"startContainer"}


class Hooks:
    """Hook scripts for a bundle; each records into the bundle's out/ dir."""

    def __init__(self, b: Bundle) -> None:
        self.b = b
        host = b.path / "hook.sh"
        host.write_text(HOOK_SCRIPT)
        host.chmod(0o755)
        inside = b.rootfs / "hooks" / "hook.sh"
        inside.write_text(HOOK_SCRIPT)
        inside.chmod(0o755)
        b.bind_out()
        b.config.setdefault("hooks", {})

    def add(self, kind: str, name: str | None = None, exit_code: int = 0,
            sleep: int | None = None, **extra: Any) -> None:
        name = name or kind
        if kind in IN_CONTAINER:
            path, out = "/hooks/hook.sh", "/out"
        else:
            path, out = str(self.b.path / "hook.sh"), str(self.b.out)
        args = ["hook.sh", name, out, str(exit_code)] + ([str(sleep)] if sleep else [])
        self.b.config["hooks"].setdefault(kind, []).append({"path": path, "args": args, **extra})

    def log(self) -> list[str]:
        p = self.b.out / "log"
        return p.read_text().split() if p.exists() else []

    def state(self, name: str) -> dict[str, Any]:
        p = self.b.out / f"state-{name}.json"
        assert p.exists(), f"hook {name} did not run (log: {self.log()})"
        text = p.read_text()
        try:
            state: dict[str, Any] = json.loads(text)
            return state
        except json.JSONDecodeError:
            raise AssertionError(f"hook {name} got no JSON state on stdin: {text!r}") from None

    def ns(self, name: str) -> dict[str, str]:
        p = self.b.out / f"ns-{name}"
        assert p.exists(), f"hook {name} did not run (log: {self.log()})"
        return dict(line.split("=", 1) for line in p.read_text().splitlines() if "=" in line)


def all_hooks_bundle(bundle: MakeBundle) -> tuple[Bundle, Hooks]:
    b = bundle(["/bin/sh", "-c", "echo process >> /out/log; exec sleep 300"])
    h = Hooks(b)
    h.add("prestart", "prestart-1")
    h.add("prestart", "prestart-2")
    for kind in HOOK_TYPES[1:]:
        h.add(kind)
    return b, h


@clause("config.md", "Hooks MUST be called in the listed order.")
def test_hooks_order(rt: Runtime, bundle: MakeBundle) -> None:
    """create runs prestart (in array order), createRuntime, createContainer; start runs
    startContainer, then the process; delete runs poststop."""
    b, h = all_hooks_bundle(bundle)
    cid = new_id()
    r = rt.create(cid, b)
    assert r.ok, f"create failed:\n{r}"
    assert h.log() == ["prestart-1", "prestart-2", "createRuntime", "createContainer"], h.log()
    assert rt.start(cid).ok
    assert wait_for(lambda: "process" in h.log(), 5), h.log()
    log = h.log()
    assert log[:5] == ["prestart-1", "prestart-2", "createRuntime", "createContainer",
                       "startContainer"], log
    assert "poststart" in log, log
    assert rt.kill(cid).ok and rt.wait_status(cid, "stopped") == "stopped"
    assert rt.delete(cid).ok
    assert h.log()[-1] == "poststop" and "poststop" not in log, h.log()


@clause("config.md", "The `poststart` hooks MUST be called [after the user-specified process is "
        "executed](runtime.md#lifecycle) but before the [`start`](runtime.md#start) operation "
        "returns.")
def test_poststart_after_exec_before_start_returns(rt: Runtime, bundle: MakeBundle) -> None:
    """When start returns, poststart has run, and at that time the container pid was
    already executing the user program (its cmdline is process.args)."""
    b = bundle(SLEEP)
    h = Hooks(b)
    h.add("poststart")
    cid = new_id()
    assert rt.create(cid, b).ok
    assert rt.start(cid).ok
    assert "poststart" in h.log(), "poststart had not run when start returned"
    cmd = (b.out / "cmdline-poststart").read_text().split() if \
        (b.out / "cmdline-poststart").exists() else []
    assert cmd[:2] == ["/bin/sleep", "300"], f"at poststart the container ran {cmd}"


@clause("config.md", "The `poststop` hooks MUST be called [after the container is deleted]"
        "(runtime.md#lifecycle) but before the [`delete`](runtime.md#delete) operation returns.")
def test_poststop_before_delete_returns(rt: Runtime, bundle: MakeBundle) -> None:
    """poststop has run when delete returns, and not before delete."""
    b = bundle(["/bin/true"])
    h = Hooks(b)
    h.add("poststop")
    cid = new_id()
    rt.create_and_start(cid, b)
    assert rt.wait_status(cid, "stopped") == "stopped"
    time.sleep(0.1)
    assert "poststop" not in h.log(), "poststop ran before delete"
    assert rt.delete(cid).ok
    assert "poststop" in h.log(), "poststop had not run when delete returned"


@clause("config.md", "The [state](runtime.md#state) of the container MUST be passed to hooks over "
        "stdin so that they may do work appropriate to the current state of the container.")
def test_hooks_receive_state_on_stdin(rt: Runtime, bundle: MakeBundle) -> None:
    """Every hook reads a JSON state with this container's id, bundle and ociVersion."""
    b, h = all_hooks_bundle(bundle)
    cid = new_id()
    rt.create_and_start(cid, b)
    assert rt.kill(cid).ok and rt.wait_status(cid, "stopped") == "stopped"
    assert rt.delete(cid).ok
    for name in ["prestart-1", "createRuntime", "createContainer", "startContainer",
                 "poststart", "poststop"]:
        st = h.state(name)
        assert st.get("id") == cid, f"{name}: {st}"
        assert os.path.realpath(st.get("bundle", "")) == os.path.realpath(b.path), f"{name}: {st}"
        assert st.get("ociVersion"), f"{name}: {st}"
        assert st.get("status") in ("creating", "created", "running", "stopped"), f"{name}: {st}"


@clause("runtime.md", "For hooks executed in the runtime namespace, it is the pid as seen by the "
        "runtime.")
def test_hook_state_pid_runtime_namespace(rt: Runtime, bundle: MakeBundle) -> None:
    """createRuntime and poststart get the container pid as the host sees it."""
    b, h = all_hooks_bundle(bundle)
    cid = new_id()
    rt.create_and_start(cid, b)
    pid = rt.state(cid)["pid"]
    for name in ("createRuntime", "poststart"):
        assert h.state(name).get("pid") == pid, f"{name}: {h.state(name)} (container pid {pid})"


@clause("runtime.md", "For hooks executed in the container namespace, it is the pid as seen by the "
        "container.")
def test_hook_state_pid_container_namespace(rt: Runtime, bundle: MakeBundle) -> None:
    """createContainer and startContainer (container namespace) get pid 1: the container
    process as seen in the container's new pid namespace."""
    b, h = all_hooks_bundle(bundle)
    cid = new_id()
    rt.create_and_start(cid, b)
    for name in ("createContainer", "startContainer"):
        assert h.state(name).get("pid") == 1, f"{name}: {h.state(name)}"


@clause("config.md", "The `prestart` hooks MUST be executed in the "
        "[runtime namespace](glossary.md#runtime-namespace).")
def test_runtime_namespace_hooks(rt: Runtime, bundle: MakeBundle) -> None:
    """prestart, createRuntime, poststart and poststop run in the runtime's pid/uts/net/ipc
    namespaces (the container has new ones)."""
    b, h = all_hooks_bundle(bundle)
    cid = new_id()
    rt.create_and_start(cid, b)
    assert rt.kill(cid).ok and rt.wait_status(cid, "stopped") == "stopped"
    assert rt.delete(cid).ok
    for name in ("prestart-1", "createRuntime", "poststart", "poststop"):
        ns = h.ns(name)
        for t in ("pid", "uts", "net", "ipc"):
            assert ns[t] == ns_inode("self", t), f"{name} ran in another {t} namespace"


@clause("config.md", "The `createContainer` hooks MUST be executed in the "
        "[container namespace](glossary.md#container-namespace).")
@pytest.mark.parametrize("kind", ["createContainer", "startContainer"])
def test_container_namespace_hooks(rt: Runtime, bundle: MakeBundle, kind: str) -> None:
    """createContainer/startContainer run in the container's mount/uts/net/ipc/pid namespaces."""
    b = bundle(SLEEP)
    h = Hooks(b)
    h.add(kind)
    cid = new_id()
    rt.create_and_start(cid, b)
    pid = rt.state(cid)["pid"]
    ns = h.ns(kind)
    for t in ("mnt", "uts", "net", "ipc", "pid"):
        assert ns[t] == ns_inode(pid, t), f"{kind} not in the container's {t} namespace"


@clause("config.md", "**`env`** (array of strings, OPTIONAL) with the same semantics as "
        "[IEEE Std 1003.1-2008's `environ`][ieee-1003.1-2008-xbd-c8.1].")
def test_hook_args_and_env(rt: Runtime, bundle: MakeBundle) -> None:
    """A hook gets its args as argv and exactly its env (not the runtime's environment)."""
    b = bundle(SLEEP)
    h = Hooks(b)
    h.add("createRuntime", env=["CONF_HOOK=yes", "PATH=/usr/bin:/bin"])
    b.config["hooks"]["createRuntime"][0]["args"] += ["", "extra arg"]
    cid = new_id()
    r = rt.create(cid, b, preexec=lambda: os.environ.__setitem__("CONF_LEAK", "1"))
    assert r.ok, f"create failed:\n{r}"
    args = (b.out / "args-createRuntime").read_text().strip()
    assert args == f"createRuntime {b.out} 0  extra arg", args
    env = (b.out / "env-createRuntime").read_text().splitlines()
    assert "CONF_HOOK=yes" in env, env
    assert "CONF_LEAK=1" not in env, "the runtime's own environment leaked into the hook"


@clause("runtime.md", "If any `prestart` hook fails, the runtime MUST [generate an error]"
        "(#errors), stop the container, and continue the lifecycle at step 12.")
@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_create_hook_failure(rt: Runtime, bundle: MakeBundle, kind: str) -> None:
    """A failing create-phase hook makes create error; no container remains and the
    process never runs."""
    b = bundle(["/bin/sh", "-c", "echo process >> /out/log; exec sleep 300"])
    h = Hooks(b)
    h.add(kind, exit_code=1)
    cid = new_id()
    r = rt.create(cid, b)
    assert not r.ok, f"create succeeded although the {kind} hook failed:\n{r}"
    st = rt.status(cid)
    assert st in (None, "stopped"), f"container left in status {st}"
    rt.start(cid)
    time.sleep(0.2)
    assert "process" not in h.log(), "the process ran although a hook failed"


@clause("runtime.md", "The [`poststop` hooks](config.md#poststop) MUST be invoked by the runtime.")
def test_create_hook_failure_runs_poststop(rt: Runtime, bundle: MakeBundle) -> None:
    """After a failing createRuntime hook the lifecycle continues at step 12, so step 13
    (poststop hooks) runs too."""
    b = bundle(SLEEP)
    h = Hooks(b)
    h.add("createRuntime", exit_code=1)
    h.add("poststop")
    cid = new_id()
    assert not rt.create(cid, b).ok
    rt.delete(cid, force=True)
    assert "poststop" in h.log(), f"poststop not invoked after a failed create: {h.log()}"


@clause("runtime.md", "If any `startContainer` hook fails, the runtime MUST [generate an error]"
        "(#errors), stop the container, and continue the lifecycle at step 12.")
def test_start_container_hook_failure(rt: Runtime, bundle: MakeBundle) -> None:
    """A failing startContainer hook makes start error; the process never runs and the
    container is stopped (or gone)."""
    b = bundle(["/bin/sh", "-c", "echo process >> /out/log; exec sleep 300"])
    h = Hooks(b)
    h.add("startContainer", exit_code=1)
    cid = new_id()
    assert rt.create(cid, b).ok
    r = rt.start(cid)
    assert not r.ok, f"start succeeded although startContainer failed:\n{r}"
    assert rt.wait_status(cid, "stopped", 5) in (None, "stopped")
    assert "process" not in h.log()


@clause("runtime.md", "If any `poststart` hook fails, the runtime MUST [generate an error]"
        "(#errors), stop the container, and continue the lifecycle at step 12.")
def test_poststart_hook_failure(rt: Runtime, bundle: MakeBundle) -> None:
    """A failing poststart hook makes start error and the container is stopped (or gone)."""
    b = bundle(SLEEP)
    h = Hooks(b)
    h.add("poststart", exit_code=1)
    cid = new_id()
    assert rt.create(cid, b).ok
    pid = rt.state(cid)["pid"]
    r = rt.start(cid)
    assert not r.ok, f"start succeeded although poststart failed:\n{r}"
    st = rt.wait_status(cid, "stopped", 5)
    assert st in (None, "stopped"), f"container still {st} after a failed poststart"
    assert wait_for(lambda: not pid_alive(pid), 5), "container process still alive"


@clause("runtime.md", "If any `poststop` hook fails, the runtime MUST [log a warning](#warnings), "
        "but the remaining hooks and lifecycle continue as if the hook had succeeded.")
def test_poststop_hook_failure(rt: Runtime, bundle: MakeBundle) -> None:
    """A failing first poststop hook: delete still succeeds, the second poststop runs, the
    container is gone."""
    b = bundle(["/bin/true"])
    h = Hooks(b)
    h.add("poststop", "poststop-1", exit_code=1)
    h.add("poststop", "poststop-2")
    cid = new_id()
    rt.create_and_start(cid, b)
    assert rt.wait_status(cid, "stopped") == "stopped"
    r = rt.delete(cid)
    assert r.ok, f"delete failed because of a poststop hook:\n{r}"
    assert h.log() == ["poststop-1", "poststop-2"], h.log()
    assert not rt.state_result(cid).ok


@clause("config.md", "**`timeout`** (int, OPTIONAL) is the number of seconds before aborting "
        "the hook.")
def test_hook_timeout(rt: Runtime, bundle: MakeBundle) -> None:
    """A createRuntime hook with timeout 1 that sleeps 30s is aborted: create fails fast."""
    b = bundle(SLEEP)
    h = Hooks(b)
    h.add("createRuntime", sleep=30, timeout=1)
    cid = new_id()
    t0 = time.monotonic()
    r = rt.create(cid, b, timeout=40)
    took = time.monotonic() - t0
    assert took < 15, f"hook not aborted after its 1s timeout (create took {took:.1f}s)"
    assert not r.ok, "create succeeded although its hook was aborted"
