"""``resume ID``: thaw a paused container."""

from __future__ import annotations

from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    Runtime(root).resume(parsed.args[0])
    return 0
