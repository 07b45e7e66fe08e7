"""pyruntime.jsonio: the ``json`` package's C core without its import cost.

It claims byte-for-byte agreement with ``json.dumps`` and the same parser as
``json.loads``, plus stricter rules for configs (no duplicate keys, no NaN).
The claims are checked against ``json`` itself on generated documents.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyruntime import jsonio
from pyruntime.jsonio import JSONError

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_dumps_agrees_with_json(value: Any) -> None:
    assert jsonio.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert jsonio.dumps(value, pretty=True) == json.dumps(value, indent=2)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.sampled_from([None, 0, 2, 4]))
def test_loads_agrees_with_json(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=indent == 2)
    assert jsonio.loads(text) == json.loads(text)
    assert jsonio.loads(text.encode()) == json.loads(text)
    assert jsonio.loads(f" \n\t{text}\r\n ") == value


def test_pretty_empty_containers() -> None:
    assert jsonio.dumps({"a": {}, "b": [], "c": [{}]}, pretty=True) == json.dumps(
        {"a": {}, "b": [], "c": [{}]}, indent=2)


def test_non_ascii_is_escaped_like_json() -> None:
    assert jsonio.dumps({"k": "caf\u00e9 \U0001f600"}) == '{"k":"caf\\u00e9 \\ud83d\\ude00"}'


@pytest.mark.parametrize("text", ['{"a":1,"a":2}', '{"x":{"b":1,"b":1}}', '[{"k":0,"k":0}]'])
def test_duplicate_keys_refused(text: str) -> None:
    with pytest.raises(JSONError, match="duplicate key"):
        jsonio.loads(text)
    json.loads(text)  # legal JSON: the refusal is ours


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_nan_and_infinity_refused_when_reading(text: str) -> None:
    with pytest.raises(JSONError, match="is not valid JSON"):
        jsonio.loads(text)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_refused_when_writing(value: float) -> None:
    with pytest.raises(JSONError, match="nan and infinity are not valid JSON"):
        jsonio.dumps(value)
    with pytest.raises(ValueError):
        jsonio.dumps([value])
    with pytest.raises(ValueError):
        jsonio.dumps({"a": value}, pretty=True)


def test_nested_nan_raises_jsonerror() -> None:
    with pytest.raises(JSONError):
        jsonio.dumps({"a": [math.nan]})


def test_unencodable_values() -> None:
    with pytest.raises(JSONError, match="cannot encode set as JSON"):
        jsonio.dumps({"a": {1}})


_EXTRA_WS: list[pytest.MarkDecorator] = []


@pytest.mark.parametrize(("text", "where"), [
    ("{}x", "line 1 column 3"), ("[1]]", "line 1 column 4"),
    pytest.param("{} x", "line 1 column 4", marks=_EXTRA_WS),
    pytest.param('{"a": 1}\n\n  ]', "line 3 column 3", marks=_EXTRA_WS),
    pytest.param("1 2", "line 1 column 3", marks=_EXTRA_WS),
])
def test_trailing_data(text: str, where: str) -> None:
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(text)
    assert f"line {reference.value.lineno} column {reference.value.colno}" == where
    with pytest.raises(JSONError) as caught:
        jsonio.loads(text)
    assert str(caught.value) == f"extra data at {where}"


def test_trailing_whitespace_is_fine() -> None:
    assert jsonio.loads('{"a": 1} \n\t\r\n') == {"a": 1}


@pytest.mark.parametrize("text", [
    "", "   ", "{", '{"a": tru}', '{\n  "a": 1,\n  "b": \n}', '[1,]', '{"a" 1}', '"\x01"',
    '{\n\n   "key": [1, 2,, 3]}', "\ufeff{}", "'single'",
])
def test_error_positions_match_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(text)
    with pytest.raises(JSONError) as caught:
        jsonio.loads(text)
    expected = f"line {reference.value.lineno} column {reference.value.colno}"
    assert str(caught.value).endswith(f" at {expected}")
    assert str(caught.value).startswith(reference.value.msg.lower().split(":")[0])


@settings(max_examples=200, deadline=None)
@given(VALUES.filter(lambda v: isinstance(v, (dict, list))), st.data())
def test_truncated_documents_report_jsons_position(value: Any, data: st.DataObject) -> None:
    text = json.dumps(value, indent=2)
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    broken = text[:cut]
    try:
        json.loads(broken)
    except json.JSONDecodeError as reference:
        with pytest.raises(JSONError) as caught:
            jsonio.loads(broken)
        assert str(caught.value).endswith(f"line {reference.lineno} column {reference.colno}")
    else:  # a prefix that is itself a document, e.g. "1" of "12"
        assert jsonio.loads(broken) == json.loads(broken)


def test_invalid_utf8() -> None:
    with pytest.raises(JSONError) as caught:
        jsonio.loads(b'{"a": "\xff"}')
    assert str(caught.value) == "not utf-8 at byte 7"


def test_deep_nesting_is_a_jsonerror() -> None:
    with pytest.raises(JSONError):
        jsonio.loads("[" * 100_000 + "]" * 100_000)


def test_load_file(tmp_path: Any) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'{"a": [1, 2.5, null]}')
    assert jsonio.load_file(str(path)) == {"a": [1, 2.5, None]}
    with pytest.raises(FileNotFoundError):
        jsonio.load_file(str(tmp_path / "missing"))


def test_importing_jsonio_does_not_import_json() -> None:
    import subprocess
    import sys

    code = "import sys, pyruntime.jsonio as j; j.loads('[1]'); j.dumps({}); print('json' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
