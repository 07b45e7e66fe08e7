"""``list``: runc's table (tabwriter, min width 12, padding 3), ``-q`` ids, or JSON."""

from __future__ import annotations

import sys

from pyruntime import jsonio
from pyruntime.errors import UsageError
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed

COLUMNS = ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")
KEYS = ("id", "pid", "status", "bundle", "created", "owner")


def format_table(states: list[dict[str, object]]) -> str:
    rows = [list(COLUMNS)] + [[str(state[key]) for key in KEYS] for state in states]
    widths = [max(12, *(len(row[column]) + 3 for row in rows)) for column in range(len(COLUMNS))]
    lines = ["".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + row[-1]
             for row in rows]
    return "\n".join(lines) + "\n"


def run(parsed: Parsed, root: str) -> int:
    output_format = parsed.text("format")
    if output_format not in ("table", "json"):
        raise UsageError(f"invalid format option {output_format!r}: use table or json")
    states = Runtime(root).list_states()
    if parsed.flag("quiet"):
        sys.stdout.write("".join(f"{state['id']}\n" for state in states))
    elif output_format == "json":
        sys.stdout.write(jsonio.dumps(states) + "\n")
    else:
        sys.stdout.write(format_table(states))
    return 0
