"""Helpers shared by the unit tests (a unique module name: not ``conftest``,
which other test folders also have)."""

from __future__ import annotations

from pathlib import Path


def stat_line(pid: int, comm: str = "sleep", state: str = "S", ppid: int = 1,
              start_time: int = 1000) -> str:
    """A /proc/PID/stat line: 52 fields, the 22nd being the start time in clock ticks."""
    after = [state, str(ppid)] + ["0"] * 17 + [str(start_time)] + ["0"] * 30
    return f"{pid} ({comm}) " + " ".join(after) + "\n"


class FakeProc:
    """A folder laid out like /proc, for ``ProcFS(root)``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(exist_ok=True)

    def add(self, pid: int, comm: str = "sleep", state: str = "S", ppid: int = 1,
            start_time: int = 1000) -> Path:
        folder = self.root / str(pid)
        folder.mkdir(exist_ok=True)
        (folder / "stat").write_text(stat_line(pid, comm, state, ppid, start_time))
        return folder

    def write(self, pid: int | str, name: str, text: str) -> None:
        folder = self.root / str(pid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
