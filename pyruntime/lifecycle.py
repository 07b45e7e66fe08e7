"""The container lifecycle: the only code that writes state.

Each operation locks the container's folder, checks the transition against
``state.TRANSITIONS``, acts, and records the result.  ``create`` cleans up
after itself in one place: whatever fails, the folder, the processes and
(being in their own mount namespace) the mounts are gone.
"""

from __future__ import annotations

import os

from pyruntime import OCI_VERSION, state
from pyruntime.errors import (ChildError, ConfigError, HookError, NotFoundError, PyRuntimeError,
                              StateError, SyscallError)
from pyruntime.procfs import ProcFS
from pyruntime.state import ContainerDir, State, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

    from pyruntime.cgroups import Manager
    from pyruntime.process.context import LaunchContext
    from pyruntime.process.sync import Channel
    from pyruntime.spec.model import Process, Spec
    from pyruntime.syscalls.linux import LinuxSyscalls

SIGKILL = 9


class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "preserve_fds",
                 "new_keyring")

    def __init__(self, bundle: str, pid_file: str | None = None,
                 console_socket: str | None = None, no_pivot: bool = False,
                 preserve_fds: int = 0, new_keyring: bool = True) -> None:
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        self.new_keyring = new_keyring


class Runtime:
    """Operations on the containers under one ``--root``."""

    __slots__ = ("store", "procfs", "_syscalls")

    def __init__(self, root: str, procfs: ProcFS | None = None,
                 syscalls: LinuxSyscalls | None = None) -> None:
        self.procfs = procfs or ProcFS()
        self.store = StateStore(root, self.procfs)
        self._syscalls = syscalls

    @property
    def syscalls(self) -> LinuxSyscalls:
        """Built on first use: ``state`` and ``start`` never load libc."""
        if self._syscalls is None:
            from pyruntime.syscalls.linux import LinuxSyscalls

            self._syscalls = LinuxSyscalls()
        return self._syscalls

    # --- create ----------------------------------------------------------------
    def create(self, container_id: str, options: CreateOptions) -> State:
        from pyruntime.lsm import check_available
        from pyruntime.spec.load import load_spec

        state.check_id(container_id)
        spec = load_spec(options.bundle)
        check_available(spec)
        _check_net_devices(spec)
        _check_preserved_fds(options.preserve_fds)
        folder = self.store.claim(container_id)
        try:
            return self._create_in(folder, spec, options)
        except BaseException as exc:
            folder.remove()
            if isinstance(exc, HookError):  # runtime.md: a failed create hook goes on at step 12
                record = State(container_id, state.STOPPED, spec.bundle, spec.root_path,
                               spec.annotations, config=spec.raw)
                self._run_poststop(record)
            raise
        finally:
            folder.close()

    def _create_in(self, folder: ContainerDir, spec: Spec, options: CreateOptions) -> State:
        """Cgroup, then the launch; whatever fails kills what was started and removes the
        cgroup here (the caller removes the folder; the mounts die with the mount namespace)."""
        from pyruntime import namespaces
        from pyruntime.process import parent

        record = State(folder.id, state.CREATING, spec.bundle, spec.root_path,
                       spec.annotations, owner=os.getuid(), config=spec.raw)
        folder.write_state(record)
        cgroup = make_cgroup(spec, folder.id, self.procfs)
        running = None
        fds: list[int] = []
        context = None
        try:
            record.cgroup = cgroup.to_json()
            folder.write_state(record)  # from here on, delete --force knows the cgroup
            fds = [_make_fifo(folder.fifo_path), _make_fifo(folder.status_path)]
            context, from_children, to_children = _launch_context(
                spec, options, (fds[0], fds[1]), folder, self.syscalls,
                record.hook_state(state.CREATING, OCI_VERSION))
            context.cgroup = cgroup
            running = parent.launch(context, from_children, to_children)
            info = self.procfs.process(running.init_pid)
            if info is None:
                raise StateError("container init exited during create")
            record.pid, record.start_time, record.status = info.pid, info.start_time, state.CREATED
            folder.write_state(record)
            if options.pid_file:
                write_pid_file(options.pid_file, record.pid)
        except BaseException:
            if running is not None:
                running.abort()
            _remove_cgroup(cgroup)
            raise
        finally:
            for fd in fds:
                os.close(fd)
            if running is not None:  # linux.netDevices: moved for good (or back by abort)
                running.release_net_devices()
            if context is not None:
                namespaces.close_all(context.joined_fds)
                if context.console_socket is not None:
                    context.console_socket.close()
        return record

    # --- start, kill, delete, state ---------------------------------------------
    def start(self, container_id: str) -> None:
        """Release the init; it reports on exec.status until its exec (see process/sync.py).

        A failing startContainer or poststart hook stops the container and makes
        ``start`` fail; ``delete`` then finishes the lifecycle (poststop)."""
        folder = self.store.open(container_id)
        try:
            record = folder.read_state()
            status = self.store.current_status(folder, record, locked=True)
            after = state.check_transition("start", container_id, status)
            try:
                _release_init(folder, self.procfs, record)
                record.status = after
                folder.write_state(record)
                self._run_poststart(record)
            except BaseException:
                self._kill_and_wait(record)
                record.status = state.STOPPED
                folder.write_state(record)
                raise
        finally:
            folder.close()

    def _run_poststart(self, record: State) -> None:
        from pyruntime.hooks import hooks_of, run_hooks

        hooks = hooks_of(record.hooks, "poststart")
        if hooks:
            run_hooks("poststart", hooks, record.hook_state(state.RUNNING, OCI_VERSION))

    def _run_poststop(self, record: State) -> list[str]:
        from pyruntime.hooks import hooks_of, run_poststop

        hooks = hooks_of(record.hooks, "poststop")
        return run_poststop(hooks, record.hook_state(state.STOPPED, OCI_VERSION)) if hooks else []

    def status_of(self, container_id: str) -> tuple[State, str]:
        folder = self.store.open(container_id, shared=True, wait=False)
        try:
            record = folder.read_state()
            locked = not self.store.is_locked_by_other(folder)
            return record, self.store.current_status(folder, record, locked)
        finally:
            folder.close()

    def oci_state(self, container_id: str) -> dict[str, object]:
        record, status = self.status_of(container_id)
        return record.oci_state(status, OCI_VERSION)

    def list_states(self) -> list[dict[str, object]]:
        result = []
        for container_id in self.store.ids():
            try:
                result.append(self.oci_state(container_id))
            except (NotFoundError, PyRuntimeError):
                continue
        return result

    def exec(self, container_id: str, process_raw: dict[str, Any], preserve_fds: int = 0,
             ignore_paused: bool = False, console_socket: str | None = None) -> int:
        """Start ``process_raw`` (a process.json) in the container; its pid once exec'd."""
        from pyruntime.plan.capabilities import plan_capabilities
        from pyruntime.plan.scheduling import parse_cpu_list
        from pyruntime.plan.seccomp import plan_seccomp
        from pyruntime.process import join
        from pyruntime.process.finish import ProcessTail

        record, status = self.status_of(container_id)
        if status == state.PAUSED and not ignore_paused:
            raise StateError("cannot exec in a paused container")
        if status not in (state.CREATED, state.RUNNING, state.PAUSED):
            raise StateError(f"cannot exec in a {status} container")
        process = check_exec_process(process_raw, record)
        _check_preserved_fds(preserve_fds)
        namespace_fds = join.open_namespaces(self.procfs, record.pid)
        try:
            if not self.procfs.is_alive(record.pid, record.start_time):
                raise StateError("container not running")
            tail = ProcessTail(self.syscalls, process, plan_capabilities(process.capabilities),
                               preserve_fds, [])
            affinity = process.raw.get("execCPUAffinity") or {}
            initial, final = (parse_cpu_list(affinity[key], f"process.execCPUAffinity.{key}")
                              if affinity.get(key) else None for key in ("initial", "final"))
            tail.final_cpus = final
            tail.seccomp = plan_seccomp(record.config.get("linux", {}).get("seccomp"))
            tail.console_socket = _console_socket(process.terminal, console_socket)
            tail.preload()
            cgroup = _cgroup_of(record) if record.cgroup is not None else None
            return join.spawn(self.syscalls, tail, namespace_fds, [], initial, cgroup)
        finally:
            for fd in namespace_fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass  # the joiner's copy was closed in the child only

    def pause(self, container_id: str) -> None:
        self._freeze(container_id, "pause")

    def resume(self, container_id: str) -> None:
        self._freeze(container_id, "resume")

    def _freeze(self, container_id: str, operation: str) -> None:
        """pause: freeze the cgroup (runc has no pause without one); resume: thaw it."""
        folder = self.store.open(container_id)
        try:
            record = folder.read_state()
            status = self.store.current_status(folder, record, locked=True)
            after = state.check_transition(operation, container_id, status)
            if record.cgroup is None:
                raise StateError(f"cannot {operation} a container without a cgroup")
            cgroup = _cgroup_of(record)
            cgroup.freeze() if operation == "pause" else cgroup.thaw()
            record.status = after
            folder.write_state(record)
        finally:
            folder.close()

    def update(self, container_id: str, changes: dict[str, Any]) -> None:
        """New limits for a live container: only what ``changes`` names is written, and
        all of it is converted (and so checked) before the first write.  The config kept
        in state.json follows, so later updates start from the limits in force."""
        from pyruntime import cgroups
        from pyruntime.plan import cgroups as cgroup_plan

        folder = self.store.open(container_id)
        try:
            record = folder.read_state()
            status = self.store.current_status(folder, record, locked=True)
            if status not in (state.CREATED, state.RUNNING, state.PAUSED):
                raise StateError(f"cannot update a {status} container")
            if record.cgroup is None:
                raise StateError("cannot update a container without a cgroup")
            manager = _cgroup_of(record)
            if isinstance(manager, cgroups.CgroupV2):
                manager.apply(cgroup_plan.v2_files(changes))
            else:
                manager.update(cgroup_plan.v1_files(changes))
            linux = record.config.setdefault("linux", {})
            linux["resources"] = _merged(linux.get("resources") or {}, changes)
            folder.write_state(record)
        finally:
            folder.close()

    def pids(self, container_id: str) -> list[int]:
        """Every process of the container: its cgroup's, else its init's pid namespace."""
        record, status = self.status_of(container_id)
        if status == state.STOPPED:
            return []
        if record.cgroup is not None:
            return sorted(_cgroup_of(record).pids())
        inode = self.procfs.namespace_inode(record.pid, "pid")
        if inode is None or inode == self.procfs.namespace_inode("self", "pid"):
            return [record.pid]
        return sorted(self.procfs.pids_in_namespace("pid", inode))

    def kill(self, container_id: str, signal_number: int, all_processes: bool = False) -> None:
        folder = self.store.open(container_id)
        try:
            record = folder.read_state()
            status = self.store.current_status(folder, record, locked=True)
            state.check_transition("kill", container_id, status)
            self._signal(record, signal_number, all_processes)
        finally:
            folder.close()

    def _signal(self, record: State, signal_number: int, all_processes: bool) -> None:
        from pyruntime.signalling import send_signal, signal_namespace

        if all_processes and record.cgroup is not None:
            _cgroup_of(record).kill(signal_number)
        elif all_processes:
            signal_namespace(self.syscalls, self.procfs, record.pid, record.start_time,
                             signal_number)
        else:
            send_signal(self.syscalls, self.procfs, record.pid, record.start_time, signal_number)

    def delete(self, container_id: str, force: bool = False) -> list[str]:
        """Destroy the container, then run poststop hooks; their failures are the
        warnings returned (runtime.md: they must not stop the lifecycle)."""
        folder = self.store.open(container_id)
        try:
            if not folder.has_state():  # a create that died before its first write
                folder.remove()
                return []
            record = folder.read_state()
            status = self.store.current_status(folder, record, locked=True)
            state.check_transition("delete --force" if force else "delete", container_id, status)
            if status == state.PAUSED:  # frozen processes cannot die of SIGKILL
                _cgroup_of(record).thaw()
            if status != state.STOPPED:
                self._kill_and_wait(record)
            if record.cgroup is not None:
                cgroup = _cgroup_of(record)
                cgroup.kill()  # what the init left behind (it had no pid namespace)
                cgroup.remove()
            folder.remove()
        finally:
            folder.close()
        return self._run_poststop(record)

    def _kill_and_wait(self, record: State) -> None:
        from pyruntime.signalling import signal_namespace, wait_gone

        signal_namespace(self.syscalls, self.procfs, record.pid, record.start_time, SIGKILL)
        wait_gone(self.procfs, record.pid, record.start_time)


