"""Applying the scheduler, I/O priority and personality to the init before its exec.

The scheduler and I/O priority are set while the init still holds
CAP_SYS_NICE / CAP_SYS_ADMIN (real-time policies and classes need them), so
before the capabilities are dropped; the exec'd process inherits them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyruntime.plan.scheduling import Scheduler
    from pyruntime.syscalls.linux import LinuxSyscalls

IOPRIO_WHO_PROCESS = 1


def apply_scheduler(sys: LinuxSyscalls, scheduler: Scheduler | None) -> None:
    if scheduler is not None:
        sys.sched_setattr(scheduler.policy, scheduler.flags, scheduler.nice, scheduler.priority,
                          scheduler.runtime, scheduler.deadline, scheduler.period)


def apply_io_priority(sys: LinuxSyscalls, io_priority: int | None) -> None:
    """For this process, and so for all that it starts: its process group would be the
    caller's as well (the init shares it), and the host must keep its own priority."""
    if io_priority is not None:
        sys.ioprio_set(IOPRIO_WHO_PROCESS, 0, io_priority)


def apply_personality(sys: LinuxSyscalls, domain: int | None) -> None:
    if domain is not None:
        sys.personality(domain)
