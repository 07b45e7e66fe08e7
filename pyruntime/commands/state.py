"""``state``: the OCI state of one container, as runc prints it (indented JSON)."""

from __future__ import annotations

import sys

from pyruntime import jsonio
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    sys.stdout.write(jsonio.dumps(Runtime(root).oci_state(parsed.args[0]), pretty=True) + "\n")
    return 0
