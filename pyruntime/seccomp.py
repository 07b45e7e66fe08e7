"""Build and load the seccomp filter a ``SeccompPlan`` describes; hand its notify fd on.

Runs in the init, as one of its last steps: a filter applies to the thread
that loads it (and, with TSYNC, to its siblings) and every later syscall of
the runtime itself must pass it, so the later the better.  libseccomp is
only opened here, so a container without ``linux.seccomp`` never loads it.

Semantics follow runc, so that profiles written for runc (Docker's, podman's)
mean the same thing here:

* a syscall name this libseccomp does not know is skipped, not an error
  (profiles list syscalls of newer kernels and of other architectures);
* a rule whose action is the default action is skipped (libseccomp refuses
  it with EACCES, and it changes nothing);
* ``args`` become one rule with every condition (they must all match), unless
  two conditions test the same argument: then each condition is a rule of its
  own (libseccomp cannot AND two tests of one argument; runc's "old behaviour");
* no_new_privs is left to the runtime (SCMP_FLTATR_CTL_NNP off): it is set
  by the init's own step, only when ``process.noNewPrivileges`` asks for it.
"""

from __future__ import annotations

import os
import sys

from pyruntime import OCI_VERSION, jsonio
from pyruntime.errors import ConfigError, SyscallError
from pyruntime.plan import seccomp as p
from pyruntime.syscalls import _libseccomp as lib

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes
    import socket

    from pyruntime.plan.seccomp import SeccompPlan, SeccompRule

EEXIST = 17
_FIELD = "linux.seccomp"

# SECCOMP_FILTER_FLAG_* -> (libseccomp filter attribute, API level it needs)
_FLAG_ATTRIBUTES: dict[int, tuple[int, int]] = {
    p.FLAG_TSYNC: (lib.ATTR_CTL_TSYNC, 0),
    p.FLAG_LOG: (lib.ATTR_CTL_LOG, lib.API_LOG),
    p.FLAG_SPEC_ALLOW: (lib.ATTR_CTL_SSB, lib.API_SSB),
    p.FLAG_WAIT_KILLABLE_RECV: (lib.ATTR_CTL_WAITKILL, lib.API_WAITKILL),
}


def _reason(rc: int) -> str:
    return os.strerror(-rc).lower()


def _library() -> ctypes.CDLL:
    try:
        return lib.load()
    except OSError as exc:
        raise ConfigError(_FIELD, f"needs {lib.SONAME} (Debian: apt-get install libseccomp2)") \
            from exc


def unknown_syscalls(plan: SeccompPlan) -> list[str]:
    """The names of ``plan`` that this libseccomp cannot resolve (and that
    ``load_filter`` skips): for a debug line in ``create``, before the fork."""
    _library()
    return [name for rule in plan.rules for name in rule.names
            if lib.resolve_syscall(name) == lib.NR_SCMP_ERROR]


def build_filter(plan: SeccompPlan, skipped: list[str] | None = None) -> int:
    """A libseccomp context with everything of ``plan``, not loaded yet; the caller
    must ``seccomp_release`` it.  Apart from ``load_filter``, for tests that read it
    back (seccomp_export_pfc, seccomp_attr_get) without confining themselves."""
    seccomp = _library()
    api = lib.api_level()
    if plan.uses_notify and api < lib.API_NOTIFY:
        raise ConfigError(_FIELD, f"SCMP_ACT_NOTIFY needs libseccomp API level {lib.API_NOTIFY} "
                                  f"(libseccomp >= 2.5.0, Linux >= 5.0), this host has {api}")
    ctx: int | None = seccomp.seccomp_init(plan.default_action)
    if not ctx:
        raise ConfigError(f"{_FIELD}.defaultAction",
                          f"refused by libseccomp {lib.version()}")
    try:
        # Real kernel errnos from seccomp_load; libseccomp < 2.5 lacks the attribute: ignore.
        seccomp.seccomp_attr_set(ctx, lib.ATTR_API_SYSRAWRC, 1)
        rc = seccomp.seccomp_attr_set(ctx, lib.ATTR_CTL_NNP, 0)
        if rc < 0:
            raise SyscallError("seccomp_attr_set", "no_new_privs", -rc)
        _add_architectures(seccomp, ctx, plan)
        _set_flags(seccomp, ctx, plan, api)
        for rule in plan.rules:
            if rule.action != plan.default_action:
                _add_rule(seccomp, ctx, rule, skipped)
    except BaseException:
        seccomp.seccomp_release(ctx)
        raise
    return ctx


def _add_architectures(seccomp: ctypes.CDLL, ctx: int, plan: SeccompPlan) -> None:
    for position, (name, token) in enumerate(plan.architectures):
        rc = seccomp.seccomp_arch_add(ctx, token)
        if rc < 0 and rc != -EEXIST:  # the native architecture is always there
            raise ConfigError(f"{_FIELD}.architectures[{position}]",
                              f"{name} is not supported by libseccomp {lib.version()}: "
                              f"{_reason(rc)}")


