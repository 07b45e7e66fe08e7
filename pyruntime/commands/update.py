"""``update [flags | -r FILE] ID``: new limits for a running container, as runc takes
them: podman passes ``--resources FILE``, containerd's shim pipes JSON on stdin (``-r -``)."""

from __future__ import annotations

import os
import sys

from pyruntime import jsonio
from pyruntime.errors import ConfigError, UsageError
from pyruntime.lifecycle import Runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyruntime.cli import Parsed

# flag -> (section of linux.resources, key, kind)
FLAGS: dict[str, tuple[str, str, str]] = {
    "memory": ("memory", "limit", "bytes"),
    "memory-reservation": ("memory", "reservation", "bytes"),
    "memory-swap": ("memory", "swap", "bytes"),
    "cpu-shares": ("cpu", "shares", "int"), "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "int"), "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset-cpus": ("cpu", "cpus", "text"), "cpuset-mems": ("cpu", "mems", "text"),
    "pids-limit": ("pids", "limit", "int"), "blkio-weight": ("blockIO", "weight", "int"),
}
UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def parse_value(flag: str, text: str, kind: str) -> int | str:
    if kind == "text":
        return text
    if kind == "bytes":
        lowered = text.lower().removesuffix("ib").removesuffix("b") if text != "-1" else text
        number, unit = lowered.rstrip("kmgt"), lowered[len(lowered.rstrip("kmgt")):]
        if (number.isdigit() or number == "-1") and unit in UNITS:
            return int(number) * UNITS[unit]
    elif text.lstrip("-").isdigit():
        return int(text)
    raise UsageError(f"--{flag}: invalid value {text!r}")


def resources_from(parsed: Parsed) -> dict[str, Any]:
    if parsed.text("resources"):
        path = parsed.text("resources")
        try:
            raw = jsonio.loads(sys.stdin.buffer.read()) if path == "-" else jsonio.load_file(path)
        except OSError as exc:
            raise ConfigError("", f"cannot read {path}: {os.strerror(exc.errno or 0).lower()}",
                              "resources") from exc
        except jsonio.JSONError as exc:
            raise ConfigError("", f"invalid json: {exc}", "resources") from exc
        if not isinstance(raw, dict):
            raise ConfigError("", "must be an object", "resources")
        return raw
    resources: dict[str, Any] = {}
    for flag, (section, key, kind) in FLAGS.items():
        if parsed.text(flag):
            resources.setdefault(section, {})[key] = parse_value(flag, parsed.text(flag), kind)
    if not resources and not parsed.text("kernel-memory"):
        raise UsageError("update needs --resources FILE or at least one limit flag")
    return resources


def run(parsed: Parsed, root: str) -> int:
    Runtime(root).update(parsed.args[0], resources_from(parsed))
    return 0
