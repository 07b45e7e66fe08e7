"""``run``: create, start, wait; the exit status is the process's (128+N if killed by N).

The launch made us the init's subreaper, so after ``create`` the init is our
child: we wait for it, forward the signals a terminal sends, then delete the
container (unless ``--keep``).  ``--detach`` returns right after ``start``.
"""

from __future__ import annotations

from pyruntime.commands._foreground import SignalForwarder
from pyruntime.commands.create import options_from
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    runtime = Runtime(root)
    container_id = parsed.args[0]
    created = runtime.create(container_id, options_from(parsed))
    forwarder = None if parsed.flag("detach") else SignalForwarder()
    try:
        runtime.start(container_id)
    except BaseException:
        runtime.delete(container_id, force=True)
        raise
    if forwarder is None:
        return 0
    forwarder.forward_to(created.pid)
    status = forwarder.wait()
    if not parsed.flag("keep"):
        for warning in runtime.delete(container_id, force=True):
            parsed.warn(warning)
    return status
