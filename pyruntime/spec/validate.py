"""The rules of a config that no JSON Schema can say, as a list of named checks.

Each check takes the model and raises ``ConfigError(field, problem)`` for the
first thing wrong.  ``UNSUPPORTED`` lists fields that are valid in the spec but
that pyruntime cannot honour yet: they are refused at ``create``, never
silently ignored (config.md: "Runtimes MUST generate an error when invalid or
unsupported values are encountered").
"""

from __future__ import annotations

import os

from pyruntime.errors import ConfigError
from pyruntime.plan.capabilities import plan_capabilities
from pyruntime.plan.mounts import parse_options
from pyruntime.plan.namespaces import NAMESPACES, plan_namespaces
from pyruntime.plan.netdevices import plan_net_devices
from pyruntime.plan.sysctls import KEY_CHARACTERS, namespace_of
from pyruntime.plan.rlimits import RLIMITS
from pyruntime.plan.seccomp import plan_seccomp
from pyruntime.plan.scheduling import (parse_cpu_list, plan_io_priority, plan_personality,
                                       plan_scheduler)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyruntime.plan.namespaces import NamespacePlan

    from pyruntime.spec.model import Spec

SUPPORTED_MAJOR = 1
SUPPORTED_MINORS = range(0, 4)

# (JSON path, where to find it) of spec fields that are refused for now
UNSUPPORTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("linux.mountLabel", ("linux", "mountLabel")),
    ("linux.timeOffsets", ("linux", "timeOffsets")),
    ("linux.intelRdt", ("linux", "intelRdt")),
    ("linux.memoryPolicy", ("linux", "memoryPolicy")),
)


def _is_set(value: object) -> bool:
    return value not in (None, "", [], {})


def check_version(spec: Spec) -> None:
    parts = spec.oci_version.split("-")[0].split("+")[0].split(".")
    numbers = [int(part) if part.isdigit() else -1 for part in parts]
    if len(numbers) != 3 or numbers[0] != SUPPORTED_MAJOR or numbers[1] not in SUPPORTED_MINORS:
        raise ConfigError("ociVersion", f"unsupported version {spec.oci_version!r}: "
                                        "pyruntime supports 1.0.0 to 1.3.x")


def check_unsupported(spec: Spec) -> None:
    for field, keys in UNSUPPORTED:
        value: object = spec.raw
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if _is_set(value):
            raise ConfigError(field, "is not supported by pyruntime yet")
    for index, mount in enumerate(spec.raw.get("mounts", ())):
        for key in ("uidMappings", "gidMappings"):
            if _is_set(mount.get(key)):
                raise ConfigError(f"mounts[{index}].{key}", "is not supported by pyruntime yet")


def check_personality(spec: Spec) -> None:
    plan_personality(spec.linux.raw.get("personality"))


def check_seccomp(spec: Spec) -> None:
    plan_seccomp(spec.linux.raw.get("seccomp"))


def check_root(spec: Spec) -> None:
    if not os.path.isdir(spec.root_path):
        raise ConfigError("root.path", f"{spec.root_path} is not a directory")


def check_process(spec: Spec) -> None:
    process = spec.process
    if process is None:
        raise ConfigError("process", "is required to create a container")
    if not process.args or not process.args[0]:
        raise ConfigError("process.args", "must be a non-empty array")
    if not process.cwd.startswith("/"):
        raise ConfigError("process.cwd", "must be an absolute path")
    for index, entry in enumerate(process.env):
        if "=" not in entry or entry.startswith("="):
            raise ConfigError(f"process.env[{index}]", "must have the form KEY=value")
    seen: set[str] = set()
    for index, limit in enumerate(process.rlimits):
        field = f"process.rlimits[{index}]"
        if limit.type not in RLIMITS:
            raise ConfigError(f"{field}.type", f"unknown resource limit {limit.type!r}")
        if limit.type in seen:
            raise ConfigError(f"{field}.type", f"{limit.type} is set twice")
        if limit.soft > limit.hard:
            raise ConfigError(f"{field}.soft", "must not be greater than hard")
        seen.add(limit.type)
    plan_capabilities(process.capabilities)
    plan_scheduler(process.raw.get("scheduler"))
    plan_io_priority(process.raw.get("ioPriority"))
    affinity = process.raw.get("execCPUAffinity") or {}
    for key in ("initial", "final"):
        if affinity.get(key):
            parse_cpu_list(affinity[key], f"process.execCPUAffinity.{key}")


