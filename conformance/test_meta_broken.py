"""Meta tests: the checks can fail.

Run with ``pytest conformance -m meta --runtime /usr/sbin/runc`` (any runtime
that passes the targeted checks works; it is wrapped as $REAL_RUNTIME).

For each deliberately broken runtime in ``conformance/broken/`` (one rule
broken each) the checks of its group are run in a pytest subprocess and must
FAIL.  A check the real runtime already fails cannot prove anything; such
pairs are skipped with the reason.  ``test_clause_quotes_exist`` makes sure
every clause quoted by a check is really in the spec text.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.meta

HERE = Path(__file__).resolve().parent
BROKEN_DIR = HERE / "broken"

#: broken runtime -> (group, checks that must fail with it)
BROKEN: dict[str, tuple[str, list[str]]] = {
    "run-at-create": ("lifecycle", ["test_runtime.py::test_process_args_not_run_before_start"]),
    "delete-noop": ("lifecycle", ["test_runtime.py::test_delete_stopped_removes_container"]),
    "state-wrong-status": ("state", ["test_runtime.py::test_state_created"]),
    "state-relative-bundle": ("state", ["test_runtime.py::test_state_running",
                                        "test_runtime.py::test_state_bundle_absolute_from_relative"]),
    "state-unknown-id-ok": ("operations", ["test_runtime.py::test_state_unknown_id"]),
    "delete-always-force": ("operations", ["test_runtime.py::test_delete_running_errors"]),
    "kill-stopped-ok": ("operations", ["test_runtime.py::test_kill_stopped_errors"]),
    "no-uts-namespace": ("namespaces", ["test_config_linux.py::test_namespace_new[uts]"]),
    "ignore-hostname": ("process", ["test_config.py::test_hostname"]),
    "ignore-user": ("process", ["test_config.py::test_process_user"]),
    "ignore-capabilities": ("process", ["test_config.py::test_capabilities_root"]),
    "drop-rlimits": ("process", ["test_config.py::test_rlimits"]),
    "drop-mount-options": ("mounts", ["test_config.py::test_mount_options_applied"]),
    "writable-root": ("mounts", ["test_config.py::test_root_readonly"]),
    "drop-devices": ("devices", ["test_config_linux.py::test_devices_created"]),
    "remove-default-devices": ("devices", ["test_config_linux.py::test_default_device[/dev/full]",
                                           "test_runtime_linux.py::test_dev_symlink[/dev/fd]"]),
    "leak-fd": ("fds", ["test_runtime_linux.py::test_only_stdio_fds_open"]),
    "drop-masked-paths": ("masked/readonly", ["test_config_linux.py::test_masked_paths"]),
    "drop-readonly-paths": ("masked/readonly", ["test_config_linux.py::test_readonly_paths"]),
    "hooks-no-stdin": ("hooks", ["test_config.py::test_hooks_receive_state_on_stdin"]),
    "drop-poststop-hooks": ("hooks", ["test_config.py::test_poststop_before_delete_returns"]),
    "ignore-hook-failure": ("hooks", ["test_config.py::test_create_hook_failure[createRuntime]"]),
    "drop-seccomp": ("seccomp", ["test_config_linux.py::test_seccomp_errno"]),
    "drop-sysctl": ("sysctl", ["test_config_linux.py::test_sysctl"]),
    "drop-resources": ("cgroups", ["test_config_linux.py::test_resources_pids_limit"]),
    "drop-rootfs-propagation": ("propagation",
                                ["test_config_linux.py::test_rootfs_propagation_shared"]),
}


def run_checks(checks: list[str], runtime: str, tmp: Path, real: str,
               workers: int = 0) -> dict[str, dict[str, Any]]:
    """Run the given checks with pytest in a subprocess; return their JSON results."""
    out = tmp / f"results-{os.path.basename(runtime)}.json"
    cmd = [sys.executable, "-m", "pytest", *[str(HERE / c) for c in checks],
           "--runtime", runtime, "--conformance-json", str(out), "-p", "no:cacheprovider",
           "-q", "--no-header", "--basetemp", str(tmp / "bt"),
           *(["-n", str(workers)] if workers else ["-p", "no:xdist"])]
    env = dict(os.environ, REAL_RUNTIME=real)
    proc = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True,
                          timeout=300)
    assert out.exists(), f"pytest did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    results: dict[str, dict[str, Any]] = json.loads(out.read_text())["results"]
    return results


@pytest.fixture(scope="session")
def control(runtime_path: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Outcome of every targeted check against the real runtime (one subprocess)."""
    checks = sorted({c for _, cs in BROKEN.values() for c in cs})
    res = run_checks(checks, runtime_path, tmp_path_factory.mktemp("control"), runtime_path,
                     workers=2)
    return {c: r["outcome"] for c, r in res.items()}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_broken_runtime_is_caught(broken: str, control: dict[str, str], runtime_path: str,
                                  tmp_path: Path) -> None:
    """The checks of the group fail against a runtime that breaks their rule."""
    group, checks = BROKEN[broken]
    usable = [c for c in checks if control.get(c) == "pass"]
    if not usable:
        pytest.skip(f"the real runtime already fails {checks} ({[control.get(c) for c in checks]});"
                    " a broken variant proves nothing")
    res = run_checks(usable, str(BROKEN_DIR / broken), tmp_path, runtime_path)
    for c in usable:
        got = res.get(c, {}).get("outcome")
        assert got == "fail", (f"[{group}] {c} did not catch broken runtime {broken!r}: "
                               f"outcome {got}, {res.get(c)}")


def norm(s: str) -> str:
    """Whitespace-normalised text (quotes may be wrapped differently from the spec)."""
    return re.sub(r"\s+", " ", s).strip()


def _clause_marks() -> list[tuple[str, dict[str, str]]]:
    found = []
    for mod_name in ("test_runtime", "test_runtime_linux", "test_config", "test_config_linux"):
        mod = importlib.import_module(f"conformance.{mod_name}")
        for name in dir(mod):
            fn = getattr(mod, name)
            if not name.startswith("test_") or not callable(fn):
                continue
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "clause":
                    found.append((f"{mod_name}.{name}", mark.kwargs))
                elif mark.name == "parametrize":
                    for p in mark.args[1]:
                        for m in getattr(p, "marks", ()):
                            if m.name == "clause":
                                found.append((f"{mod_name}.{name}[{p.values}]", m.kwargs))
    return found


def test_clause_quotes_exist(spec_dir: Path) -> None:
    """Every quoted clause occurs in the named spec file (``...`` = elision), and every
    check has a clause."""
    if not spec_dir.exists():
        pytest.skip(f"no spec text at {spec_dir}")
    marks = _clause_marks()
    assert len(marks) > 50
    texts: dict[str, str] = {}
    bad = []
    for where, kw in marks:
        text = texts.setdefault(kw["file"], norm((spec_dir / kw["file"]).read_text()))
        pos = 0
        for part in (norm(p) for p in kw["text"].split("...")):
            i = text.find(part, pos)
            if i < 0:
                bad.append(f"{where}: {kw['file']} has no {part!r}")
                break
            pos = i + len(part)
    assert not bad, "\n".join(bad)
