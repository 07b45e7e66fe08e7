"""``spec``: write the default config.json into the bundle, refusing to overwrite."""

from __future__ import annotations

import os

from pyruntime import jsonio
from pyruntime.errors import PyRuntimeError
from pyruntime.spec.defaults import default_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.cli import Parsed


def run(parsed: Parsed, root: str) -> int:
    path = os.path.join(parsed.text("bundle"), "config.json")
    text = jsonio.dumps(default_config(rootless=parsed.flag("rootless")), pretty=True) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError as exc:
        raise PyRuntimeError(f"file {path} exists: remove it first") from exc
    except OSError as exc:
        raise PyRuntimeError(f"write {path}: {os.strerror(exc.errno or 0).lower()}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return 0
