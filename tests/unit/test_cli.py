"""pyruntime.cli: the runc-compatible command line, parsed without argparse.

Engines (containerd, CRI-O, podman) call the runtime with runc's flag
grammar (urfave/cli over Go's flag package): ``-flag`` and ``--flag`` are the
same, values may follow ``=``, booleans take ``=false``, and flags stop at the
first argument.  A parsing slip means an engine call fails or, worse, is
misread, so each rule is pinned here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pyruntime import OCI_VERSION, __version__, cli
from pyruntime.errors import UsageError

FLAGS = [
    cli.Flag("root", cli.VALUE, "state root", "", "/run/pyruntime"),
    cli.Flag("bundle", cli.VALUE, "bundle", "b", "."),
    cli.Flag("debug", cli.BOOL, "debug"),
    cli.Flag("all", cli.BOOL, "all", "a"),
]
RFC3339_NANO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def parse(*argv: str) -> tuple[dict[str, object], list[str]]:
    return cli.parse_flags(FLAGS, list(argv))


def test_defaults_when_no_flags() -> None:
    values, args = parse("id")
    assert values == {"root": "/run/pyruntime", "bundle": ".", "debug": False, "all": False}
    assert args == ["id"]


@pytest.mark.parametrize("argv", [
    ["--root", "/r"], ["-root", "/r"], ["--root=/r"], ["-root=/r"],
])
def test_value_flag_spellings(argv: list[str]) -> None:
    values, args = parse(*argv, "id")
    assert values["root"] == "/r"
    assert args == ["id"]


@pytest.mark.parametrize("argv", [["-b", "/bb"], ["--b", "/bb"], ["-b=/bb"], ["--bundle", "/bb"]])
def test_short_flag_spellings(argv: list[str]) -> None:
    values, _ = parse(*argv)
    assert values["bundle"] == "/bb"


def test_value_keeps_everything_after_the_first_equals_sign() -> None:
    assert parse("--root=a=b")[0]["root"] == "a=b"
    assert parse("--root=")[0]["root"] == ""


def test_separate_value_is_taken_even_if_it_looks_like_a_flag() -> None:
    """Go's flag package does the same: the next word is the value."""
    values, args = parse("--root", "--debug", "id")
    assert values["root"] == "--debug"
    assert values["debug"] is False
    assert args == ["id"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--debug"], True), (["-debug"], True), (["--debug=true"], True),
    (["--debug=false"], False), (["-a"], True), (["-a=false"], False),
])
def test_boolean_flags(argv: list[str], expected: bool) -> None:
    values, _ = parse(*argv)
    assert values["debug" if "debug" in argv[0] else "all"] is expected


def test_boolean_rejects_other_values() -> None:
    with pytest.raises(UsageError, match=r"invalid boolean value 'yes' for -debug"):
        parse("--debug=yes")


def test_later_flag_wins() -> None:
    assert parse("--root", "/a", "--root=/b")[0]["root"] == "/b"
    assert parse("--debug", "--debug=false")[0]["debug"] is False


def test_double_dash_ends_flags() -> None:
    values, args = parse("--debug", "--", "--all", "id")
    assert values["debug"] is True
    assert values["all"] is False
    assert args == ["--all", "id"]


def test_flags_stop_at_the_first_argument() -> None:
    values, args = parse("id", "--debug", "-a")
    assert values["debug"] is False
    assert args == ["id", "--debug", "-a"]


def test_single_dash_is_an_argument() -> None:
    assert parse("-", "--debug") == (parse()[0], ["-", "--debug"])


def test_unknown_flag_is_named() -> None:
    with pytest.raises(UsageError) as caught:
        parse("--nope", "id")
    assert str(caught.value) == "flag provided but not defined: -nope"


def test_unknown_flag_with_value_is_named_without_the_value() -> None:
    with pytest.raises(UsageError, match=r"^flag provided but not defined: -nope$"):
        parse("--nope=3")


def test_missing_value() -> None:
    with pytest.raises(UsageError) as caught:
        parse("--root")
    assert str(caught.value) == "flag needs an argument: -root"


def test_argv_is_not_modified() -> None:
    argv = ["--debug", "id"]
    cli.parse_flags(FLAGS, argv)
    assert argv == ["--debug", "id"]


@pytest.mark.parametrize(("text", "ok"), [("0", True), ("12", True), ("-1", False),
                                          ("x", False), ("", False), ("1.5", False)])
def test_parsed_number(text: str, ok: bool) -> None:
    parsed = cli.Parsed({"preserve-fds": text}, [])
    if ok:
        assert parsed.number("preserve-fds") == int(text)
    else:
        with pytest.raises(UsageError, match="preserve-fds"):
            parsed.number("preserve-fds")


