"""The command line, runc's: global flags, a subcommand, its flags, its arguments.

A table-driven parser instead of argparse (19 ms to import, and every engine
call starts a new interpreter).  It follows urfave/cli, which runc uses: flags
come before arguments, ``-flag`` and ``--flag`` are the same, values go as
``--flag value`` or ``--flag=value``.  This is the only module that prints
errors and the only one that turns exceptions into exit statuses.
"""

from __future__ import annotations

import os
import sys

from pyruntime import OCI_VERSION, __version__
from pyruntime.errors import PyRuntimeError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

BOOL, VALUE, LIST = "bool", "value", "list"  # how a flag takes its value


class Flag:
    __slots__ = ("name", "short", "kind", "default", "help")

    def __init__(self, name: str, kind: str, help: str, short: str = "",
                 default: object = None) -> None:
        self.name = name
        self.short = short
        self.kind = kind
        self.default = default if default is not None else {BOOL: False, VALUE: "",
                                                            LIST: None}[kind]
        self.help = help

    @property
    def takes_value(self) -> bool:
        return self.kind != BOOL


class Command:
    __slots__ = ("name", "summary", "flags", "min_args", "max_args", "usage")

    def __init__(self, name: str, summary: str, usage: str, flags: Sequence[Flag] = (),
                 min_args: int = 1, max_args: int | None = 1) -> None:
        self.name = name
        self.summary = summary
        self.usage = usage
        self.flags = list(flags)
        self.min_args = min_args
        self.max_args = max_args


_BUNDLE = Flag("bundle", VALUE, "path to the root of the bundle directory", "b", ".")
_PID_FILE = Flag("pid-file", VALUE, "file to write the process id to")
_CONSOLE = Flag("console-socket", VALUE, "unix socket to receive the pty master")
_NO_PIVOT = Flag("no-pivot", BOOL, "do not use pivot_root (for a rootfs on ramfs)")
_NO_KEYRING = Flag("no-new-keyring", BOOL, "do not create a new session keyring")
_PRESERVE = Flag("preserve-fds", VALUE, "pass N more file descriptors to the container", "", "0")

GLOBAL_FLAGS = [
    Flag("root", VALUE, "root directory for container state", "", "/run/pyruntime"),
    Flag("log", VALUE, "write log messages to this file"),
    Flag("log-format", VALUE, "log format: text or json", "", "text"),
    Flag("debug", BOOL, "log debug messages"),
    Flag("systemd-cgroup", BOOL, "use systemd to manage cgroups (not supported yet)"),
    Flag("rootless", VALUE, "ignored: pyruntime runs as root", "", "auto"),
    Flag("criu", VALUE, "ignored: checkpointing is not supported"),
    Flag("version", BOOL, "print the version", "v"),
    Flag("help", BOOL, "show help", "h"),
]

