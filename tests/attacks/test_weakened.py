"""Each defence, deliberately weakened *inside a forked test process* (pyruntime run
in-process through ``pyruntime.cli.main`` after a monkeypatch), lets the matching
attack through: so the attack tests can tell a defended runtime from an undefended
one.  The shipped runtime has no switch for any of this.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from integration.helpers import BundleFactory, Runtime, bind, parse_status, probe_script, sections

from .conftest import Canary, force_delete, in_process
from .test_fake_proc import image_dev
from .test_runtime_overwrite import hook_findings, hook_probe_bundle

pytestmark = [pytest.mark.root, pytest.mark.weakened]


def test_without_resolve_in_root_a_symlink_escapes(rt: Runtime, bundles: BundleFactory,
                                                   cid: str, canary: Canary) -> None:
    rootfs = bundles.private_rootfs()
    os.symlink(str(canary.path), rootfs / "evil_abs")
    bundle = bundles.make(["true"], rootfs=rootfs, extra_mounts=[
        {"destination": "/evil_abs/newdir", "type": "tmpfs", "source": "tmpfs"}])

    def weaken() -> None:
        import pyruntime.paths

        pyruntime.paths.IN_ROOT = 0  # plain openat: symlinks resolve against the host

    result = in_process(rt, ["run", "--bundle", str(bundle), cid], weaken)
    force_delete(rt, cid)
    escaped = canary.changed()
    shutil.rmtree(canary.path / "newdir", ignore_errors=True)
    assert escaped, f"the weakened runtime did not escape: {result}"
    # the shipped runtime, same bundle: contained (what test_symlinks asserts)
    rt.run(f"{cid}-shipped", bundle).ok()
    canary.assert_untouched()


def test_without_close_descriptors_the_callers_fds_leak(rt: Runtime, bundles: BundleFactory,
                                                        cid: str, canary: Canary) -> None:
    def weaken() -> None:
        """Both layers of the defence: the close of the caller's descriptors in the
        intermediate, and the close-on-exec sweep before the exec."""
        from pyruntime.process import intermediate
        from pyruntime.process.finish import ProcessTail

        ProcessTail.close_descriptors = lambda self: None
        intermediate.close_all_but = lambda keep, first=3: None

    def leak() -> None:
        fd = os.open(canary.path, os.O_RDONLY | os.O_DIRECTORY)
        os.dup2(fd, 5, inheritable=True)

    result = in_process(rt, ["run", "--detach", "--bundle", str(bundles.make(["sleep", "30"])),
                             cid], weaken, before=leak)
    try:
        assert result.returncode == 0, result
        pid = rt.state(cid)["pid"]
        fds = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
        assert fds != [0, 1, 2] and 5 in fds, fds  # what test_descriptors would flag
        assert os.readlink(f"/proc/{pid}/fd/5") == str(canary.path)
    finally:
        force_delete(rt, cid)
    result = in_process(rt, ["run", "--detach", "--bundle", str(bundles.make(["sleep", "30"])),
                             cid], None, before=leak)
    try:
        assert sorted(int(n) for n in os.listdir(f"/proc/{rt.state(cid)['pid']}/fd")) == [0, 1, 2]
    finally:
        force_delete(rt, cid)


def test_without_the_dev_null_check_a_mask_binds_procfs(rt: Runtime, bundles: BundleFactory,
                                                        cid: str, canary: Canary) -> None:
    dev = image_dev(bundles, "/proc/sys/kernel/hostname", canary)
    bundle = bundles.make(probe_script({"keys": "stat -c '%F' /proc/keys; cat /proc/keys"}),
                          edit=lambda c: (c["linux"].update(readonlyPaths=[]),
                                          c.__setitem__("mounts", [
                                              m for m in c["mounts"]
                                              if not m["destination"].startswith("/dev")]
                                              + [bind(dev, "/dev")])))

    def weaken() -> None:
        from pyruntime import paths, rootfs
        from pyruntime.plan import mounts as m

        def mask_paths(context):  # rootfs.mask_paths without its char 1:3 check
            null_fd = paths.open_in_root(context.sys, context.root_fd, "/dev/null")
            try:
                for path in context.spec.linux.masked_paths:
                    fd = rootfs._open_existing(context, path)
                    if fd is None:
                        continue
                    try:
                        target = paths.fd_path(fd)
                        if paths.is_directory(fd):
                            context.sys.mount("tmpfs", target, "tmpfs", m.MS_RDONLY, None, path)
                        else:
                            context.sys.mount(paths.fd_path(null_fd), target, None, m.MS_BIND,
                                              None, path)
                    finally:
                        os.close(fd)
            finally:
                os.close(null_fd)

        rootfs.mask_paths = mask_paths

    result = in_process(rt, ["run", "--bundle", str(bundle), cid], weaken)
    force_delete(rt, cid)
    assert result.returncode == 0, result
    keys = sections(result.stdout)["keys"]
    assert "regular" in keys and "pyruntime" in keys, result  # /proc/keys is now hostname
    shipped = rt.run(f"{cid}-shipped", bundle)
    assert shipped.returncode != 0 and "/dev/null" in shipped.stderr, shipped


def test_without_the_procfs_check_a_sysctl_lands_in_a_fake_proc(rt: Runtime,
                                                                bundles: BundleFactory,
                                                                cid: str) -> None:
    rootfs = bundles.private_rootfs()
    fake = rootfs / "proc" / "sys" / "net" / "ipv4" / "ip_forward"
    fake.parent.mkdir(parents=True)
    fake.write_text("0\n")
    bundle = bundles.make(["true"], rootfs=rootfs, root={"readonly": False},
                          linux={"sysctl": {"net.ipv4.ip_forward": "1"}},
                          edit=lambda c: c.__setitem__("mounts", [
                              m for m in c["mounts"] if m["destination"] != "/proc"]))

    def weaken() -> None:
        import pyruntime.sysctl

        def write_on_procfs(path, text, filesystem_of):
            with open(path, "w") as handle:
                handle.write(text)

        pyruntime.sysctl.write_on_procfs = write_on_procfs

    result = in_process(rt, ["run", "--bundle", str(bundle), cid], weaken)
    force_delete(rt, cid)
    assert fake.read_text() == "1", result  # what test_fake_proc would flag
    fake.write_text("0\n")
    assert rt.run(f"{cid}-shipped", bundle).returncode != 0
    assert fake.read_text() == "0\n"


def test_with_inheritable_passed_through_the_check_fails(rt: Runtime, bundles: BundleFactory,
                                                         cid: str) -> None:
    bundle = bundles.make(["grep", "^CapInh", "/proc/self/status"], process={"capabilities": {
        kind: ["CAP_NET_ADMIN"] for kind in ("bounding", "effective", "permitted")}})

    def weaken() -> None:
        from pyruntime.plan import capabilities

        original = capabilities.plan_capabilities

        def plan(raw):
            result = original(raw)
            if result is not None:
                result.inheritable = result.permitted
            return result

        capabilities.plan_capabilities = plan

    result = in_process(rt, ["run", "--bundle", str(bundle), cid], weaken)
    force_delete(rt, cid)
    assert int(parse_status(result.stdout)["CapInh"], 16) != 0, result


def test_dumpable_init_is_reachable_from_a_hook(rt: Runtime, bundles: BundleFactory,
                                                cid: str) -> None:
    shared = bundles.host_dir("shared")

    def weaken() -> None:
        from pyruntime import credentials

        credentials.set_dumpable = lambda sys, dumpable: None

    result = in_process(rt, ["run", "--bundle", str(hook_probe_bundle(bundles, shared)), cid],
                        weaken)
    force_delete(rt, cid)
    assert result.returncode == 0, result
    found, _ = hook_findings(shared)
    assert any("/proc/1/exe" in line for line in found), found


def test_without_the_start_time_check_kill_hits_a_host_process(rt: Runtime,
                                                               bundles: BundleFactory,
                                                               cid: str) -> None:
    host = subprocess.Popen(["sleep", "120"])
    rt.create(cid, bundles.make(["sleep", "60"])).ok()
    path = rt.root / cid / "state.json"
    original = path.read_text()
    real = json.loads(original)
    try:
        path.write_text(json.dumps({**real, "pid": host.pid, "startTime": 0}))

        def weaken() -> None:
            from pyruntime.procfs import ProcFS

            def is_alive(self, pid, start_time):
                info = self.process(pid)
                return info is not None and not info.is_zombie

            ProcFS.is_alive = is_alive

        in_process(rt, ["kill", cid, "KILL"], weaken)
        deadline = time.monotonic() + 5
        while host.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        killed = host.poll() is not None
    finally:
        path.write_text(original)
        force_delete(rt, cid)
        host.kill()
        host.wait()
    assert killed, "the weakened runtime spared the host process: the check would not bite"


def test_without_check_id_an_id_escapes_the_root(rt: Runtime, bundles: BundleFactory,
                                                 token: str) -> None:
    escape = rt.root.parent / f"escaped-{token}"

    def weaken() -> None:
        from pyruntime import lifecycle, state

        state.check_id = lambda container_id: None
        lifecycle.state.check_id = state.check_id

    try:
        bundle = bundles.make(["true"], linux={"cgroupsPath": f"/weakened-{token}"})
        result = in_process(rt, ["create", "--bundle", str(bundle),
                                 f"../escaped-{token}"], weaken)
        assert escape.exists(), f"the weakened runtime kept the id inside --root: {result}"
    finally:
        in_process(rt, ["delete", "--force", f"../escaped-{token}"], weaken)
        shutil.rmtree(escape, ignore_errors=True)
