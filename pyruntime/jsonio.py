"""JSON without the cost of the ``json`` package.

``import json`` pulls in ``re`` and costs about 12 ms here, a third of runc's
whole ``run``.  The C accelerator ``_json`` that ``json`` itself uses does all
the real work and imports nothing, so this module drives it directly: the same
parser and encoder, minus the regex-based pure-Python fallbacks.  Output is
byte-for-byte what ``json.dumps`` gives for the same options.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"


class _DecoderContext:
    """The attributes ``_json.make_scanner`` reads off a ``json.JSONDecoder``."""

    __slots__ = ("strict", "object_hook", "object_pairs_hook", "parse_float",
                 "parse_int", "parse_constant", "memo")

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = _reject_duplicate_keys
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _reject_constant
        self.memo: dict[str, str] = {}


class JSONError(ValueError):
    """Malformed JSON; the message says where."""


def _reject_constant(name: str) -> None:
    raise JSONError(f"{name} is not valid JSON")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Duplicate keys are legal JSON but ambiguous in a config; refuse them."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONError(f"duplicate key {key!r}")
            seen.add(key)
    return result


_scan_once: Callable[[str, int], tuple[Any, int]] = _json.make_scanner(
    _DecoderContext())  # type: ignore[arg-type]


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line} column {column}"


def loads(text: str | bytes) -> Any:
    """Parse one JSON document; raise JSONError naming the line and column."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONError(f"not utf-8 at byte {exc.start}") from exc
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan_once(text, start)
    except JSONError:
        raise
    except RecursionError:
        raise JSONError("nested too deeply") from None
    except (StopIteration, ValueError, SystemError):
        # Malformed input: the C scanner's errors need json.decoder, so let the
        # full package (slow to import, but only on this path) say what is wrong.
        raise _describe_syntax_error(text) from None
    rest = text[end:]
    if rest.strip(_WHITESPACE):
        extra = end + len(rest) - len(rest.lstrip(_WHITESPACE))
        raise JSONError(f"extra data at {_position(text, extra)}")
    return value


def _describe_syntax_error(text: str) -> JSONError:
    import json

    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return JSONError(f"{exc.msg.lower()} at {_position(text, exc.pos)}")
    return JSONError("malformed json")


def load_file(path: str) -> Any:
    """Read and parse a JSON file (opened close-on-exec, as every file we open)."""
    with open(path, "rb") as handle:
        return loads(handle.read())


def _float_repr(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise JSONError("nan and infinity are not valid JSON")
    return float.__repr__(value)


def _unencodable(value: object) -> object:
    raise JSONError(f"cannot encode {type(value).__name__} as JSON")


# Positional arguments of c_make_encoder: markers, default, encoder, indent,
# key_separator, item_separator, sort_keys, skipkeys, allow_nan.
_compact = _json.make_encoder(None, _unencodable, _json.encode_basestring_ascii, None,
                              ":", ",", False, False, False)


def _pretty_lines(value: Any, depth: int, out: list[str]) -> None:
    """Indent like ``json.dumps(indent=2)``; the C encoder cannot indent in 3.11."""
    pad = "\n" + "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{_json.encode_basestring_ascii(str(k))}: " for k in value]
        out.append("{")
        for index, (prefix, item) in enumerate(zip(items, value.values())):
            out.append(prefix if index == 0 else "," + prefix)
            _pretty_lines(item, depth + 1, out)
        out.append("\n" + "  " * depth + "}")
    elif isinstance(value, list) and value:
        out.append("[")
        for index, item in enumerate(value):
            out.append(pad if index == 0 else "," + pad)
            _pretty_lines(item, depth + 1, out)
        out.append("\n" + "  " * depth + "]")
    else:
        out.append(dumps(value))


def dumps(value: Any, pretty: bool = False) -> str:
    """Serialise ``value``: compact by default, two-space indented if ``pretty``."""
    if pretty:
        out: list[str] = []
        _pretty_lines(value, 0, out)
        return "".join(out)
    if isinstance(value, float):
        return _float_repr(value)
    try:
        return "".join(_compact(value, 0))
    except JSONError:
        raise
    except ValueError as exc:  # NaN or infinity somewhere inside
        raise JSONError(str(exc).lower()) from None
