"""pytest wiring of the conformance suite.

Options:
  --runtime PATH          runtime binary to check (runc command line)
  --runtime-name NAME     name used in reports (default: basename of PATH)
  --spec-dir DIR          runtime-spec checkout (for the state JSON schema and
                          the clause-quote meta check)
  --conformance-json F    write per-check results (outcome, clause, message) to F

Meta tests (``-m meta``) are deselected unless the marker expression names them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conformance.helpers import Bundle, Runtime, build_busybox_rootfs, make_bundle

HERE = Path(__file__).resolve().parent
# the shared/ folder beside the project checkout (as CI lays it out)
DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "runtime-spec-v1.3.0"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("conformance", "OCI runtime conformance")
    g.addoption("--runtime", default=os.environ.get("CONFORMANCE_RUNTIME"),
                help="path of the runtime binary to check (runc-compatible CLI)")
    g.addoption("--runtime-name", default=None, help="name of the runtime in reports")
    g.addoption("--spec-dir", default=str(DEFAULT_SPEC_DIR), help="runtime-spec directory")
    g.addoption("--conformance-json", default=None, help="write per-check results here")
    g.addoption("--xfail-deviations", action="store_true",
                help="mark the runtime's known deviations (deviations.py, by --runtime-name) as "
                     "strict xfail, so a gate passes on known deviations and fails on new "
                     "failures and on deviations that went away")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(file, text, level): spec clause a check verifies")
    config.addinivalue_line("markers", "meta: tests of the suite itself (broken runtimes)")
    if config.getoption("--conformance-json") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(JsonResults(config), "conformance-json")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("-m") or ""
    keep, drop = [], []
    for item in items:
        is_meta = item.get_closest_marker("meta") is not None
        if is_meta and "meta" not in markexpr:
            drop.append(item)
            continue
        keep.append(item)
        m = item.get_closest_marker("clause")
        if m is not None:
            item.user_properties.append(("clause", json.dumps(m.kwargs)))
        doc = (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") else ""
        if doc:
            item.user_properties.append(("doc", " ".join(doc.split("\n\n")[0].split())))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    name = config.getoption("--runtime-name")
    if config.getoption("--xfail-deviations") and name:
        from conformance.deviations import DEVIATIONS

        for item in items:
            check_id = item.nodeid.split("conformance/", 1)[-1]
            reason = DEVIATIONS.get((name, check_id))
            if reason is not None:
                item.add_marker(pytest.mark.xfail(reason=f"known deviation: {reason}", strict=True))


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def runtime_path(request: pytest.FixtureRequest) -> str:
    path = request.config.getoption("--runtime")
    if not path:
        pytest.exit("give the runtime to check: pytest conformance --runtime PATH", 2)
    resolved = shutil.which(path) or path
    if not os.access(resolved, os.X_OK):
        pytest.exit(f"--runtime {path}: not an executable", 2)
    return str(os.path.abspath(resolved))


@pytest.fixture(scope="session")
def spec_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.getoption("--spec-dir"))


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox rootfs built once per session (per xdist worker) and cloned per bundle."""
    return build_busybox_rootfs(tmp_path_factory.mktemp("rootfs-template") / "rootfs")


@pytest.fixture
def rt(runtime_path: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """The runtime with a private ``--root``; every container it created is
    force-deleted at teardown, whether the check passed or not."""
    root = tmp_path / "state-root"
    root.mkdir()
    logs = tmp_path / "calls"
    logs.mkdir()
    runtime = Runtime(runtime_path, root, logs)
    request.node._conformance_runtime = runtime  # for the failure transcript
    try:
        yield runtime
    finally:
        runtime.cleanup()


@pytest.fixture
def bundle(rootfs_template: Path, tmp_path: Path) -> Callable[..., Bundle]:
    """Factory: ``bundle(args=[...], hostname="x", process__cwd="/tmp")`` -> Bundle."""

    def factory(args: list[str] | None = None, **overrides: Any) -> Bundle:
        return make_bundle(tmp_path, rootfs_template, args, **overrides)

    return factory


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attach the runtime transcript (commands, rc, output) to failing checks."""
    outcome: Any = yield
    rep = outcome.get_result()
    runtime = getattr(item, "_conformance_runtime", None)
    if rep.failed and runtime is not None and rep.when == "call":
        rep.sections.append(("runtime calls", runtime.transcript()[-20000:]))


# --------------------------------------------------------------------------
# JSON results (used by conformance/report.py)
# --------------------------------------------------------------------------


class JsonResults:
    """Collect one outcome per check (setup/call/teardown folded) and write JSON.

    Runs on the xdist controller too: reports of workers are replayed there.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.path = Path(config.getoption("--conformance-json"))
        self.runtime = config.getoption("--runtime")
        self.name = config.getoption("--runtime-name") or os.path.basename(self.runtime or "?")
        self.results: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid.split("conformance/", 1)[-1]
        r = self.results.setdefault(nodeid, {"outcome": "pass", "message": "", "seconds": 0.0})
        r["seconds"] += getattr(report, "duration", 0.0)
        for k, v in report.user_properties:
            if k == "clause":
                r["clause"] = json.loads(str(v))
            elif k == "doc":
                r["doc"] = v
        if report.failed:
            r["outcome"] = "fail" if report.when == "call" else "error"
            r["message"] = _short_message(report)
        elif report.skipped and r["outcome"] == "pass":
            r["outcome"] = "skip"
            lr = report.longrepr
            r["message"] = lr[2] if isinstance(lr, tuple) else str(lr)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.path.write_text(json.dumps({"runtime": self.name, "path": self.runtime,
                                         "results": self.results}, indent=1, sort_keys=True))


def _short_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:600]
    return str(report.longrepr)[-600:]
