"""``create``: set the container up and leave its init waiting for ``start``."""

from __future__ import annotations

from pyruntime.lifecycle import CreateOptions, Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def options_from(parsed: Parsed) -> CreateOptions:
    return CreateOptions(parsed.text("bundle"), parsed.text("pid-file") or None,
                         parsed.text("console-socket") or None, parsed.flag("no-pivot"),
                         parsed.number("preserve-fds"), not parsed.flag("no-new-keyring"))


def run(parsed: Parsed, root: str) -> int:
    Runtime(root).create(parsed.args[0], options_from(parsed))
    return 0
