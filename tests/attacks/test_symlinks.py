"""CVE-2021-30465 / CVE-2024-45310 / CVE-2019-18837 class: whatever symlinks the image
holds, mount destinations, created folders and files, device nodes, masked and
read-only paths stay inside the rootfs.

Defence in pyruntime: paths.open_in_root / ensure_in_root resolve every path with
openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) and mount onto /proc/self/fd/N of
the O_PATH result (no check-then-use window); dangling links are created inside.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from integration.helpers import BundleFactory, Runtime, bind

from .conftest import Canary, force_delete, host_mounts, one_line_error_or_ok

pytestmark = pytest.mark.root


def hostile_links(rootfs: Path, canary: Canary) -> list[str]:
    """Symlinks an image could hold, all aimed at the host's canary folder."""
    target = str(canary.path)
    depth = "../" * 12
    links = {
        "evil_abs": target,
        "evil_rel": depth + target.lstrip("/"),
        "evil_dotdot": "/../../.." + target,
        "evil_proc": "/proc/self/root" + target,
        "evil_proc1": "/proc/1/cwd",
        "evil_chain": "evil_abs",
    }
    for name, where in links.items():
        os.symlink(where, rootfs / name)
    os.symlink(depth + "tmp", rootfs / "tmp" / "up")  # a relative escape from a subfolder
    return list(links)


def test_mount_destinations_devices_and_paths_stay_inside(rt: Runtime, bundles: BundleFactory,
                                                          cid: str, canary: Canary) -> None:
    rootfs = bundles.private_rootfs()
    links = hostile_links(rootfs, canary)
    source = bundles.host_dir("source")
    (source / "payload").write_text("payload\n")
    mounts_before = host_mounts()
    outcomes = {}
    for index, link in enumerate(links):
        for kind, edit in (
            ("tmpfs-new-dir", lambda c, l=link: c["mounts"].append(
                {"destination": f"/{l}/newdir/deeper", "type": "tmpfs", "source": "tmpfs"})),
            ("bind-dir", lambda c, l=link: c["mounts"].append(bind(source, f"/{l}/sub"))),
            ("bind-file", lambda c, l=link: c["mounts"].append(
                bind(source / "payload", f"/{l}/newfile", "bind"))),
            ("device", lambda c, l=link: c["linux"].setdefault("devices", []).append(
                {"path": f"/{l}/devnode", "type": "c", "major": 1, "minor": 3})),
            ("masked", lambda c, l=link: c["linux"]["maskedPaths"].extend(
                [f"/{l}/file", f"/{l}/sub"])),
            ("readonly", lambda c, l=link: c["linux"]["readonlyPaths"].extend(
                [f"/{l}/file", f"/{l}/sub"])),
            ("tmp-up", lambda c: c["mounts"].append(
                {"destination": "/tmp/up/newdir", "type": "tmpfs", "source": "tmpfs"})),
        ):
            container = f"{cid}-{index}-{kind}"
            bundle = bundles.make(["sh", "-c", "cat /proc/self/mountinfo"], rootfs=rootfs,
                                  root={"readonly": False}, edit=edit)
            result = rt.run(container, bundle)
            force_delete(rt, container)
            one_line_error_or_ok(result)
            outcomes[(link, kind)] = "ok" if result.returncode == 0 else result.stderr.strip()
            canary.assert_untouched()
    assert host_mounts() == mounts_before
    # the defence contains (rather than refuses) the plain links: they resolve in the root
    assert outcomes[("evil_abs", "tmpfs-new-dir")] == "ok"
    print(outcomes)


RACER = r"""
end=$(( $(date +%s) + $2 ))
while [ $(date +%s) -lt $end ] && [ ! -e /vol/stop ]; do
  rm -rf /vol/sub; ln -s "$1" /vol/sub; rm -f /vol/sub; mkdir /vol/sub
done
"""


def test_racing_symlink_swap_on_a_shared_volume(rt: Runtime, bundles: BundleFactory, cid: str,
                                                canary: Canary) -> None:
    """A container keeps swapping vol/sub between a folder and a symlink to the host's
    canary while another container, with vol as a volume, mounts onto /vol/sub/x."""
    volume = bundles.host_dir("volume")
    rt.run_detached(cid, bundles.make(["sh", "-c", RACER, "sh", str(canary.path), "25"],
                                      extra_mounts=[bind(volume, "/vol")])).ok()
    mounts_before = host_mounts()
    results = {"ok": 0, "refused": 0}
    rootfs = bundles.private_rootfs()
    bundle = bundles.make(["true"], rootfs=rootfs, extra_mounts=[
        bind(volume, "/vol"),
        {"destination": "/vol/sub/x", "type": "tmpfs", "source": "tmpfs"},
        bind(volume, "/vol/sub/y")])
    deadline = time.monotonic() + 20
    try:
        for attempt in range(50):
            if time.monotonic() > deadline:
                break
            result = rt.run(f"{cid}-v{attempt}", bundle)
            force_delete(rt, f"{cid}-v{attempt}")
            one_line_error_or_ok(result)
            results["ok" if result.returncode == 0 else "refused"] += 1
            canary.assert_untouched()
    finally:
        (volume / "stop").write_text("")
        force_delete(rt, cid)
    assert host_mounts() == mounts_before
    assert sum(results.values()) >= 20, results
    print(results)
