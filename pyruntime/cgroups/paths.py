"""``linux.cgroupsPath`` as runc's cgroupfs driver reads it.

* absolute (``/a/b``): from each hierarchy's root;
* relative (``a/b``): from the runtime's own cgroup in that hierarchy
  (/proc/self/cgroup), except on a unified (v2-only) host, where runc starts
  from the *parent* of its own cgroup: its own cgroup usually holds processes,
  and v2's no-internal-process rule would stop controllers being enabled;
* empty: runc's cgroupfs default, the container id as a relative path.

runc cleans ``..`` away lexically; we refuse it (and NUL) instead, so that a
path never silently means another place.  ``slice:prefix:name`` is the
systemd driver's syntax, which pyruntime does not have: refused, not read as
a folder name with colons as runc's cgroupfs driver would.
"""

from __future__ import annotations

from pyruntime.errors import ConfigError

FIELD = "linux.cgroupsPath"


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """The checked, cleaned path: ``/a/b`` (absolute) or ``a/b`` (relative)."""
    raw = cgroups_path or ""
    if not isinstance(raw, str):
        raise ConfigError(FIELD, "must be a string")
    if "\0" in raw:
        raise ConfigError(FIELD, "must not contain a nul byte")
    parts = raw.split("/")
    if ".." in parts:
        raise ConfigError(FIELD, "must not contain \"..\"")
    if raw.count(":") == 2 and "/" not in raw:
        raise ConfigError(FIELD, f"{raw!r} is a systemd slice:prefix:name path; "
                                 "the systemd cgroup driver is not supported")
    names = [part for part in parts if part not in ("", ".")]
    if not raw:
        names = [container_id]
    if not names:
        raise ConfigError(FIELD, "must name a cgroup below the root")
    joined = "/".join(names)
    return "/" + joined if raw.startswith("/") else joined


def resolve(inner: str, own_path: str, unified_mode: bool = False) -> str:
    """The container's cgroup in one hierarchy, relative to its mount (no leading "/").

    ``own_path`` is the runtime's own cgroup there, relative to the mount too."""
    if inner.startswith("/"):
        return inner.lstrip("/")
    base = own_path.strip("/")
    if unified_mode:
        base = base.rpartition("/")[0]
    return f"{base}/{inner}" if base else inner
