"""pyruntime.spec.validate and spec.load: the rules no JSON Schema can say.

The runtime spec requires an error for invalid or unsupported values
(config.md), and engines show the message to users, so every check is
exercised with a spec that passes it and one that breaks it, and the
message must name the field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyruntime.errors import ConfigError
from pyruntime.spec import validate
from pyruntime.spec.load import load_spec
from pyruntime.spec.model import Spec

GOOD: dict[str, Any] = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin", "EMPTY="],
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
                "capabilities": {"bounding": ["CAP_KILL"]}},
    "hostname": "h",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["ro"]}],
    "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "pid"}],
              "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
              "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229}]},
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _spec(bundle: Path, change: Callable[[dict[str, Any]], object] | None = None) -> Spec:
    raw = copy.deepcopy(GOOD)
    if change is not None:
        change(raw)
    return Spec(raw, str(bundle), str(bundle / raw["root"]["path"]))


def _error(bundle: Path, change: Callable[[dict[str, Any]], object]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate.check_spec(_spec(bundle, change))
    return caught.value


def test_good_spec_passes(bundle: Path) -> None:
    validate.check_spec(_spec(bundle))


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.0.0-rc5", "1.1.0", "1.2.1",
                                     "1.3.0", "1.3.7", "1.3.0+dev"])
def test_supported_versions(bundle: Path, version: str) -> None:
    validate.check_spec(_spec(bundle, lambda raw: raw.update(ociVersion=version)))


@pytest.mark.parametrize("version", ["0.9.0", "2.0.0", "1.4.0", "1.0", "1", "", "1.x.0",
                                     "a.b.c", "1.3.0.1"])
def test_unsupported_versions(bundle: Path, version: str) -> None:
    error = _error(bundle, lambda raw: raw.update(ociVersion=version))
    assert error.field == "ociVersion"
    assert error.problem == (f"unsupported version {version!r}: "
                             "pyruntime supports 1.0.0 to 1.3.x")


def _set_path(raw: dict[str, Any], keys: tuple[str, ...], value: object) -> None:
    for key in keys[:-1]:
        raw = raw.setdefault(key, {})
    raw[keys[-1]] = value


@pytest.mark.parametrize(("field", "keys"), validate.UNSUPPORTED, ids=[f for f, _ in validate.UNSUPPORTED])
def test_unsupported_fields_are_refused(bundle: Path, field: str, keys: tuple[str, ...]) -> None:
    error = _error(bundle, lambda raw: _set_path(raw, keys, {"x": 1}))
    assert str(error) == f"config.json: {field}: is not supported by pyruntime yet"


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_empty_unsupported_fields_are_ignored(bundle: Path, empty: object) -> None:
    """Engines write ``"hooks": {}`` or ``"resources": {}``; that asks for nothing."""
    def change(raw: dict[str, Any]) -> None:
        raw["hooks"] = empty
        raw["linux"]["resources"] = empty
    validate.check_spec(_spec(bundle, change))


@pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
def test_idmapped_mounts_are_refused(bundle: Path, key: str) -> None:
    error = _error(bundle, lambda raw: raw["mounts"][1].update(
        {key: [{"containerID": 0, "hostID": 1000, "size": 1}]}))
    assert error.field == f"mounts[1].{key}"
    assert error.problem == "is not supported by pyruntime yet"


def test_root_must_be_a_directory(bundle: Path) -> None:
    (bundle / "file").write_text("")
    error = _error(bundle, lambda raw: raw["root"].update(path="file"))
    assert error.field == "root.path"
    assert error.problem == f"{bundle / 'file'} is not a directory"


CASES: list[Any] = [
    ("no process", lambda r: r.pop("process"), "process", "is required to create a container"),
    ("args empty", lambda r: r["process"].update(args=[]), "process.args",
     "must be a non-empty array"),
    ("args empty string", lambda r: r["process"].update(args=[""]), "process.args",
     "must be a non-empty array"),
    ("relative cwd", lambda r: r["process"].update(cwd="tmp"), "process.cwd",
     "must be an absolute path"),
    ("env without =", lambda r: r["process"]["env"].append("NOVALUE"), "process.env[2]",
     "must have the form KEY=value"),
    ("env without key", lambda r: r["process"]["env"].insert(0, "=x"), "process.env[0]",
     "must have the form KEY=value"),
    ("unknown rlimit", lambda r: r["process"]["rlimits"].append(
        {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}), "process.rlimits[1].type",
     "unknown resource limit 'RLIMIT_FOO'"),
    ("duplicate rlimit", lambda r: r["process"]["rlimits"].append(
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}), "process.rlimits[1].type",
     "RLIMIT_NOFILE is set twice"),
    ("soft > hard", lambda r: r["process"]["rlimits"][0].update(soft=1025),
     "process.rlimits[0].soft", "must not be greater than hard"),
    ("unknown capability", lambda r: r["process"]["capabilities"].update(
        effective=["CAP_KILL", "CAP_NOPE"]), "process.capabilities.effective[1]",
     "unknown capability 'CAP_NOPE'"),
    ("duplicate namespace", lambda r: r["linux"]["namespaces"].append({"type": "pid"}),
     "linux.namespaces[3].type", "namespace 'pid' is listed twice"),
    ("unknown namespace", lambda r: r["linux"]["namespaces"].insert(0, {"type": "foo"}),
     "linux.namespaces[0].type", "unknown namespace type 'foo'"),
    ("relative namespace path", lambda r: r["linux"]["namespaces"].append(
        {"type": "network", "path": "proc/1/ns/net"}), "linux.namespaces[3].path",
     "must be an absolute path"),
    ("missing namespace path", lambda r: r["linux"]["namespaces"].append(
        {"type": "network", "path": "/nonexistent/ns/net"}), "linux.namespaces[3].path",
     "/nonexistent/ns/net does not exist"),
    ("uid mappings without user ns", lambda r: r["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]), "linux.uidMappings",
     "needs a new user namespace in linux.namespaces"),
    ("gid mappings without user ns", lambda r: r["linux"].update(
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]), "linux.gidMappings",
     "needs a new user namespace in linux.namespaces"),
    ("user ns without uid mappings", lambda r: r["linux"]["namespaces"].append({"type": "user"}),
     "linux.uidMappings", "is required with a new user namespace"),
    ("user ns without gid mappings", lambda r: (
        r["linux"]["namespaces"].append({"type": "user"}),
        r["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])),
     "linux.gidMappings", "is required with a new user namespace"),
    ("mappings with a joined user ns", lambda r: (
        r["linux"]["namespaces"].append({"type": "user", "path": "/proc/self/ns/user"}),
        r["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])),
     "linux.uidMappings", "needs a new user namespace in linux.namespaces"),
    ("hostname without uts", lambda r: r["linux"]["namespaces"].pop(1), "hostname",
     "cannot be set without a uts namespace"),
    ("domainname without uts", lambda r: (r.pop("hostname"), r.update(domainname="d"),
                                          r["linux"]["namespaces"].pop(1)), "domainname",
     "cannot be set without a uts namespace"),
    ("no mount ns", lambda r: r["linux"]["namespaces"].pop(0), "linux.namespaces",
     "a mount namespace is required"),
    ("relative mount destination", lambda r: r["mounts"].append(
        {"destination": "data", "type": "tmpfs"}), "mounts[2].destination",
     "'data' must be an absolute path"),
    ("bind without source", lambda r: r["mounts"][1].pop("source"), "mounts[1].source",
     "is required for a bind mount"),
    ("rbind option without source", lambda r: r["mounts"].append(
        {"destination": "/x", "options": ["rbind"]}), "mounts[2].source",
     "is required for a bind mount"),
    ("unsupported mount option", lambda r: r["mounts"][1]["options"].append("idmap"),
     "mounts[1].options[1]", "'idmap' is not supported yet"),
    ("relative masked path", lambda r: r["linux"]["maskedPaths"].append("proc/keys"),
     "linux.maskedPaths[1]", "must be an absolute path"),
    ("relative readonly path", lambda r: r["linux"]["readonlyPaths"].insert(0, "sys"),
     "linux.readonlyPaths[0]", "must be an absolute path"),
    ("device outside /dev", lambda r: r["linux"]["devices"].append(
        {"type": "c", "path": "/etc/fuse", "major": 10, "minor": 229}),
     "linux.devices[1].path", "must be a path under /dev"),
    ("device is /dev itself", lambda r: r["linux"]["devices"].append(
        {"type": "c", "path": "/dev", "major": 10, "minor": 229}),
     "linux.devices[1].path", "must be a path under /dev"),
    pytest.param("device escaping /dev", lambda r: r["linux"]["devices"].append(
        {"type": "c", "path": "/dev/../etc/shadow", "major": 1, "minor": 3}),
        "linux.devices[1].path", "must be a path under /dev"),
]


@pytest.mark.parametrize(("name", "change", "field", "problem"), CASES,
                         ids=[getattr(c, "values", c)[0] for c in CASES])
def test_bad_spec(bundle: Path, name: str, change: Callable[[dict[str, Any]], object],
                  field: str, problem: str) -> None:
    error = _error(bundle, change)
    assert (error.field, error.problem) == (field, problem)
    assert str(error) == f"config.json: {field}: {problem}"


@pytest.mark.parametrize(("name", "change"), [
    ("env value may hold =", lambda r: r["process"]["env"].append("A=b=c")),
    ("soft == hard", lambda r: r["process"]["rlimits"][0].update(soft=1024, hard=1024)),
    ("user ns with mappings", lambda r: (
        r["linux"]["namespaces"].append({"type": "user"}),
        r["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
                          gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]))),
    ("joined namespace that exists", lambda r: r["linux"]["namespaces"].append(
        {"type": "network", "path": "/proc/self/ns/net"})),
    ("joined mount ns counts", lambda r: r["linux"]["namespaces"][0].update(
        path="/proc/self/ns/mnt")),
    ("empty hostname without uts", lambda r: (r.update(hostname=""),
                                              r["linux"]["namespaces"].pop(1))),
    ("no hostname without uts", lambda r: (r.pop("hostname"), r["linux"]["namespaces"].pop(1))),
    ("bind with source", lambda r: r["mounts"].append(
        {"destination": "/y", "source": "/tmp", "options": ["rbind", "rro"]})),
    ("no capabilities", lambda r: r["process"].pop("capabilities")),
])
def test_good_variations(bundle: Path, name: str, change: Callable[[dict[str, Any]], object]) -> None:
    validate.check_spec(_spec(bundle, change))


# --- load_spec ---------------------------------------------------------------------------
def _write_bundle(bundle: Path, text: str) -> None:
    (bundle / "config.json").write_text(text)


def test_load_spec_on_a_good_bundle(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    _write_bundle(bundle, json.dumps(GOOD))
    monkeypatch.chdir(bundle.parent)
    spec = load_spec(bundle.name)  # a relative bundle path is made absolute
    assert spec.bundle == str(bundle)
    assert spec.root_path == str(bundle / "rootfs")
    assert spec.process is not None and spec.process.args == ["sh"]


def test_load_spec_resolves_an_absolute_root(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    import json

    elsewhere = tmp_path_factory.mktemp("root")
    raw = copy.deepcopy(GOOD)
    raw["root"]["path"] = str(elsewhere) + "/./"
    _write_bundle(bundle, json.dumps(raw))
    assert load_spec(str(bundle)).root_path == str(elsewhere)


def test_load_spec_without_config(bundle: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_spec(str(bundle))
    assert str(caught.value) == f"config.json: no such file in bundle {bundle}"


def test_load_spec_on_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config.json: bundle .*/nope is not a directory$"):
        load_spec(str(tmp_path / "nope"))


def test_load_spec_malformed_json_names_line_and_column(bundle: Path) -> None:
    _write_bundle(bundle, '{\n  "ociVersion": "1.0.0",\n  "root": }\n')
    with pytest.raises(ConfigError) as caught:
        load_spec(str(bundle))
    assert str(caught.value) == "config.json: invalid json: expecting value at line 3 column 11"


def test_load_spec_duplicate_keys(bundle: Path) -> None:
    _write_bundle(bundle, '{"ociVersion": "1.0.0", "ociVersion": "1.0.0"}')
    with pytest.raises(ConfigError, match="duplicate key 'ociVersion'"):
        load_spec(str(bundle))


def test_load_spec_deeply_nested_json(bundle: Path) -> None:
    _write_bundle(bundle, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError):
        load_spec(str(bundle))


def test_load_spec_schema_error_names_the_field(bundle: Path) -> None:
    import json

    raw = copy.deepcopy(GOOD)
    raw["linux"]["namespaces"][2]["type"] = 5
    _write_bundle(bundle, json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_spec(str(bundle))
    assert caught.value.field == "linux.namespaces[2].type"


def test_load_spec_requires_root_path(bundle: Path) -> None:
    import json

    raw = copy.deepcopy(GOOD)
    del raw["root"]
    _write_bundle(bundle, json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_spec(str(bundle))
    assert str(caught.value) == "config.json: root: is required"
    raw["root"] = {"path": ""}
    _write_bundle(bundle, json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        load_spec(str(bundle))
    assert str(caught.value) == "config.json: root.path: is required"


def test_load_spec_runs_the_validate_checks(bundle: Path) -> None:
    import json

    raw = copy.deepcopy(GOOD)
    raw["process"]["cwd"] = "relative"
    _write_bundle(bundle, json.dumps(raw))
    with pytest.raises(ConfigError, match=r"^config.json: process.cwd: must be an absolute path$"):
        load_spec(str(bundle))


def test_load_spec_unreadable_config(bundle: Path) -> None:
    """A read error (here EISDIR, which root gets too) is a ConfigError, not a traceback."""
    (bundle / "config.json").mkdir()
    with pytest.raises(ConfigError, match=r"^config.json: cannot read: is a directory$"):
        load_spec(str(bundle))
