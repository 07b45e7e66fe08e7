"""Shared code of the deliberately broken runtimes in this directory.

Each broken runtime is a tiny script that wraps a real runtime ($REAL_RUNTIME,
default /usr/sbin/runc) and breaks exactly one rule, so that
``test_meta_broken.py`` can prove the matching check catches it.  They parse
runc's command line: global options (``--root DIR``) before the subcommand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

REAL = os.environ.get("REAL_RUNTIME", "/usr/sbin/runc")
_GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


class Invocation:
    """``RUNTIME [global opts] COMMAND [args]`` split into its parts."""

    def __init__(self, argv: list[str]) -> None:
        self.globals: list[str] = []
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            self.globals.append(argv[i])
            if argv[i] in _GLOBAL_WITH_VALUE and "=" not in argv[i]:
                i += 1
                self.globals.append(argv[i])
            i += 1
        self.command = argv[i] if i < len(argv) else ""
        self.args = argv[i + 1:]

    @property
    def positional(self) -> list[str]:
        out, skip = [], False
        for a in self.args:
            if skip:
                skip = False
            elif a in ("--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds"):
                skip = True
            elif not a.startswith("-"):
                out.append(a)
        return out

    @property
    def container_id(self) -> str | None:
        pos = self.positional
        return pos[0] if pos else None

    @property
    def bundle(self) -> Path:
        for flag in ("--bundle", "-b"):
            if flag in self.args:
                return Path(self.args[self.args.index(flag) + 1])
        return Path.cwd()

    def edit_config(self, edit: Callable[[dict[str, Any]], None]) -> None:
        """Rewrite the bundle's config.json in place (the suite's own temp bundle)."""
        path = self.bundle / "config.json"
        cfg = json.loads(path.read_text())
        edit(cfg)
        path.write_text(json.dumps(cfg))

    def real(self, command: str | None = None, args: list[str] | None = None,
             **kw: Any) -> subprocess.CompletedProcess[bytes]:
        """Run the real runtime (stdio inherited unless overridden)."""
        return subprocess.run([REAL, *self.globals, command or self.command,
                               *(self.args if args is None else args)], **kw)

    def state(self, cid: str) -> dict[str, Any] | None:
        r = self.real("state", [cid], capture_output=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def exec_real(self, command: str | None = None, args: list[str] | None = None) -> NoReturn:
        argv = [REAL, *self.globals, command or self.command,
                *(self.args if args is None else args)]
        os.execv(REAL, argv)


def invocation() -> Invocation:
    return Invocation(sys.argv[1:])
