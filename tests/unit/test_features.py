"""``pyruntime features`` against the upstream features schema and against the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from pyruntime.plan.capabilities import CAPABILITIES
from pyruntime.plan.mounts import FLAG_OPTIONS
from pyruntime.spec import schema_check, validate
from pyruntime.spec.features import features

UPSTREAM = Path(__file__).resolve().parents[2].parent / "shared" / "runtime-spec-v1.3.0" / "schema"


def _printed() -> dict[str, object]:
    result = subprocess.run([sys.executable, "-m", "pyruntime", "features"], capture_output=True,
                            text=True, timeout=30, check=True)
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/runtime-spec-v1.3.0 is not here")
def test_output_is_valid_against_the_upstream_features_schema() -> None:
    resources = []
    for path in UPSTREAM.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(schema,
                                                            default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((UPSTREAM / "features-schema.json").read_text())
    jsonschema.Draft4Validator(schema, registry=registry).validate(_printed())


def test_output_is_valid_against_our_schema() -> None:
    schema_check.validate_features(_printed())


def test_it_tells_what_the_code_supports() -> None:
    document = features()
    linux = document["linux"]
    assert document["ociVersionMax"] == "1.3.0"
    assert set(linux["capabilities"]) == set(CAPABILITIES)
    assert set(FLAG_OPTIONS) <= set(document["mountOptions"])
    # what create refuses today must not be advertised as supported
    refused = {field for field, _ in validate.UNSUPPORTED}
    assert ("linux.seccomp" in refused) == (not linux["seccomp"]["enabled"])
    assert "linux.netDevices" not in refused and linux["netDevices"]["enabled"]
    assert "linux.intelRdt" in refused and not linux["intelRdt"]["enabled"]
    assert "linux.resources" not in refused and linux["cgroup"]["v1"] and linux["cgroup"]["v2"]
    assert not linux["cgroup"]["systemd"]  # --systemd-cgroup is refused
