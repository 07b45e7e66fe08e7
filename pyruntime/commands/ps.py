"""``ps [-f json] ID [PS_ARGS]``: runc's output: a JSON array of pids, or the lines of
``ps -ef`` (or ``ps PS_ARGS``) whose PID column is one of the container's."""

from __future__ import annotations

import sys

from pyruntime import jsonio
from pyruntime.errors import PyRuntimeError, UsageError
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def filter_ps_output(output: str, pids: set[int]) -> str:
    lines = output.splitlines()
    if not lines:
        return ""
    header, rows = lines[0], lines[1:]
    try:
        column = header.split().index("PID")
    except ValueError as exc:
        raise PyRuntimeError("ps: no PID column in the output of ps") from exc
    kept = [row for row in rows if len(row.split()) > column
            and row.split()[column].isdigit() and int(row.split()[column]) in pids]
    return "\n".join([header, *kept]) + "\n"


def run(parsed: Parsed, root: str) -> int:
    output_format = parsed.text("format")
    if output_format not in ("table", "json"):
        raise UsageError(f"invalid format option {output_format!r}: use table or json")
    pids = Runtime(root).pids(parsed.args[0])
    if output_format == "json":
        sys.stdout.write(jsonio.dumps(pids) + "\n")
        return 0
    import subprocess

    arguments = parsed.args[1:] or ["-ef"]
    try:
        done = subprocess.run(["ps", *arguments], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PyRuntimeError(f"ps {' '.join(arguments)}: {exc}") from exc
    sys.stdout.write(filter_ps_output(done.stdout, set(pids)))
    return 0
