"""What ``pyruntime features`` reports (features.md): built from the same tables
the runtime uses, so it cannot claim more than the code does.  Fixed in the
code, never probed from the host: a feature the host lacks is still one that
pyruntime recognises."""

from __future__ import annotations

from pyruntime import OCI_VERSION, __version__
from pyruntime.plan.hook_kinds import HOOK_KINDS
from pyruntime.plan.capabilities import CAPABILITIES
from pyruntime.plan.mounts import FLAG_OPTIONS, PROPAGATION_OPTIONS, RECURSIVE_OPTIONS
from pyruntime.plan import seccomp
from pyruntime.plan.namespaces import NAMESPACES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION_MIN = "1.0.0"


def features() -> dict[str, Any]:
    mount_options = sorted({*FLAG_OPTIONS, *PROPAGATION_OPTIONS, *RECURSIVE_OPTIONS})
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": mount_options,
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": list(CAPABILITIES),
            # v2 device rules become an eBPF filter (cgroups/devices_bpf.py), as in runc
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "seccomp": {"enabled": True, "actions": list(seccomp.ACTIONS),
                        "operators": list(seccomp.OPERATORS),
                        "archs": list(seccomp.ARCHITECTURES),
                        "knownFlags": list(seccomp.FLAGS),
                        "supportedFlags": [flag for flag in seccomp.FLAGS
                                           if flag != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]},
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": True},  # pyruntime/netdevices.py
        },
        "annotations": {"org.opencontainers.runtime.pyruntime.version": __version__},
    }