def check_exec_process(process_raw: dict[str, Any], record: State) -> Process:
    """A process.json is checked like config.json's ``process``; errors name process.json."""
    from pyruntime.spec import schema_check, validate
    from pyruntime.spec.model import Process, Spec

    document = {**record.config, "process": process_raw}
    try:
        schema_check.validate_config(document)
        validate.check_process(Spec(document, record.bundle, record.rootfs))
    except ConfigError as exc:
        field = exc.field.removeprefix("process.").removeprefix("process")
        raise ConfigError(field, exc.problem, "process.json") from exc
    return Process(process_raw)


def _check_preserved_fds(count: int) -> None:
    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError as exc:
            raise PyRuntimeError(f"--preserve-fds: descriptor {fd} is not open") from exc


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    result = dict(old)
    for key, value in new.items():
        both_dicts = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = _merged(result[key], value) if both_dicts else value
    return result


def make_cgroup(spec: Spec, container_id: str, procfs: ProcFS) -> Manager:
    """The container's cgroup, made and limited before anything of it runs.

    The device rules are runc's: the config's, then runc's default allow list, then
    one allow rule for each of ``linux.devices``.  v1 writes them to devices.allow/deny;
    v2 turns them into an eBPF device filter (cgroups/devices_bpf.py), attached by
    setup's apply, so a refused program removes the cgroup like a refused limit."""
    from pyruntime import cgroups
    from pyruntime.plan import cgroups as cgroup_plan

    manager = cgroups.manager_for(cgroups.detect_mode(procfs),
                                  spec.linux.raw.get("cgroupsPath") or None, container_id, procfs)
    resources = spec.linux.raw.get("resources") or {}
    rules = [*cgroup_plan.v1_device_rules(resources.get("devices")),
             *cgroup_plan.default_device_rules(),
             *(("devices.allow", cgroup_plan.device_rule_line(
                 "c" if device.type == "u" else device.type, device.major, device.minor,
                 "rwm")) for device in spec.linux.devices if device.type != "p")]
    if isinstance(manager, cgroups.CgroupV2):
        manager.device_rules = rules
    cgroups.setup(manager, resources, rules)
    return manager


