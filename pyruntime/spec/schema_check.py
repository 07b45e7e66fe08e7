"""A small JSON Schema validator for the ``create`` hot path.

Why not ``jsonschema``: importing it costs 160-240 ms and every engine call is
a fresh interpreter, while the whole ``create`` budget is about 40 ms.  This
module interprets exactly the keywords that ``schema/*.schema.json`` use and
nothing else; a schema that uses any other keyword fails when it is loaded
(``NotImplementedError``), so the schema files and this validator cannot drift
apart silently.  The tests check that it agrees with ``jsonschema`` on every
upstream fixture and on randomly mutated configs.

Each schema is loaded once per process, on first use, and compiled into nested
closures; validating a document is then a walk over the document only.  No
path strings are built unless something is wrong: a failure raises an internal
``_Invalid`` whose path is collected while it unwinds.

Only modules the interpreter has already loaded are imported here (``re`` is
imported lazily, and only for a ``pattern`` that has no hand-written check or
for a string containing a newline, to keep Python's ``$`` semantics exactly).
Integers are strict: ``true`` and ``1.0`` are not integers (``jsonschema``
accepts ``1.0``; the runtime would then pass a float to a system call).
"""

from __future__ import annotations

import os

from pyruntime import errors, jsonio

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Check = Callable[[Any], None]

_SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "..", "schema")

# Keywords that only annotate: accepted and ignored.
_ANNOTATIONS = frozenset({"$schema", "$comment", "title", "description"})

_TYPE_NAMES = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null"}


class _Invalid(Exception):
    """Internal: one failed check; ``parts`` is the JSON path, innermost first."""

    def __init__(self, problem: str, parts: list[str | int] | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.parts: list[str | int] = parts if parts is not None else []


_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool,
    "null": type(None)}


def _type_predicate(names: list[str]) -> Callable[[object], bool]:
    """``isinstance`` for JSON types; ``bool`` is never an integer or a number."""
    if "boolean" not in names and ("integer" in names or "number" in names):
        classes = tuple(_PY_TYPES[n] for n in names)
        return lambda value: isinstance(value, classes) and not isinstance(value, bool)
    classes = tuple(_PY_TYPES[n] for n in names)
    return lambda value: isinstance(value, classes)


def _format_path(parts: list[str | int]) -> str:
    """``['type', 2, 'namespaces', 'linux']`` -> ``linux.namespaces[2].type``."""
    out: list[str] = []
    for part in reversed(parts):
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and all(c.isalnum() or c in "_-" for c in part):
            out.append(f".{part}" if out else part)
        else:  # keys such as "net.ipv4.ip_forward" or "" stay unambiguous
            out.append(f"[{jsonio.dumps(part)}]")
    return "".join(out)


# Hand-written equivalents of the patterns our schemas use, so that a typical
# config never compiles a regex.  Each is exact for strings without a newline;
# strings with one go to ``re.search`` (what jsonschema does), where ``$`` may
# match before a trailing newline.
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_FAST_PATTERNS: dict[str, Callable[[str], bool]] = {
    "^RLIMIT_[A-Z]+$": lambda s: len(s) > 7 and s.startswith("RLIMIT_") and _UPPER.issuperset(s[7:]),
    "^CAP_[A-Z_]+$": lambda s: len(s) > 4 and s.startswith("CAP_") and (_UPPER | {"_"}).issuperset(s[4:]),
    "^[1-9][0-9]*[KMG]B$": lambda s: (len(s) >= 3 and s[0] in "123456789" and s[-1] == "B"
                                      and s[-2] in "KMG" and _DIGITS.issuperset(s[1:-2])),
    "^[0-9, -]*$": lambda s: (_DIGITS | {",", " ", "-"}).issuperset(s),
    "^[rwm]*$": lambda s: frozenset("rwm").issuperset(s),
    "^MB:[^\\n]*$": lambda s: s.startswith("MB:"),
    "^[^\\n]*$": lambda s: True,
}


def _regex_search(pattern: str) -> Callable[[str], bool]:
    import re  # lazily: costs ~10 ms, and a typical config never gets here

    compiled = re.compile(pattern)
    return lambda s: compiled.search(s) is not None


def _accept(value: object) -> None:
    return None