def _set_flags(seccomp: ctypes.CDLL, ctx: int, plan: SeccompPlan, api: int) -> None:
    for position, (name, bit) in enumerate(plan.flags):
        attribute, level = _FLAG_ATTRIBUTES[bit]
        if api < level or seccomp.seccomp_attr_set(ctx, attribute, 1) < 0:
            raise ConfigError(f"{_FIELD}.flags[{position}]",
                              f"{name} is not supported by libseccomp {lib.version()} "
                              f"(API level {api})")


def _condition_groups(rule: SeccompRule) -> list[list[tuple[int, int, int, int]]]:
    """runc's semantics: all conditions in one rule, or one rule per condition when
    two of them test the same argument.  ``value_two`` only counts for MASKED_EQ."""
    conditions = [(arg.index, arg.op, arg.value,
                   arg.value_two if arg.op == p.CMP_MASKED_EQ else 0) for arg in rule.args]
    indexes = [arg.index for arg in rule.args]
    if len(set(indexes)) < len(indexes):
        return [[condition] for condition in conditions]
    return [conditions]


def _add_rule(seccomp: ctypes.CDLL, ctx: int, rule: SeccompRule,
              skipped: list[str] | None) -> None:
    groups = [lib.conditions(group) for group in _condition_groups(rule)]
    for name in rule.names:
        number = lib.resolve_syscall(name)
        if number == lib.NR_SCMP_ERROR:
            if skipped is not None:
                skipped.append(name)
            continue
        for array in groups:
            rc = seccomp.seccomp_rule_add_array(ctx, rule.action, number, len(array), array)
            if rc < 0:
                raise ConfigError(rule.field, f'cannot add a rule for "{name}": {_reason(rc)}')


def preload(plan: SeccompPlan) -> None:
    """Open libseccomp (and import socket for NOTIFY) while the host's files are in view."""
    _library()
    if plan.uses_notify:
        import socket  # noqa: F401


def load_filter(plan: SeccompPlan, skipped: list[str] | None = None) -> int | None:
    """Load the filter into this process; the notify fd (close-on-exec) when a rule
    uses SCMP_ACT_NOTIFY, else None.  Names this libseccomp does not know are
    skipped and, when ``skipped`` is given, appended to it.

    Without no_new_privs the kernel wants CAP_SYS_ADMIN (EACCES otherwise): call
    this before the capabilities are dropped in that case.
    """
    seccomp = _library()
    ctx = build_filter(plan, skipped)
    try:
        rc = seccomp.seccomp_load(ctx)
        if rc < 0:
            raise SyscallError("load seccomp filter", "", -rc)
        if not plan.uses_notify:
            return None
        fd = seccomp.seccomp_notify_fd(ctx)  # owned by libseccomp's global state, not ctx
        if fd < 0:
            raise SyscallError("seccomp notify fd", "", -fd)
        return int(fd)
    finally:
        seccomp.seccomp_release(ctx)


def connect_listener(listener_path: str) -> socket.socket:
    """A connection to the agent at ``listenerPath``: made early (before pivot_root,
    while the host's paths resolve) and before the filter, which must not see it."""
    import socket

    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        connection.connect(listener_path)
    except OSError as exc:
        connection.close()
        raise SyscallError("connect to seccomp listener", listener_path, exc.errno or 0) from exc
    return connection


def process_state(notify_fd_name: str, state: dict[str, object],
                  metadata: str) -> dict[str, object]:
    """The container process state of config-linux.md, as runc sends it."""
    message: dict[str, object] = {"ociVersion": OCI_VERSION, "fds": [notify_fd_name],
                                  "pid": state.get("pid"), "state": state}
    if metadata:
        message["metadata"] = metadata  # runtime-spec's Go struct: omitempty
    return message


def send_notify_fd(listener_path: str, notify_fd: int, state: dict[str, object],
                   metadata: str, connection: socket.socket | None = None) -> None:
    """Send ``notify_fd`` (SCM_RIGHTS) with the container process state to the agent,
    one connection per state, closed afterwards (config-linux.md).  ``state`` is the
    OCI state, its ``pid`` the container process as the runtime sees it.
    ``connection`` is one from ``connect_listener``; without it, connect now."""
    import socket

    payload = jsonio.dumps(process_state("seccompFd", state, metadata)).encode()
    connection = connection or connect_listener(listener_path)
    rights = notify_fd.to_bytes(4, sys.byteorder, signed=True)  # one C int
    try:
        sent = connection.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        if sent < len(payload):  # the fds went with the first part, as the spec requires
            connection.sendall(payload[sent:])
    except OSError as exc:
        raise SyscallError("send seccomp fd to", listener_path, exc.errno or 0) from exc
    finally:
        connection.close()
