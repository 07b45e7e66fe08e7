"""The ``vm`` marker: tests that boot a QEMU guest with real cgroup v2 (harness.py).

A vm test is skipped, with the reason (naming the apt package), only when the
VM cannot be had here: no qemu-system-x86_64, no static /bin/busybox, or the
Debian kernel package cannot be fetched.  When everything is there and the VM
does not boot, the test fails: harness.VMBootError carries the console tail.
"""

from __future__ import annotations

import functools

import pytest

from . import harness


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vm: boots a QEMU (TCG) guest with real cgroup v2 through tests/vm/harness.py; "
        "skipped when qemu-system-x86, busybox-static or the Debian kernel cannot be had",
    )


@functools.cache
def _unavailable() -> str | None:
    # Builds (or finds cached) kernel + initramfs once per process; a VMBootError
    # here (a broken package, say) propagates and fails the test: no silent skip.
    return harness.unavailable_reason()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("vm") is None:
        return
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def run_in_vm():  # type: ignore[no-untyped-def]
    """harness.run_in_vm, for tests that prefer a fixture to an import."""
    return harness.run_in_vm
