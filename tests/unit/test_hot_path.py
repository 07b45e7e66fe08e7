"""Import budget of the commands engines call most: ``state``, ``list``, ``kill``.

Every engine call starts a new interpreter, so a stray heavy import (json,
re, typing, enum, dataclasses, ctypes...) is paid on every ``state`` poll.
Each case runs in a fresh interpreter and lists the modules it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"re", "typing", "json", "jsonschema", "argparse", "logging", "dataclasses", "enum",
             "pathlib", "subprocess", "ctypes", "signal", "tempfile", "shutil", "socket",
             "datetime"}
SCRIPT = """
import sys
from pyruntime import cli
status = cli.main(sys.argv[1:])
sys.stdout.write("\\n@@" + repr(status) + "@@" + ",".join(sorted(sys.modules)) + "\\n")
"""


def _run(argv: list[str]) -> tuple[int, set[str], str, str]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, *argv], capture_output=True, text=True,
                            cwd=REPO, timeout=30)
    assert result.returncode == 0, result.stderr
    out, _, tail = result.stdout.rpartition("\n@@")
    status, _, modules = tail.strip().partition("@@")
    return int(status), set(modules.split(",")), out, result.stderr


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize(("argv", "status", "stderr"), [
    (["state", "nosuch"], 1, "state: container nosuch does not exist\n"),
    (["kill", "nosuch"], 1, "kill: container nosuch does not exist\n"),
    (["kill", "nosuch", "KILL"], 1, "kill: container nosuch does not exist\n"),
    (["list"], 0, ""),
    (["list", "--format", "json"], 0, ""),
])
def test_hot_path_imports(tmp_path: Path, argv: list[str], status: int, stderr: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    got_status, modules, out, err = _run(["--root", str(root), *argv])
    assert (got_status, err) == (status, stderr)
    assert _top_level(modules) & FORBIDDEN == set()
    assert "pyruntime.cli" in modules  # the probe saw the command run
    if argv[0] == "list":
        assert out.startswith("ID ") or json.loads(out) == []


def test_the_probe_can_see_a_forbidden_import(tmp_path: Path) -> None:
    """A state.json that does not parse sends jsonio to ``json`` for the message: the
    same probe must see that import, or the budget test above is blind."""
    root = tmp_path / "root"
    (root / "c1").mkdir(parents=True)
    (root / "c1" / "state.json").write_text("{broken")
    status, modules, _, err = _run(["--root", str(root), "state", "c1"])
    assert status == 1
    assert err.startswith("state: read state of c1: ")
    assert "json" in _top_level(modules)
