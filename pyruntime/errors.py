"""The error convention of pyruntime.

Every failure is raised once, as one of these classes, with its cause chained
(``raise X(...) from exc``).  ``str(error)`` is the whole user-facing message:
one lowercase line that names the operation and the object it failed on, e.g.
``config.json: process.args: must be a non-empty array`` or
``mount /proc: operation not permitted``.  Nothing below the CLI prints; the CLI
prints ``str(error)`` and maps the class to an exit status.
"""

from __future__ import annotations

import os


class PyRuntimeError(Exception):
    """Base class: the message is the one line the user sees."""

    exit_status = 1


class UsageError(PyRuntimeError):
    """The command line itself is wrong (unknown flag, missing argument)."""


class ConfigError(PyRuntimeError):
    """config.json (or a process.json) breaks a rule; ``field`` is its JSON path."""

    def __init__(self, field: str, problem: str, source: str = "config.json") -> None:
        self.field = field
        self.problem = problem
        self.source = source
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")


class NotFoundError(PyRuntimeError):
    """An id names no container (containerd matches on "does not exist")."""

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id} does not exist")


class StateError(PyRuntimeError):
    """The container exists but is in the wrong status for the operation."""


class SyscallError(PyRuntimeError):
    """A system call failed; the message names the call and its object."""

    def __init__(self, operation: str, target: str, errno_value: int) -> None:
        self.operation = operation
        self.target = target
        self.errno = errno_value
        reason = os.strerror(errno_value).lower() if errno_value else "failed"
        super().__init__(f"{operation} {target}: {reason}" if target else f"{operation}: {reason}")


class ChildError(PyRuntimeError):
    """A step inside the container's setup failed, reported back by the child."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(f"{stage}: {message}" if stage else message)


class HookError(PyRuntimeError):
    """A lifecycle hook failed or timed out."""