def _cgroup_of(record: State) -> Manager:
    from pyruntime import cgroups

    assert record.cgroup is not None
    return cgroups.from_json(record.cgroup)


def _remove_cgroup(cgroup: Manager) -> None:
    """After a failed create: nothing of the container may stay.  Never raises."""
    try:
        cgroup.kill()
        cgroup.remove()
    except PyRuntimeError:
        pass


def _make_fifo(path: str) -> int:
    """A FIFO held open read-write by the init: opening it so never blocks."""
    os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


def _release_init(folder: ContainerDir, procfs: ProcFS, record: State) -> None:
    """One byte into exec.fifo releases the init; exec.status then tells how it went."""
    from pyruntime.process.sync import Channel, wait_for_exec

    status_fd = os.open(folder.status_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.set_blocking(status_fd, True)
        try:
            fd = os.open(folder.fifo_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # ENXIO: no reader, the init is gone
            raise StateError("cannot start a container that has stopped") from exc
        try:
            os.write(fd, b"0")
        except OSError as exc:
            raise SyscallError("write", "exec.fifo", exc.errno or 0) from exc
        finally:
            os.close(fd)
        os.unlink(folder.fifo_path)
        wait_for_exec(Channel(read_fd=status_fd))
    finally:
        os.close(status_fd)
    os.unlink(folder.status_path)


def _launch_context(spec: Spec, options: CreateOptions, fifos: tuple[int, int],
                    folder: ContainerDir, syscalls: LinuxSyscalls, hook_state: dict[str, object]
                    ) -> tuple[LaunchContext, Channel, Channel]:
    """Decide everything the children will do, before any fork."""
    from pyruntime import namespaces
    from pyruntime.cgroups.detect import mount_sources
    from pyruntime.plan.capabilities import plan_capabilities
    from pyruntime.plan.mounts import plan_mounts
    from pyruntime.plan.namespaces import plan_namespaces
    from pyruntime.plan.netdevices import plan_net_devices
    from pyruntime.plan.seccomp import plan_seccomp
    from pyruntime.process.context import LaunchContext
    from pyruntime.process.sync import pipe_pair

    assert spec.process is not None
    mounts = plan_mounts(spec.mounts)
    namespace_plan = plan_namespaces(spec.linux.namespaces)
    needs_cgroups = any(op.fstype in ("cgroup", "cgroup2") for op in mounts)
    preserved, extra_env = _passed_descriptors(options.preserve_fds)
    from_children, to_parent, to_children, from_parent = pipe_pair()
    context = LaunchContext(
        spec, syscalls, mounts, namespace_plan, namespaces.open_joined(namespace_plan),
        plan_capabilities(spec.process.capabilities),
        mount_sources() if needs_cgroups else [], fifos[0], fifos[1], options.no_pivot,
        options.new_keyring,
        preserved, extra_env, to_parent, from_parent, [folder.fd],
        {key: value for key, value in hook_state.items() if key not in ("pid", "status")})
    context.seccomp = plan_seccomp(spec.linux.raw.get("seccomp"))
    context.console_socket = _console_socket(spec.process.terminal, options.console_socket)
    context.net_devices = plan_net_devices(spec.linux.raw.get("netDevices"))
    return context, from_children, to_children


def _check_net_devices(spec: Spec) -> None:
    """linux.netDevices: every device is here and movable before create makes anything
    (the container's side is checked again by the parent, before the first move)."""
    from pyruntime.plan.netdevices import plan_net_devices

    plans = plan_net_devices(spec.linux.raw.get("netDevices"))
    if plans:  # only then: pyroute2 costs 300-400 ms to import
        from pyruntime.netdevices import check_devices

        check_devices(plans)


def _console_socket(terminal: bool, path: str | None) -> socket.socket | None:
    """runc's rule: a terminal needs somewhere to send its master (nobody else holds
    the pty); without a terminal the socket is not used."""
    if not terminal:
        return None
    if not path:
        raise ConfigError("process.terminal", "needs --console-socket to send the pty to")
    from pyruntime.tty import connect_console_socket

    return connect_console_socket(path)


def _passed_descriptors(preserve_fds: int) -> tuple[int, list[str]]:
    """--preserve-fds plus systemd socket activation's LISTEN_FDS, as runc counts them."""
    listen = os.environ.get("LISTEN_FDS", "")
    if listen.isdigit() and int(listen) > 0:
        count = int(listen)
        _check_preserved_fds(count + preserve_fds)
        return count + preserve_fds, [f"LISTEN_FDS={count}", "LISTEN_PID=1"]
    return preserve_fds, []


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: engines read it as soon as create returns."""
    path = os.path.abspath(path)
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    try:
        state.write_file_atomically(temporary, path, str(pid), 0o644)
    except OSError as exc:
        raise SyscallError("write pid file", path, exc.errno or 0) from exc
