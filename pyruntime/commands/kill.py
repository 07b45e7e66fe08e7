"""``kill ID [SIGNAL]``: SIGTERM unless told otherwise; ``--all`` for every process."""

from __future__ import annotations

from pyruntime.lifecycle import Runtime
from pyruntime.plan.signals import parse_signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    signal_number = parse_signal(parsed.args[1] if len(parsed.args) > 1 else "SIGTERM")
    Runtime(root).kill(parsed.args[0], signal_number, parsed.flag("all"))
    return 0
