"""``features``: what this runtime supports, as runtime-spec features.md defines it."""

from __future__ import annotations

import sys

from pyruntime import jsonio
from pyruntime.spec.features import features

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    sys.stdout.write(jsonio.dumps(features(), pretty=True) + "\n")
    return 0
