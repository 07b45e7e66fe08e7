"""``linux.netDevices`` as a list of moves, every name checked as the kernel would.

Pure: nothing here looks at the host.  The checks against the host and the
container's network namespace (the device exists, can move, its new name is
free) are ``pyruntime.netdevices``'s, at create; these are the ones a config
fails on any host, so ``create`` refuses it before it looks up anything.
"""

from __future__ import annotations

from pyruntime.errors import ConfigError

IFNAMSIZ = 16  # the kernel's buffer, NUL included: at most 15 characters
TEMPLATE = "%d"  # config-linux.md: appended to a name, the kernel picks the number


class NetDevicePlan:
    """Move ``host_name`` into the container's network namespace, there called ``name``
    (the host name when the config gives none)."""

    __slots__ = ("host_name", "name")

    def __init__(self, host_name: str, name: str) -> None:
        self.host_name = host_name
        self.name = name

    @property
    def field(self) -> str:
        """The entry's JSON path, e.g. ``linux.netDevices["eth1"]``: every error names it."""
        return f"linux.netDevices[{_quoted(self.host_name)}]"

    @property
    def is_template(self) -> bool:
        """``eth%d``: the kernel picks a free name, so it can never clash."""
        return self.name.endswith(TEMPLATE)

    def __repr__(self) -> str:
        return f"NetDevicePlan({self.host_name!r} -> {self.name!r})"


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_interface_name(name: str, field: str, template_allowed: bool) -> None:
    """The kernel's dev_valid_name (and dev_alloc_name for templates): refused here
    so that a bad name fails before anything moves, not half way through."""
    if not name:
        raise ConfigError(field, "an interface name must not be empty")
    if len(name.encode()) >= IFNAMSIZ:
        raise ConfigError(field, f"interface name {name!r} is longer than "
                                 f"{IFNAMSIZ - 1} characters")
    if name in (".", ".."):
        raise ConfigError(field, f"{name!r} is not a valid interface name")
    for character in name:
        if character in "/:" or character.isspace():
            raise ConfigError(field, f"interface name {name!r} must not contain {character!r}")
    if "%" in name:
        if not template_allowed:
            raise ConfigError(field, f"interface name {name!r} must not contain '%'")
        if name.count("%") != 1 or not name.endswith(TEMPLATE) or name == TEMPLATE:
            raise ConfigError(field, f"a name template must be a prefix followed by "
                                     f"{TEMPLATE!r}, not {name!r}")


def plan_net_devices(raw: object) -> list[NetDevicePlan]:
    """The moves of a ``linux.netDevices`` object, in the config's order.

    Two entries may not end with the same name in the container (the second
    move would fail after the first has happened); templates are exempt."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError("linux.netDevices", "must be an object")
    plans: list[NetDevicePlan] = []
    taken: dict[str, str] = {}
    for host_name, entry in raw.items():
        plan = NetDevicePlan(str(host_name), str(host_name))
        if not isinstance(entry, dict):
            raise ConfigError(plan.field, "must be an object")
        check_interface_name(plan.host_name, plan.field, template_allowed=False)
        name_field = plan.field
        if entry.get("name") not in (None, ""):
            name_field = f"{plan.field}.name"
            if not isinstance(entry["name"], str):
                raise ConfigError(name_field, "must be a string")
            plan.name = entry["name"]
            check_interface_name(plan.name, name_field, template_allowed=True)
        if not plan.is_template:
            if plan.name in taken:
                raise ConfigError(name_field, f"{plan.name!r} is also the name of "
                                              f"linux.netDevices[{_quoted(taken[plan.name])}]")
            taken[plan.name] = plan.host_name
        plans.append(plan)
    return plans
