"""The parts of config.json that pyruntime acts on, as plain typed objects.

Built only from a document that passed the schema, so types are trusted here;
the rules that span fields live in ``validate.py``.  Plain ``__slots__``
classes instead of dataclasses: ``dataclasses`` costs 35 ms to import, and
every engine call starts a new interpreter.  Names follow the spec
(``process.noNewPrivileges`` is ``Process.no_new_privileges``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class User:
    __slots__ = ("uid", "gid", "umask", "additional_gids")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.uid: int = raw.get("uid", 0)
        self.gid: int = raw.get("gid", 0)
        self.umask: int | None = raw.get("umask")
        self.additional_gids: list[int] = list(raw.get("additionalGids", ()))


class Rlimit:
    __slots__ = ("type", "soft", "hard")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.type: str = raw["type"]
        self.soft: int = raw["soft"]
        self.hard: int = raw["hard"]


class Process:
    __slots__ = ("terminal", "args", "env", "cwd", "user", "capabilities", "rlimits",
                 "no_new_privileges", "oom_score_adj", "raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.terminal: bool = raw.get("terminal", False)
        self.args: list[str] = list(raw.get("args", ()))
        self.env: list[str] = list(raw.get("env", ()))
        self.cwd: str = raw.get("cwd", "/")
        self.user = User(raw.get("user", {}))
        self.capabilities: dict[str, list[str]] | None = raw.get("capabilities")
        self.rlimits = [Rlimit(item) for item in raw.get("rlimits", ())]
        self.no_new_privileges: bool = raw.get("noNewPrivileges", False)
        self.oom_score_adj: int | None = raw.get("oomScoreAdj")


class Mount:
    __slots__ = ("destination", "type", "source", "options")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.destination: str = raw["destination"]
        self.type: str | None = raw.get("type")
        self.source: str | None = raw.get("source")
        self.options: list[str] = list(raw.get("options", ()))


class Namespace:
    __slots__ = ("type", "path")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.type: str = raw["type"]
        self.path: str | None = raw.get("path") or None


class IdMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.container_id: int = raw["containerID"]
        self.host_id: int = raw["hostID"]
        self.size: int = raw["size"]

    def line(self) -> str:
        """The form /proc/PID/uid_map takes."""
        return f"{self.container_id} {self.host_id} {self.size}\n"


class Device:
    __slots__ = ("type", "path", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.type: str = raw["type"]
        self.path: str = raw["path"]
        self.major: int = raw.get("major", 0)
        self.minor: int = raw.get("minor", 0)
        self.file_mode: int = raw.get("fileMode", 0o666)
        self.uid: int = raw.get("uid", 0)
        self.gid: int = raw.get("gid", 0)


class Linux:
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "devices", "masked_paths",
                 "readonly_paths", "rootfs_propagation", "sysctl", "raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.namespaces = [Namespace(item) for item in raw.get("namespaces", ())]
        self.uid_mappings = [IdMapping(item) for item in raw.get("uidMappings", ())]
        self.gid_mappings = [IdMapping(item) for item in raw.get("gidMappings", ())]
        self.devices = [Device(item) for item in raw.get("devices", ())]
        self.masked_paths: list[str] = list(raw.get("maskedPaths", ()))
        self.readonly_paths: list[str] = list(raw.get("readonlyPaths", ()))
        self.rootfs_propagation: str | None = raw.get("rootfsPropagation")
        self.sysctl: dict[str, str] = dict(raw.get("sysctl", {}))


class Spec:
    """A whole config.json.  ``root_path`` is absolute (resolved against the bundle)."""

    __slots__ = ("oci_version", "bundle", "root_path", "root_readonly", "process", "hostname",
                 "domainname", "mounts", "linux", "annotations", "raw")

    def __init__(self, raw: dict[str, Any], bundle: str, root_path: str) -> None:
        self.raw = raw
        self.bundle = bundle
        self.root_path = root_path
        self.oci_version: str = raw["ociVersion"]
        self.root_readonly: bool = raw.get("root", {}).get("readonly", False)
        self.process = Process(raw["process"]) if "process" in raw else None
        self.hostname: str | None = raw.get("hostname")
        self.domainname: str | None = raw.get("domainname")
        self.mounts = [Mount(item) for item in raw.get("mounts", ())]
        self.linux = Linux(raw.get("linux", {}))
        self.annotations: dict[str, str] = dict(raw.get("annotations", {}))
