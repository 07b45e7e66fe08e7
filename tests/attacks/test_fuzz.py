"""Property-based fuzzing of config.json (create), process.json (exec) and the
resources JSON (update): never a traceback, always one line of error or a correct
container, and nothing left behind after each example.

Each target runs at most ``EXAMPLES`` cases; the count of cases run is printed and
appended to /tmp/pyruntime-attack-fuzz.log (xdist hides prints).
"""

from __future__ import annotations

import copy
import re
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.helpers import BundleFactory, Runtime, write_bundle

from .conftest import force_delete, host_mounts, one_line_error_or_ok

pytestmark = pytest.mark.root

EXAMPLES = 100
COUNT_LOG = Path("/tmp/pyruntime-attack-fuzz.log")
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

ODD_TEXT = st.sampled_from(["", " ", "\u0000", "\n", "é", "\U0001f600", "\udcff"[:0] + "\u202e",
                            "../../etc", "/proc/self/fd/3", "a" * 5000, "-1", "1e400", "NaN",
                            "\\", "%s%n", "CAP_ALL"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.sampled_from([0, -1, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63]),
                    st.floats(allow_nan=False, allow_infinity=False), ODD_TEXT,
                    st.text(max_size=20))


def deep(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


HOSTILE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=5),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=4),
    st.integers(1, 800).map(deep),
    st.integers(1000, 200000).map(lambda n: f"__DEEP_{n}__"),  # spliced in as text
    st.integers(1000, 50000).map(lambda n: ["x"] * n),
    st.integers(100, 5000).map(lambda n: {f"k{i}": i for i in range(n)}),
)


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


class Doc:
    """The mutated document, with a short repr: hypothesis cannot pretty-print a
    3000-level nesting when it reports a failing example."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text = re.sub(r'"__DEEP_(\d+)__"', lambda m: "[" * int(m[1]) + "]" * int(m[1]),
                           json.dumps(value))

    def __repr__(self) -> str:
        return f"Doc({self.text[:800]}{'...' if len(self.text) > 800 else ''})"


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Doc:
    """1-3 mutations: replace a node with a hostile value, or delete it."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        candidates = [p for p in paths_of(doc) if p]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(HOSTILE)
    return Doc(doc)


def record(target: str, count: int) -> None:
    line = f"{time.strftime('%H:%M:%S')} {target}: {count} cases\n"
    print(line, end="")
    with open(COUNT_LOG, "a") as handle:
        handle.write(line)


def check_clean(rt: Runtime, mounts: set) -> None:
    assert not rt.root.exists() or os.listdir(rt.root) == [], os.listdir(rt.root)
    assert host_mounts() == mounts


def test_fuzz_create(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    base = bundles.config(["true"])
    mounts = host_mounts()
    counter = {"n": 0, "ok": 0}

    @SETTINGS
    @given(mutated(base))
    def case(config: Doc) -> None:
        counter["n"] += 1
        container = f"{cid}-{counter['n']}"
        bundle = write_bundle(bundles.base_dir / f"fuzz{counter['n']}", config.text)
        try:
            result = rt.create(container, bundle, timeout=20)
            one_line_error_or_ok(result)
            if result.returncode == 0:
                counter["ok"] += 1
                assert rt.status(container) == "created"
        finally:
            force_delete(rt, container)
        check_clean(rt, mounts)

    case()
    record(f"create ({counter['ok']} created)", counter["n"])
    assert counter["n"] >= 10


def test_fuzz_exec(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    rt.run_detached(cid, bundles.make(["sleep", "120"])).ok()
    base = bundles.config(["true"])["process"]
    counter = {"n": 0, "ok": 0}
    try:
        @SETTINGS
        @given(mutated(base))
        def case(process: Doc) -> None:
            counter["n"] += 1
            path = bundles.base_dir / f"process{counter['n']}.json"
            path.write_text(process.text)
            result = rt("exec", "--process", str(path), cid, timeout=20)
            assert "Traceback" not in result.stderr, result
            if result.returncode == 255:  # pyruntime's own failure: one line
                one_line_error_or_ok(result)
            else:
                counter["ok"] += 1
            assert rt.status(cid) == "running"

        case()
    finally:
        force_delete(rt, cid)
    record(f"exec ({counter['ok']} ran)", counter["n"])
    assert counter["n"] >= 10


def test_fuzz_update(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    rt.run_detached(cid, bundles.make(["sleep", "120"])).ok()
    base = {"memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 100}, "blockIO": {"weight": 500}}
    counter = {"n": 0, "ok": 0}
    try:
        @SETTINGS
        @given(mutated(base))
        def case(resources: Doc) -> None:
            counter["n"] += 1
            path = bundles.base_dir / f"resources{counter['n']}.json"
            path.write_text(resources.text)
            result = rt("update", "--resources", str(path), cid, timeout=20)
            one_line_error_or_ok(result)
            counter["ok"] += result.returncode == 0
            assert rt.status(cid) == "running"
            json.loads((rt.root / cid / "state.json").read_text())

        case()
    finally:
        force_delete(rt, cid)
    record(f"update ({counter['ok']} applied)", counter["n"])
    assert counter["n"] >= 10
