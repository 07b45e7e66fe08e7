"""``exec``: a new process in a running container; its exit status, 255 if exec fails.

The process is ``--process F`` (a process.json) or, as with runc, the
container's own ``process`` with ``COMMAND ARGS`` and the flags applied on
top (``--env`` adds to the container's environment).
"""

from __future__ import annotations

import os

from pyruntime import jsonio
from pyruntime.commands._foreground import SignalForwarder
from pyruntime.errors import ConfigError, PyRuntimeError, UsageError
from pyruntime.lifecycle import Runtime, write_pid_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyruntime.cli import Parsed

EXEC_FAILED = 255


def process_from(parsed: Parsed, container_process: dict[str, Any]) -> dict[str, Any]:
    if parsed.text("process"):
        try:
            raw = jsonio.load_file(parsed.text("process"))
        except OSError as exc:
            raise ConfigError("", f"cannot read {parsed.text('process')}: "
                                  f"{os.strerror(exc.errno or 0).lower()}", "process.json") from exc
        except jsonio.JSONError as exc:
            raise ConfigError("", f"invalid json: {exc}", "process.json") from exc
        if not isinstance(raw, dict):
            raise ConfigError("", "must be an object", "process.json")
        return raw
    if len(parsed.args) < 2:
        raise UsageError("exec needs a command, or --process FILE")
    process = {**container_process, "args": parsed.args[1:], "terminal": parsed.flag("tty")}
    process["env"] = [*container_process.get("env", ()), *parsed.texts("env")]
    if parsed.text("cwd"):
        process["cwd"] = parsed.text("cwd")
    user = dict(container_process.get("user", {}))
    if parsed.text("user"):
        uid, _, gid = parsed.text("user").partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise UsageError(f"--user {parsed.text('user')!r}: expected uid[:gid] as numbers")
        user.update({"uid": int(uid), "gid": int(gid or 0)})
    if parsed.texts("additional-gids"):
        user["additionalGids"] = [int(g) for g in parsed.texts("additional-gids") if g.isdigit()]
    process["user"] = user
    if parsed.texts("cap"):  # never inheritable: CVE-2022-29162
        caps = {kind: list(names) for kind, names in container_process.get(
            "capabilities", {}).items()}
        for kind in ("bounding", "effective", "permitted", "ambient"):
            caps[kind] = [*caps.get(kind, []), *parsed.texts("cap")]
        process["capabilities"] = caps
    if parsed.flag("no-new-privs"):
        process["noNewPrivileges"] = True
    for flag, key in (("apparmor", "apparmorProfile"), ("process-label", "selinuxLabel")):
        if parsed.text(flag):
            process[key] = parsed.text(flag)
    return process


def run(parsed: Parsed, root: str) -> int:
    try:
        return _exec(parsed, root)
    except PyRuntimeError as exc:
        exc.exit_status = EXEC_FAILED
        raise


def _exec(parsed: Parsed, root: str) -> int:
    if parsed.texts("cgroup"):
        raise UsageError("--cgroup is not supported by pyruntime yet")
    runtime = Runtime(root)
    container_id = parsed.args[0]
    record, _ = runtime.status_of(container_id)
    process = process_from(parsed, dict(record.config.get("process", {})))
    forwarder = None if parsed.flag("detach") else SignalForwarder()
    pid = runtime.exec(container_id, process, parsed.number("preserve-fds"),
                       parsed.flag("ignore-paused"), parsed.text("console-socket") or None)
    if parsed.text("pid-file"):
        write_pid_file(parsed.text("pid-file"), pid)
    if forwarder is None:
        return 0
    forwarder.forward_to(pid)
    return forwarder.wait()
