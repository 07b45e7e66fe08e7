"""``events [--stats] [--interval D] ID``: runc's output, one compact JSON event a line,
flushed at once (engines read it from a pipe while the container runs)."""

from __future__ import annotations

import os
import sys

from pyruntime import events, jsonio
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyruntime.cli import Parsed


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(jsonio.dumps(event) + "\n")
    sys.stdout.flush()


def run(parsed: Parsed, root: str) -> int:
    interval = events.interval_from(parsed.text("interval"))
    runtime = Runtime(root)
    if parsed.flag("stats"):
        emit(events.stats_event(runtime, parsed.args[0]))
        return 0
    try:
        events.watch(runtime, parsed.args[0], interval, emit)
    except BrokenPipeError:  # the reader went away: nothing left to tell anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
    return 0
