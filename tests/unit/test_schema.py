"""Our JSON Schemas (schema/*.schema.json), checked with the reference ``jsonschema`` library.

The schemas are the single source the runtime validates against, so they must
accept every upstream "good" fixture of runtime-spec v1.3.0 and reject every
"bad" one.  ``test_schema_check.py`` checks that our fast validator agrees.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "runtime-spec-v1.3.0"
FIXTURES = SPEC / "schema" / "test"
SCHEMA_DIR = REPO / "schema"
KINDS = ("config", "state", "features")


def fixture_params(kind: str, expect: str) -> list[object]:
    """One pytest param per fixture file, or a single skipped param if the spec folder is missing."""
    folder = FIXTURES / kind / expect
    if not folder.is_dir():
        reason = f"runtime-spec v1.3.0 fixtures not found at {folder}"
        return [pytest.param(kind, None, id=f"{kind}/{expect}/missing", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(kind, path, id=f"{kind}/{expect}/{path.name}") for path in sorted(folder.glob("*.json"))]


@functools.lru_cache(maxsize=None)
def validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_and_self_contained(kind: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    for ref in refs:
        assert ref.startswith("#/$defs/") and ref[len("#/$defs/"):] in schema["$defs"], ref


def test_packaged_schema_dir_points_at_repo_schema() -> None:
    assert (REPO / "pyruntime" / "schema" / "config.schema.json").resolve() == \
        (SCHEMA_DIR / "config.schema.json").resolve()


@pytest.mark.parametrize(("kind", "path"), [p for kind in KINDS for p in fixture_params(kind, "good")])
def test_good_fixture_accepted(kind: str, path: Path) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(kind).iter_errors(json.loads(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(("kind", "path"), [p for kind in KINDS for p in fixture_params(kind, "bad")])
def test_bad_fixture_rejected(kind: str, path: Path) -> None:
    try:
        document = json.loads(path.read_text())
    except ValueError:
        return  # not JSON at all (invalid-json.json): rejected before the schema
    assert not validator(kind).is_valid(document)


@pytest.mark.parametrize("bundle", ["busybox", "locked-down"])
def test_repo_bundles_accepted(bundle: str) -> None:
    path = REPO / "bundles" / bundle / "config.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    validator("config").validate(json.loads(path.read_text()))


# Spec rules the upstream schema does not encode but ours does (spec text wins).
@pytest.mark.parametrize(("patch", "valid"), [
    ({"process": {"cwd": "/", "args": []}}, False),                       # args: at least one entry
    ({"process": {"cwd": "/"}}, False),                                    # args REQUIRED (non-Windows)
    ({"process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0}}}, False),  # POSIX user: gid REQUIRED
    ({"root": None}, False),
    ({"linux": {"resources": {"pids": {}}}}, True),                        # pids.limit OPTIONAL in v1.3.0
    ({"linux": {"resources": {"rdma": {"mlx5_1": {}}}}}, False),           # hcaHandles or hcaObjects
    ({"linux": {"devices": [{"type": "p", "path": "/dev/fifo"}]}}, True),   # p needs no major/minor
    ({"linux": {"devices": [{"type": "c", "path": "/dev/null"}]}}, False),
    ({"linux": {"memoryPolicy": {"nodes": "0"}}}, False),                  # mode REQUIRED
    ({"linux": {"personality": {"flags": []}}}, False),                     # domain REQUIRED
    ({"linux": {"intelRdt": {"memBwSchema": "L3:0=ff"}}}, False),
    ({"mounts": [{"destination": "/a", "uidMappings": []}]}, False),       # gidMappings must come too
    ({"annotations": {"": "x"}}, False),                                    # keys MUST NOT be empty
    ({"windows": {}, "root": None}, True),                                  # Windows: root rules differ
])
def test_spec_rules_beyond_upstream(patch: dict[str, object], valid: bool) -> None:
    document: dict[str, object] = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}}
    document.update(patch)
    document = {k: v for k, v in document.items() if v is not None}
    assert validator("config").is_valid(document) is valid


def test_state_pid_required_when_created_or_running() -> None:
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "created", "bundle": "/b"}
    assert not validator("state").is_valid(state)
    assert validator("state").is_valid({**state, "status": "stopped"})
    assert validator("state").is_valid({**state, "pid": 42})


def test_features_null_allowed_and_unknown_properties_rejected() -> None:
    base = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"}
    assert validator("features").is_valid({**base, "hooks": None, "linux": {"seccomp": None}})
    assert not validator("features").is_valid({**base, "linux": {"bogus": True}})
    assert not validator("features").is_valid({**base, "ociVersionMax": None})
