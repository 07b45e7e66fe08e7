"""Known deviations: (runtime name, check id) -> explanation.

A check listed here still FAILS its clause; the report shows it as
"deviation" with the explanation instead of as an unexplained failure.  Keep
every entry specific (what the runtime does instead) and remove entries once a
runtime version fixes them -- the report flags entries whose check passes.

Check ids are pytest node ids relative to ``conformance/``.
"""

from __future__ import annotations

_RUNC_POSTSTART = ("runc 1.1.5 runs poststart hooks inside `runc create` (libcontainer starts "
                   "the init and runs Poststart in the same Start() call), i.e. before `start` "
                   "and before the user program was exec'd (the hook sees the state 'created' and "
                   "`runc init` as the pid's command).")

DEVIATIONS: dict[tuple[str, str], str] = {
    # ---------------------------------------------------------------- runc 1.1.5
    ("runc", "test_runtime.py::test_delete_created_errors"):
        "runc deletes a `created` container without --force (it kills the init waiting on "
        "the exec fifo and removes the state); the spec requires an error for any status but "
        "stopped.",
    ("runc", "test_config.py::test_rlimits_duplicate_errors"):
        "runc does not reject duplicated rlimit types; it applies them in order (last wins).",
    ("runc", "test_config.py::test_domainname"):
        "runc 1.1.5 does not implement `domainname` (support arrived in runc 1.2.0); the "
        "field is ignored and the container keeps '(none)'.",
    ("runc", "test_config.py::test_hooks_order"): _RUNC_POSTSTART,
    ("runc", "test_config.py::test_poststart_after_exec_before_start_returns"): _RUNC_POSTSTART,
    ("runc", "test_config.py::test_poststart_hook_failure"):
        _RUNC_POSTSTART + " A failing poststart hook therefore makes `create` fail, not `start`.",
    ("runc", "test_config.py::test_start_container_hook_failure"):
        "runc runs startContainer hooks in `runc init` after `runc start` has already returned "
        "0 (start only opens the exec fifo); a failing hook kills the init but start reports "
        "success.",
    ("runc", "test_config.py::test_poststop_hook_failure"):
        "runc stops at the first failing poststop hook (it logs a warning but does not run "
        "the remaining poststop hooks).",
    ("runc", "test_config_linux.py::test_namespace_time"):
        "runc 1.1.5 has no time namespace support ('namespace {\"time\" \"\"} does not exist'); "
        "added in runc 1.2.0. The clause is a SHOULD.",
    ("runc", "test_config_linux.py::test_devices_conflicting_file_errors"):
        "runc ignores EEXIST from mknod: an existing regular file at a device path is kept and "
        "create succeeds, so the requested device is silently missing.",
    ("runc", "test_config_linux.py::test_rootfs_propagation_shared"):
        "runc applies rootfsPropagation to the parent of the rootfs in the new mount namespace "
        "(before pivot_root), not to the rootfs mount itself; the container's / stays private.",
    ("runc", "test_config_linux.py::test_rootfs_propagation_unbindable"):
        "With rootfsPropagation=unbindable runc makes the mount tree unbindable before it "
        "bind-mounts the rootfs onto itself, so the bind fails with EINVAL and create errors.",
    # ---------------------------------------------------------------- crun 1.8.1
    ("crun", "test_runtime.py::test_delete_created_errors"):
        "crun deletes a `created` container without --force, like runc.",
    ("crun", "test_config.py::test_accepts_current_oci_version"):
        "crun 1.8.1 (spec 1.0.0, libocispec of its time) rejects config ociVersion 1.2.0 and "
        "later with 'unknown version specified'; 1.0.x and 1.1.0 are accepted.",
    ("crun", "test_config.py::test_rlimits_duplicate_errors"):
        "crun does not reject duplicated rlimit types.",
    ("crun", "test_config.py::test_hooks_receive_state_on_stdin"):
        "crun 1.8.1 passes startContainer hooks a synthetic state: bundle '/', pid 0, status "
        "'starting' (not the container's bundle).",
    ("crun", "test_config.py::test_hook_state_pid_container_namespace"):
        "crun passes pid 0 (not 1, the container process as seen in its pid namespace) to "
        "createContainer/startContainer hooks.",
    ("crun", "test_config.py::test_create_hook_failure_runs_poststop"):
        "crun does not run poststop hooks when create fails because of a hook (the spec "
        "continues the lifecycle at step 12, so step 13 runs poststop).",
    ("crun", "test_config.py::test_start_container_hook_failure"):
        "crun 1.8.1 runs startContainer hooks in the container init after `crun start` has "
        "returned 0; a failing hook stops the container but start reports success.",
    ("crun", "test_config.py::test_poststart_hook_failure"):
        "crun 1.8.1 only logs a failing poststart hook: start returns 0 and the container "
        "keeps running.",
    ("crun", "test_config_linux.py::test_namespace_time"):
        "crun 1.8.1 fails to create a container with a new time namespace on this kernel "
        "('write to sync socket: Connection reset by peer'). The clause is a SHOULD.",
    ("crun", "test_config_linux.py::test_namespace_duplicate_errors"):
        "crun does not reject duplicated namespace types.",
    ("crun", "test_config_linux.py::test_devices_conflicting_file_errors"):
        "crun ignores EEXIST when creating device nodes: the existing regular file stays and "
        "create succeeds.",
    # ---------------------------------------------------------------- pyruntime
    ("pyruntime", "test_runtime.py::test_delete_created_errors"):
        "pyruntime deletes a `created` container without --force, as runc and crun do: "
        "containerd's shim deletes a created task that way, and an engine must not notice "
        "the switch from runc.",
    ("pyruntime", "test_config.py::test_capabilities_unknown_is_only_a_warning"):
        "pyruntime refuses an unknown capability name at create (a one-line error naming "
        "the field) instead of warning: a deliberate choice for a privilege boundary "
        "(issue: process confinement), where a typo must not silently run a container "
        "with other capabilities than asked for.",
    ("pyruntime", "test_config.py::test_mount_relative_destination"):
        "pyruntime refuses a relative mount destination (deprecated in the spec) with a "
        "one-line error naming the mount, as runc 1.1 does.",
}


def explain(runtime: str, check: str) -> str | None:
    """The explanation for a known deviation, or None."""
    return DEVIATIONS.get((runtime, check))
