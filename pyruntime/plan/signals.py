"""Signal names and numbers for ``kill``, without the ``signal`` module.

``import signal`` costs about 10 ms (it builds enums); ``kill`` only needs this
table.  Names are accepted as runc accepts them: ``TERM``, ``SIGTERM``,
``sigterm`` or a number.
"""

from __future__ import annotations

from pyruntime.errors import UsageError

SIGNALS: dict[str, int] = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN = 34
SIGRTMAX = 64


def parse_signal(text: str) -> int:
    """``"TERM"``, ``"SIGTERM"``, ``"15"``, ``"RTMIN+3"`` -> the signal number."""
    if text.isdigit():
        number = int(text)
        if 0 < number <= SIGRTMAX:
            return number
        raise UsageError(f"invalid signal: {text}")
    name = text.upper()
    name = name[3:] if name.startswith("SIG") else name
    if name in SIGNALS:
        return SIGNALS[name]
    if name[:5] in ("RTMIN", "RTMAX"):
        anchor = SIGRTMIN if name[:5] == "RTMIN" else SIGRTMAX
        offset = name[5:]
        if not offset:
            return anchor
        if offset[0] in "+-" and offset[1:].isdigit():
            number = anchor + int(offset)
            if SIGRTMIN <= number <= SIGRTMAX:
                return number
    raise UsageError(f"unknown signal {text!r}")