COMMANDS = {command.name: command for command in (
    Command("create", "create a container", "create [flags] ID",
            [_BUNDLE, _CONSOLE, _PID_FILE, _NO_PIVOT, _NO_KEYRING, _PRESERVE]),
    Command("start", "start the user process of a created container", "start ID"),
    Command("run", "create and start a container, and wait for it", "run [flags] ID",
            [_BUNDLE, _CONSOLE, Flag("detach", BOOL, "do not wait for the container", "d"),
             Flag("keep", BOOL, "do not delete the container after it exits"),
             _PID_FILE, _NO_PIVOT, _NO_KEYRING, _PRESERVE]),
    Command("exec", "run a new process inside a container", "exec [flags] ID [COMMAND ARGS...]",
            [Flag("process", VALUE, "path to a process.json", "p"),
             Flag("tty", BOOL, "allocate a pseudo-TTY (its master goes to --console-socket)",
                  "t"),
             _CONSOLE, Flag("detach", BOOL, "do not wait for the process", "d"), _PID_FILE,
             Flag("cwd", VALUE, "current working directory in the container"),
             Flag("env", LIST, "KEY=value to set (repeatable)", "e"),
             Flag("user", VALUE, "uid[:gid] of the process", "u"),
             Flag("additional-gids", LIST, "additional gid (repeatable)", "g"),
             Flag("cap", LIST, "add a capability (repeatable)", "c"),
             Flag("no-new-privs", BOOL, "set no_new_privs for the process"),
             Flag("apparmor", VALUE, "AppArmor profile of the process"),
             Flag("process-label", VALUE, "SELinux label of the process"),
             Flag("cgroup", LIST, "sub-cgroup to join (not supported yet)"),
             Flag("ignore-paused", BOOL, "exec even if the container is paused"), _PRESERVE],
            1, None),
    Command("state", "print the state of a container as JSON", "state ID"),
    Command("kill", "send a signal to the container's init", "kill [flags] ID [SIGNAL]",
            [Flag("all", BOOL, "signal every process of the container", "a")], 1, 2),
    Command("delete", "delete a container and everything it holds", "delete [flags] ID",
            [Flag("force", BOOL, "kill the container first if it still runs", "f")]),
    Command("list", "list containers", "list [flags]",
            [Flag("format", VALUE, "table or json", "f", "table"),
             Flag("quiet", BOOL, "print only ids", "q")], 0, 0),
    Command("pause", "freeze every process of a container", "pause ID"),
    Command("resume", "thaw a paused container", "resume ID"),
    Command("ps", "list the processes of a container", "ps [flags] ID [PS_ARGS...]",
            [Flag("format", VALUE, "table or json", "f", "table")], 1, None),
    Command("update", "change the resource limits of a container", "update [flags] ID",
            [Flag("resources", VALUE, "a linux.resources JSON file, - for stdin", "r"),
             *(Flag(name, VALUE, text) for name, text in (
                 ("memory", "memory limit (bytes, or with k, m, g)"),
                 ("memory-reservation", "memory soft limit"),
                 ("memory-swap", "memory plus swap limit, -1 for unlimited"),
                 ("kernel-memory", "kernel memory limit (ignored, as runc does)"),
                 ("cpu-shares", "relative cpu weight"), ("cpu-quota", "cfs quota (us)"),
                 ("cpu-period", "cfs period (us)"), ("cpu-rt-period", "rt period (us)"),
                 ("cpu-rt-runtime", "rt runtime (us)"), ("cpuset-cpus", "cpus to use"),
                 ("cpuset-mems", "memory nodes to use"), ("pids-limit", "maximum processes"),
                 ("blkio-weight", "block io weight, 10 to 1000")))]),
    Command("features", "print the features pyruntime supports (features.md)", "features",
            min_args=0, max_args=0),
    Command("events", "print stats and OOM events of a container as JSON lines",
            "events [flags] ID",
            [Flag("stats", BOOL, "print the container's stats once, then exit"),
             Flag("interval", VALUE, "time between stats events (Go duration)", "", "5s")]),
    Command("spec", "write a default config.json", "spec [flags]",
            [_BUNDLE, Flag("rootless", BOOL, "a config for rootless containers")], 0, 0),
)}

# runc commands that engines may call and that pyruntime does not have yet
NOT_YET = ("checkpoint",
           "restore")


class Parsed:
    """A subcommand's flags and arguments, and the way to warn (runtime.md "Warnings")."""

    __slots__ = ("values", "args", "logger", "command")

    def __init__(self, values: dict[str, object], args: list[str], logger: Logger | None = None,
                 command: str = "") -> None:
        self.values = values
        self.args = args
        self.logger = logger
        self.command = command

    def warn(self, message: str) -> None:
        if self.logger is not None:
            self.logger.write("warning", message)
        sys.stderr.write(f"{self.command}: warning: {message}\n")

    def text(self, name: str) -> str:
        return str(self.values[name])

    def flag(self, name: str) -> bool:
        return bool(self.values[name])

    def texts(self, name: str) -> list[str]:
        values = self.values[name]
        assert isinstance(values, list)
        return [str(value) for value in values]

    def number(self, name: str) -> int:
        text = self.text(name)
        if not text.isdigit():
            raise UsageError(f"--{name}: {text!r} is not a non-negative number")
        return int(text)