def check_namespaces(spec: Spec) -> None:
    seen: set[str] = set()
    for index, namespace in enumerate(spec.linux.namespaces):
        field = f"linux.namespaces[{index}]"
        if namespace.type not in NAMESPACES:
            raise ConfigError(f"{field}.type", f"unknown namespace type {namespace.type!r}")
        if namespace.type in seen:
            raise ConfigError(f"{field}.type", f"namespace {namespace.type!r} is listed twice")
        seen.add(namespace.type)
        if namespace.path is not None:
            if not namespace.path.startswith("/"):
                raise ConfigError(f"{field}.path", "must be an absolute path")
            if not os.path.exists(namespace.path):
                raise ConfigError(f"{field}.path", f"{namespace.path} does not exist")
    new_user = any(ns.type == "user" and ns.path is None for ns in spec.linux.namespaces)
    for key, mappings in (("uidMappings", spec.linux.uid_mappings),
                          ("gidMappings", spec.linux.gid_mappings)):
        if new_user and not mappings:
            raise ConfigError(f"linux.{key}", "is required with a new user namespace")
        if mappings and not new_user:
            raise ConfigError(f"linux.{key}", "needs a new user namespace in linux.namespaces")
    own_uts = "uts" in seen
    for field, value in (("hostname", spec.hostname), ("domainname", spec.domainname)):
        if value and not own_uts:
            raise ConfigError(field, "cannot be set without a uts namespace")
    if "mount" not in seen:
        raise ConfigError("linux.namespaces", "a mount namespace is required")
    check_sysctls(spec.linux.sysctl, plan_namespaces(spec.linux.namespaces))


def check_mounts(spec: Spec) -> None:
    for index, mount in enumerate(spec.mounts):
        field = f"mounts[{index}]"
        if not mount.destination.startswith("/"):
            raise ConfigError(f"{field}.destination",
                              f"{mount.destination!r} must be an absolute path")
        parse_options(mount.options, field)
        is_bind = mount.type == "bind" or "bind" in mount.options or "rbind" in mount.options
        if is_bind and not mount.source:
            raise ConfigError(f"{field}.source", "is required for a bind mount")


def check_paths(spec: Spec) -> None:
    for key, paths in (("maskedPaths", spec.linux.masked_paths),
                       ("readonlyPaths", spec.linux.readonly_paths)):
        for index, path in enumerate(paths):
            if not path.startswith("/"):
                raise ConfigError(f"linux.{key}[{index}]", "must be an absolute path")
    for index, device in enumerate(spec.linux.devices):
        if not os.path.normpath(device.path).startswith("/dev/"):
            raise ConfigError(f"linux.devices[{index}].path", "must be a path under /dev")


# hook kinds whose path resolves in the runtime's namespaces: checkable at create
_RUNTIME_PATH_HOOKS = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")


def check_hooks(spec: Spec) -> None:
    for kind, entries in (spec.raw.get("hooks") or {}).items():
        for index, hook in enumerate(entries if isinstance(entries, list) else ()):
            field = f"hooks.{kind}[{index}]"
            path = hook.get("path", "")
            if not path.startswith("/"):
                raise ConfigError(f"{field}.path", "must be an absolute path")
            if kind in _RUNTIME_PATH_HOOKS and not (os.path.isfile(path)
                                                    and os.access(path, os.X_OK)):
                raise ConfigError(f"{field}.path", f"{path} is not an executable file")
            timeout = hook.get("timeout")
            if timeout is not None and timeout <= 0:
                raise ConfigError(f"{field}.timeout", "must be greater than zero")


def check_sysctls(sysctl: dict[str, str], namespaces: NamespacePlan) -> None:
    """Only what the container's own namespaces isolate: anything else is the host's."""
    for key in sysctl:
        field = f'linux.sysctl["{key}"]'
        if not key or not set(key.lower()) <= KEY_CHARACTERS or ".." in key:
            raise ConfigError(field, "is not a valid sysctl name")
        kind = namespace_of(key)
        if kind is None:
            raise ConfigError(field, "is not in a separate kernel namespace")
        if not namespaces.has(kind):
            raise ConfigError(field, f"needs the container's own {kind} namespace")



def check_net_devices(spec: Spec) -> None:
    """The names, here; the host and the container's namespace, at create (netdevices.py).
    Devices go only into a network namespace the container creates: a joined one
    (``path``) belongs to someone else, who outlives the container (runc would move
    them there; the project chose not to)."""
    plans = plan_net_devices(spec.linux.raw.get("netDevices"))
    if plans and not plan_namespaces(spec.linux.namespaces).creates("network"):
        raise ConfigError(plans[0].field, "needs a new network namespace in linux.namespaces "
                                          "(a joined one gets no devices)")


CHECKS: tuple[Callable[[Spec], None], ...] = (
    check_version, check_unsupported, check_root, check_process, check_namespaces,
    check_mounts, check_paths, check_hooks, check_personality, check_seccomp,
    check_net_devices,
)


def check_spec(spec: Spec) -> None:
    for check in CHECKS:
        check(spec)