class _Compiler:
    """Turns one schema document into a ``Check`` closure, rejecting unknown keywords."""

    def __init__(self, name: str, root: dict[str, Any]) -> None:
        self.name = name
        self.defs: dict[str, Any] = root.get("$defs", {})
        self.compiled: dict[str, Check] = {}
        self.pending: dict[str, list[Check]] = {}
        self.simple: dict[str, Check] = {}

    def fail(self, pointer: str, what: str) -> NotImplementedError:
        return NotImplementedError(f"{self.name}#{pointer}: {what} is not supported by schema_check")

    def ref(self, target: str, pointer: str) -> Check:
        prefix = "#/$defs/"
        if not target.startswith(prefix) or target[len(prefix):] not in self.defs:
            raise self.fail(pointer, f"$ref {target!r}")
        name = target[len(prefix):]
        if name in self.compiled:
            return self.compiled[name]
        if name in self.pending:  # a recursive reference: bind late through a cell
            cell = self.pending[name]
            return lambda value: cell[0](value)
        cell = self.pending[name] = [_accept]
        cell[0] = self.compiled[name] = self.compile(self.defs[name], prefix[1:] + name)
        del self.pending[name]
        return cell[0]

    def compile(self, schema: Any, pointer: str) -> Check:
        if not isinstance(schema, dict):
            raise self.fail(pointer, f"schema {schema!r}")
        simple = schema.get("type") if len(schema) == 1 else None
        if isinstance(simple, str) and simple in self.simple:  # {"type": "string"} is everywhere
            return self.simple[simple]
        for keyword in schema:
            if keyword not in _KEYWORDS and keyword not in _ANNOTATIONS and not (keyword == "$defs" and pointer == ""):
                raise self.fail(pointer, f"keyword {keyword!r}")
        checks: list[Check] = []
        for keyword, build in _KEYWORDS.items():
            if keyword in schema:
                check = build(self, schema, pointer)
                if check is not None:
                    checks.append(check)
        if not checks:
            return _accept
        if len(checks) == 1:
            if isinstance(simple, str):
                self.simple[simple] = checks[0]
            return checks[0]
        sequence = tuple(checks)

        def check_all(value: object) -> None:
            for check in sequence:
                check(value)
        return check_all

    # -- keyword builders: each returns a Check, or None when another builds it

    @staticmethod
    def describe(schema: dict[str, Any]) -> str:
        """The one phrase that says what a value must be, e.g. ``an integer >= 0``."""
        if "enum" in schema:
            return "one of " + ", ".join(jsonio.dumps(v) for v in schema["enum"])
        types = schema.get("type")
        names = [types] if isinstance(types, str) else list(types or [])
        if names == ["integer"] or names == ["number"]:
            low, high = schema.get("minimum"), schema.get("maximum")
            base = _TYPE_NAMES[names[0]]
            if low is not None and high is not None:
                return f"{base} between {low} and {high}"
            if low is not None:
                return f"{base} >= {low}"
            if high is not None:
                return f"{base} <= {high}"
        if names == ["array"] and "minItems" in schema:
            count = schema["minItems"]
            return "a non-empty array" if count == 1 else f"an array of at least {count} items"
        return " or ".join(_TYPE_NAMES[n] for n in names)

    def build_type(self, schema: dict[str, Any], pointer: str) -> Check:
        types = schema["type"]
        names = [types] if isinstance(types, str) else types
        if not names or any(n not in _TYPE_NAMES for n in names):
            raise self.fail(pointer, f"type {types!r}")
        problem = "must be " + self.describe(schema)
        matches = _type_predicate(list(names))

        def check_type(value: object) -> None:
            if not matches(value):
                raise _Invalid(problem)
        return check_type

    def build_enum(self, schema: dict[str, Any], pointer: str) -> Check:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not values or not all(isinstance(v, str) for v in values):
            raise self.fail(pointer, "non-string enum/const")
        allowed = frozenset(values)
        problem = "must be " + ("one of " if "enum" in schema else "") + ", ".join(jsonio.dumps(v) for v in values)

        def check_enum(value: object) -> None:
            if not (isinstance(value, str) and value in allowed):
                raise _Invalid(problem)
        return check_enum

    def build_const(self, schema: dict[str, Any], pointer: str) -> Check | None:
        if "enum" in schema:
            raise self.fail(pointer, "enum together with const")
        return self.build_enum(schema, pointer)

    def build_minimum(self, schema: dict[str, Any], pointer: str) -> Check:
        """Checks ``minimum`` and ``maximum`` together, so the message can name the range."""
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("type") in ("integer", "number"):
            problem = "must be " + self.describe(schema)
        else:
            problem = "must be " + " and ".join(([f">= {low}"] if low is not None else [])
                                                 + ([f"<= {high}"] if high is not None else []))

        def check_bounds(value: object) -> None:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if (low is not None and value < low) or (high is not None and value > high):
                    raise _Invalid(problem)
        return check_bounds

    def build_maximum(self, schema: dict[str, Any], pointer: str) -> Check | None:
        return None if "minimum" in schema else self.build_minimum(schema, pointer)

    def build_min_length(self, schema: dict[str, Any], pointer: str) -> Check:
        count = schema["minLength"]
        problem = "must not be empty" if count == 1 else f"must be at least {count} characters long"

        def check_min_length(value: object) -> None:
            if isinstance(value, str) and len(value) < count:
                raise _Invalid(problem)
        return check_min_length

    def build_pattern(self, schema: dict[str, Any], pointer: str) -> Check:
        pattern: str = schema["pattern"]
        fast = _FAST_PATTERNS.get(pattern)
        slow: list[Callable[[str], bool]] = []
        problem = f"must match {pattern}"

        def check_pattern(value: object) -> None:
            if not isinstance(value, str):
                return
            if fast is not None and "\n" not in value:
                ok = fast(value)
            else:
                if not slow:
                    slow.append(_regex_search(pattern))
                ok = slow[0](value)
            if not ok:
                raise _Invalid(problem)
        return check_pattern

    def build_min_items(self, schema: dict[str, Any], pointer: str) -> Check:
        count = schema["minItems"]
        problem = "must be " + self.describe(schema) if schema.get("type") == "array" else \
            f"must have at least {count} items"

        def check_min_items(value: object) -> None:
            if isinstance(value, list) and len(value) < count:
                raise _Invalid(problem)
        return check_min_items

    def build_items(self, schema: dict[str, Any], pointer: str) -> Check:
        item_check = self.compile(schema["items"], pointer + "/items")

        def check_items(value: object) -> None:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    try:
                        item_check(item)
                    except _Invalid as exc:
                        exc.parts.append(index)
                        raise
        return check_items

    def build_required(self, schema: dict[str, Any], pointer: str) -> Check:
        names = tuple(schema["required"])

        def check_required(value: object) -> None:
            if isinstance(value, dict):
                for name in names:
                    if name not in value:
                        raise _Invalid("is required", [name])
        return check_required

    def build_properties(self, schema: dict[str, Any], pointer: str) -> Check:
        """``properties`` and ``additionalProperties`` in one pass over the object's keys."""
        props = {key: self.compile(sub, f"{pointer}/properties/{key}")
                 for key, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        closed = extra is False
        other = None if isinstance(extra, bool) else self.compile(extra, pointer + "/additionalProperties")

        def check_properties(value: object) -> None:
            if not isinstance(value, dict):
                return
            for key, item in value.items():
                check = props.get(key, other)
                if check is None:
                    if closed:
                        raise _Invalid("is not allowed", [key])
                    continue
                try:
                    check(item)
                except _Invalid as exc:
                    exc.parts.append(key)
                    raise
        return check_properties

    def build_additional(self, schema: dict[str, Any], pointer: str) -> Check | None:
        return None if "properties" in schema else self.build_properties(schema, pointer)

    def build_property_names(self, schema: dict[str, Any], pointer: str) -> Check:
        name_check = self.compile(schema["propertyNames"], pointer + "/propertyNames")

        def check_property_names(value: object) -> None:
            if isinstance(value, dict):
                for key in value:
                    try:
                        name_check(key)
                    except _Invalid as exc:
                        raise _Invalid(f"key {jsonio.dumps(key)} {exc.problem}") from None
        return check_property_names

    def build_dependent_required(self, schema: dict[str, Any], pointer: str) -> Check:
        rules = tuple((key, tuple(needed)) for key, needed in schema["dependentRequired"].items())

        def check_dependent_required(value: object) -> None:
            if isinstance(value, dict):
                for key, needed in rules:
                    if key in value:
                        for name in needed:
                            if name not in value:
                                raise _Invalid(f"is required when {key} is set", [name])
        return check_dependent_required

    def build_ref(self, schema: dict[str, Any], pointer: str) -> Check:
        return self.ref(schema["$ref"], pointer)

    def build_any_of(self, schema: dict[str, Any], pointer: str) -> Check:
        branches = schema["anyOf"]
        checks = tuple(self.compile(b, f"{pointer}/anyOf/{i}") for i, b in enumerate(branches))
        # "at least one of these properties" reads better than the first branch's error
        summary = ""
        if all(isinstance(b, dict) and set(b) == {"required"} for b in branches):
            names = [jsonio.dumps(n) for b in branches for n in b["required"]]
            summary = "must have at least one of " + ", ".join(names)

        def check_any_of(value: object) -> None:
            failures: list[_Invalid] = []
            for check in checks:
                try:
                    check(value)
                    return
                except _Invalid as exc:
                    failures.append(exc)
            if summary:
                raise _Invalid(summary)
            # the deepest failure is the branch that matched furthest (its type, say)
            raise max(failures, key=lambda exc: len(exc.parts))
        return check_any_of

    def build_if(self, schema: dict[str, Any], pointer: str) -> Check | None:
        condition = self.compile(schema["if"], pointer + "/if")
        then = self.compile(schema["then"], pointer + "/then") if "then" in schema else _accept
        otherwise = self.compile(schema["else"], pointer + "/else") if "else" in schema else _accept

        def check_if(value: object) -> None:
            try:
                condition(value)
            except _Invalid:
                otherwise(value)
            else:
                then(value)
        return check_if

    def build_then_else(self, schema: dict[str, Any], pointer: str) -> Check | None:
        if "if" not in schema:
            raise self.fail(pointer, "then/else without if")
        return None


# The order here is the order in which a node's keywords are checked: what a
# value is first, then its contents.  ``required`` comes before ``properties``
# so that a missing ``ociVersion`` is reported before anything nested.
_KEYWORDS: dict[str, Callable[[_Compiler, dict[str, Any], str], Check | None]] = {
    "type": _Compiler.build_type,
    "enum": _Compiler.build_enum,
    "const": _Compiler.build_const,
    "minimum": _Compiler.build_minimum,
    "maximum": _Compiler.build_maximum,
    "minLength": _Compiler.build_min_length,
    "pattern": _Compiler.build_pattern,
    "minItems": _Compiler.build_min_items,
    "items": _Compiler.build_items,
    "required": _Compiler.build_required,
    "properties": _Compiler.build_properties,
    "additionalProperties": _Compiler.build_additional,
    "propertyNames": _Compiler.build_property_names,
    "dependentRequired": _Compiler.build_dependent_required,
    "$ref": _Compiler.build_ref,
    "anyOf": _Compiler.build_any_of,
    "if": _Compiler.build_if,
    "then": _Compiler.build_then_else,
    "else": _Compiler.build_then_else,
}

_loaded: dict[str, Check] = {}


def load(name: str) -> Check:
    """Load and compile ``schema/<name>`` once per process; unknown keywords raise NotImplementedError."""
    check = _loaded.get(name)
    if check is None:
        root = jsonio.load_file(os.path.join(_SCHEMA_DIR, name))
        compiler = _Compiler(name, root)
        for def_name in compiler.defs:  # compile unused definitions too, so drift shows at once
            compiler.ref("#/$defs/" + def_name, "/$defs/" + def_name)
        check = _loaded[name] = compiler.compile(root, "")
    return check


def _validate(name: str, source: str, document: object) -> None:
    try:
        load(name)(document)
    except _Invalid as exc:
        raise errors.ConfigError(_format_path(exc.parts), exc.problem, source) from None


def validate_config(document: object) -> None:
    """Check a parsed config.json against schema/config.schema.json; raise ConfigError on the first problem."""
    _validate("config.schema.json", "config.json", document)


def validate_state(document: object) -> None:
    """Check a container state document against schema/state.schema.json (source "state.json")."""
    _validate("state.schema.json", "state.json", document)


def validate_features(document: object) -> None:
    """Check a features document against schema/features.schema.json (source "features.json")."""
    _validate("features.schema.json", "features.json", document)