# --- dispatch -----------------------------------------------------------------------
NULL_LOGGER = cli.Logger("", "text", False)


@pytest.mark.parametrize(("name", "argv"), [
    ("state", []), ("state", ["a", "b"]), ("start", []), ("delete", ["a", "b"]),
    ("kill", []), ("kill", ["a", "TERM", "extra"]), ("list", ["a"]), ("spec", ["x"]),
    ("create", []), ("run", ["a", "b"]),
])
def test_dispatch_argument_count(name: str, argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        cli.dispatch(name, argv, str(tmp_path), NULL_LOGGER)
    assert str(caught.value) == f"usage: pyruntime {cli.COMMANDS[name].usage}"
    assert list(tmp_path.iterdir()) == [], "nothing may run after a usage error"


def test_dispatch_flags_count_after_parsing(tmp_path: Path) -> None:
    """``list -q`` has no argument: the flag must not count as one."""
    assert cli.dispatch("list", ["-q"], str(tmp_path / "root"), NULL_LOGGER) == 0


def test_dispatch_unknown_and_not_yet_commands(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no such command 'frob'"):
        cli.dispatch("frob", [], str(tmp_path), NULL_LOGGER)
    for name in cli.NOT_YET:
        with pytest.raises(UsageError, match=rf"command '{name}' is not supported by pyruntime yet"):
            cli.dispatch(name, ["id"], str(tmp_path), NULL_LOGGER)


def test_every_command_has_a_module() -> None:
    import importlib

    for name in cli.COMMANDS:
        assert callable(importlib.import_module(f"pyruntime.commands.{name}").run)


def test_main_prints_usage_errors_with_the_command_name(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["--root", str(tmp_path), "state"])
    assert status == 1
    assert capsys.readouterr().err == "state: usage: pyruntime state ID\n"


def test_main_without_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 1
    out = capsys.readouterr().out
    assert out.startswith("usage: pyruntime")
    assert all(f"  {name} " in out for name in cli.COMMANDS)


def test_main_help_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "--root" in capsys.readouterr().out


def test_main_refuses_systemd_cgroup(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--systemd-cgroup", "state", "x"]) == 1
    assert "--systemd-cgroup is not supported yet" in capsys.readouterr().err


def test_main_refuses_unknown_log_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--log-format", "xml", "list"]) == 1
    assert capsys.readouterr().err == "invalid log-format: xml\n"


# --- version ------------------------------------------------------------------------
def test_version_text_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """containerd's client reads ``<name> version <v>`` and ``spec: <v>`` lines."""
    text = cli.version_text()
    lines = text.splitlines()
    assert lines[0] == f"pyruntime version {__version__}"
    assert re.fullmatch(r"pyruntime version \d+\.\d+\.\d+\S*", lines[0])
    assert f"spec: {OCI_VERSION}" in lines
    assert OCI_VERSION == "1.3.0"
    assert text.endswith("\n")
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == text
    assert cli.main(["-v"]) == 0
    assert capsys.readouterr().out == text


# --- logging ------------------------------------------------------------------------
def test_json_log_line(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    cli.Logger(str(path), "json", False).write("error", 'bad "thing"\n')
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {"level", "msg", "time"}
    assert record["level"] == "error"
    assert record["msg"] == 'bad "thing"\n'
    assert RFC3339_NANO.match(record["time"])


def test_text_log_line_is_logrus_shaped(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    cli.Logger(str(path), "text", False).write("warning", 'say "hi"')
    line = path.read_text()
    match = re.fullmatch(r'time="([^"]+)" level=warning msg="say \\"hi\\""\n', line)
    assert match, line
    assert RFC3339_NANO.match(match.group(1))


def test_log_appends_and_filters_debug(tmp_path: Path) -> None:
    path = tmp_path / "log"
    quiet = cli.Logger(str(path), "json", False)
    quiet.write("debug", "hidden")
    quiet.write("info", "one")
    cli.Logger(str(path), "json", True).write("debug", "two")
    assert [json.loads(line)["msg"] for line in path.read_text().splitlines()] == ["one", "two"]


def test_log_without_path_or_unwritable_is_silent(tmp_path: Path) -> None:
    cli.Logger("", "json", True).write("error", "nowhere")
    cli.Logger(str(tmp_path / "missing" / "log"), "json", True).write("error", "nowhere")
    assert list(tmp_path.iterdir()) == []


def test_main_logs_the_error_it_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log"
    status = cli.main(["--log", str(log), "--log-format=json", "--root", str(tmp_path / "r"),
                       "state", "nosuch"])
    assert status == 1
    assert capsys.readouterr().err == "state: container nosuch does not exist\n"
    record = json.loads(log.read_text())
    assert (record["level"], record["msg"]) == ("error", "container nosuch does not exist")