def parse_flags(flags: Sequence[Flag], argv: Sequence[str]) -> tuple[dict[str, object], list[str]]:
    """Flags up to the first argument (or ``--``); the rest are arguments."""
    by_name = {flag.name: flag for flag in flags}
    by_name.update({flag.short: flag for flag in flags if flag.short})
    values: dict[str, object] = {flag.name: [] if flag.kind == LIST else flag.default
                                 for flag in flags}
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            index += 1
            break
        if not word.startswith("-") or word == "-":
            break
        name, has_value, value = word.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.takes_value:
            if not has_value:
                index += 1
                if index >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[index]
            if flag.kind == LIST:
                values[flag.name].append(value)  # type: ignore[attr-defined]
            else:
                values[flag.name] = value
        elif has_value:
            if value not in ("true", "false"):
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
            values[flag.name] = value == "true"
        else:
            values[flag.name] = True
        index += 1
    return values, list(argv[index:])


def version_text() -> str:
    """runc's shape: containerd's client parses ``<name> version X`` and ``spec:``."""
    return (f"pyruntime version {__version__}\ncommit: none\nspec: {OCI_VERSION}\n"
            f"python: {sys.version.split()[0]}\n")


def usage_text() -> str:
    lines = ["usage: pyruntime [global flags] COMMAND [flags] ARGS", "", "commands:"]
    lines += [f"  {c.name:<8} {c.summary}" for c in COMMANDS.values()]
    lines += ["", "global flags:"]
    lines += [f"  --{f.name:<16} {f.help}" for f in GLOBAL_FLAGS]
    return "\n".join(lines) + "\n"


class Logger:
    """``--log`` and ``--log-format``: runc's logrus lines, text or JSON."""

    __slots__ = ("path", "json", "debug")

    def __init__(self, path: str, log_format: str, debug: bool) -> None:
        if log_format not in ("text", "json"):
            raise UsageError(f"invalid log-format: {log_format}")
        self.path = path
        self.json = log_format == "json"
        self.debug = debug

    def write(self, level: str, message: str) -> None:
        if not self.path or (level == "debug" and not self.debug):
            return
        from pyruntime import jsonio
        from pyruntime.state import rfc3339_now

        now = rfc3339_now()
        if self.json:
            line = jsonio.dumps({"level": level, "msg": message, "time": now})
        else:
            line = f"time={jsonio.dumps(now)} level={level} msg={jsonio.dumps(message)}"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # a log that cannot be written must not hide the error itself


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logger = Logger("", "text", False)
    command_name = ""
    try:
        global_values, rest = parse_flags(GLOBAL_FLAGS, argv)
        logger = Logger(str(global_values["log"]), str(global_values["log-format"]),
                        bool(global_values["debug"]))
        if global_values["version"]:
            sys.stdout.write(version_text())
            return 0
        if global_values["help"] or not rest:
            sys.stdout.write(usage_text())
            return 0 if global_values["help"] else 1
        command_name = rest[0]
        if global_values["systemd-cgroup"]:
            raise UsageError("--systemd-cgroup is not supported yet; use cgroupfs paths")
        return dispatch(command_name, rest[1:], str(global_values["root"]), logger)
    except PyRuntimeError as exc:
        message = str(exc)
        logger.write("error", message)
        sys.stderr.write(f"{command_name}: {message}\n" if command_name else f"{message}\n")
        return exc.exit_status
    except KeyboardInterrupt:
        return 130


def dispatch(name: str, argv: list[str], root: str, logger: Logger) -> int:
    command = COMMANDS.get(name)
    if command is None:
        if name in NOT_YET:
            raise UsageError(f"command {name!r} is not supported by pyruntime yet")
        raise UsageError(f"no such command {name!r} (see pyruntime --help)")
    values, args = parse_flags(command.flags, argv)
    if len(args) < command.min_args or (command.max_args is not None
                                        and len(args) > command.max_args):
        raise UsageError(f"usage: pyruntime {command.usage}")
    module = __import__(f"pyruntime.commands.{name}", fromlist=["run"])
    status: int = module.run(Parsed(values, args, logger, name), root)
    return status
