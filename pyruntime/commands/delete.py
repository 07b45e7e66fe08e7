"""``delete [-f] ID``: remove a stopped container (``--force`` kills it first)."""

from __future__ import annotations

from pyruntime.errors import NotFoundError
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    try:
        warnings = Runtime(root).delete(parsed.args[0], parsed.flag("force"))
    except NotFoundError:
        if not parsed.flag("force"):  # runc: deleting what is gone with --force is fine
            raise
        return 0
    for warning in warnings:
        parsed.warn(warning)
    return 0
