"""Shared fixtures for the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from unit_helpers import FakeProc


@pytest.fixture
def fake_proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")
