"""Run the conformance suite against runtimes and write report.md / report.json.

    python -m conformance.report                       # defaults (see below)
    python -m conformance.report --runtime runc=/usr/sbin/runc \\
        --runtime crun=conformance/runtimes/crun-private-cgroup
    python -m conformance.report --runtime pyruntime=.venv/bin/pyruntime --keep-existing

Defaults: pyruntime (if /work/main/.venv/bin/pyruntime exists), runc
(/usr/sbin/runc), crun through conformance/runtimes/crun-private-cgroup.
``--keep-existing`` keeps the results of runtimes already in report.json that
are not re-run, so one runtime can be added without re-running the others.

Each result is pass, fail, error, skip, or deviation (a failure explained in
deviations.py; it still counts as not meeting the clause).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conformance.deviations import DEVIATIONS

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEC_VERSION = "1.3.0"
FILE_ORDER = ["test_runtime.py", "test_runtime_linux.py", "test_config.py",
              "test_config_linux.py"]


def default_runtimes() -> list[tuple[str, str]]:
    out = []
    py = REPO / ".venv" / "bin" / "pyruntime"
    if py.exists():
        out.append(("pyruntime", str(py)))
    out.append(("runc", "/usr/sbin/runc"))
    out.append(("crun", str(HERE / "runtimes" / "crun-private-cgroup")))
    return out


def runtime_version(path: str) -> str:
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        return (r.stdout.strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def run_suite(name: str, path: str, workers: str, extra: list[str]) -> dict[str, Any]:
    """Run pytest on the suite for one runtime and return its JSON results."""
    with tempfile.TemporaryDirectory(prefix=f"conformance-{name}-") as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(HERE), "--runtime", path,
               "--runtime-name", name, "--conformance-json", str(out), "-p", "no:cacheprovider",
               "-q", "--no-header", "-rN", *(["-n", workers] if workers != "0" else []), *extra]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        if not out.exists():
            raise SystemExit(f"suite did not run for {name}:\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
        data: dict[str, Any] = json.loads(out.read_text())
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    print(f"{name}: {tail[0]} ({seconds:.0f}s)", file=sys.stderr)
    data.update(seconds=round(seconds, 1), version=runtime_version(path))
    return data


def classify(name: str, results: dict[str, Any]) -> None:
    """Turn known failures into deviations and flag stale deviation entries."""
    for check, r in results.items():
        why = DEVIATIONS.get((name, check))
        if why is None:
            continue
        if r["outcome"] in ("fail", "error"):
            r["outcome"] = "deviation"
            r["deviation"] = why
        elif r["outcome"] == "pass":
            r["stale_deviation"] = why


def totals(results: dict[str, Any]) -> dict[str, int]:
    t = {k: 0 for k in ("pass", "fail", "error", "skip", "deviation")}
    for r in results.values():
        t[r["outcome"]] = t.get(r["outcome"], 0) + 1
    return t


def check_sort_key(check: str) -> tuple[int, str]:
    f = check.split("::")[0]
    return (FILE_ORDER.index(f) if f in FILE_ORDER else 99, check)


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(report: dict[str, Any], path: Path) -> None:
    runtimes = list(report["runtimes"])
    lines = [f"# OCI runtime conformance report (runtime-spec v{SPEC_VERSION})", "",
             f"Generated {report['generated']} by `python -m conformance.report` on this host "
             f"({report['host']}). Regenerate after changing runtimes or checks; see "
             "`conformance/README.md`.", "",
             "Outcomes: **pass**; **FAIL** (clause not met, unexplained); **deviation** (clause "
             "not met, known and explained in `conformance/deviations.py` -- still a failure of "
             "the clause); **skip** (not checkable on this host, reason given); **ERROR** "
             "(the check itself could not run).", "",
             "## Totals", "",
             "| runtime | version | pass | FAIL | deviation | skip | ERROR | checks | run time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in runtimes:
        rt = report["runtimes"][name]
        t = totals(rt["results"])
        lines.append(f"| {name} | `{md_cell(rt['version'])}` | {t['pass']} | {t['fail']} | "
                     f"{t['deviation']} | {t['skip']} | {t['error']} | {len(rt['results'])} | "
                     f"{rt['seconds']:.0f}s |")
    lines += ["", "Runtime paths: " + ", ".join(f"{n} = `{report['runtimes'][n]['path']}`"
                                                 for n in runtimes), ""]
    checks = sorted({c for n in runtimes for c in report["runtimes"][n]["results"]},
                    key=check_sort_key)
    word = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**", "skip": "skip",
            "deviation": "deviation"}
    current = None
    for check in checks:
        f = check.split("::")[0]
        if f != current:
            current = f
            lines += ["", f"## {f}", "",
                      "| check | clause | " + " | ".join(runtimes) + " |",
                      "|---|---|" + "---|" * len(runtimes)]
        info: dict[str, Any] = next((report["runtimes"][n]["results"][check] for n in runtimes
                     if check in report["runtimes"][n]["results"]), {})
        cl = info.get("clause", {})
        clause_txt = f"{cl.get('file', '?')} ({cl.get('level', '?')}): \"{cl.get('text', '')}\""
        cells = []
        for n in runtimes:
            r = report["runtimes"][n]["results"].get(check)
            cells.append(word.get(r["outcome"], r["outcome"]) if r else "n/a")
        lines.append(f"| `{check.split('::', 1)[1]}` | {md_cell(clause_txt)} | "
                     + " | ".join(cells) + " |")
    lines += ["", "## Deviations (explained failures)", ""]
    for n in runtimes:
        for check, r in sorted(report["runtimes"][n]["results"].items(),
                               key=lambda kv: check_sort_key(kv[0])):
            if r["outcome"] == "deviation":
                lines.append(f"- **{n}** `{check}`: {r['deviation']}")
    lines += ["", "## Unexplained failures, errors and skips", ""]
    any_listed = False
    for n in runtimes:
        for check, r in sorted(report["runtimes"][n]["results"].items(),
                               key=lambda kv: check_sort_key(kv[0])):
            if r["outcome"] in ("fail", "error", "skip"):
                any_listed = True
                lines.append(f"- **{n}** `{check}` ({r['outcome']}): "
                             f"{md_cell(r.get('message', ''))[:400]}")
            if r.get("stale_deviation"):
                any_listed = True
                lines.append(f"- **{n}** `{check}`: passes, but deviations.py still lists it "
                             "(remove the entry)")
    if not any_listed:
        lines.append("None.")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runtime", action="append", default=[], metavar="NAME=PATH",
                    help="runtime to check (repeatable)")
    ap.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (0: none)")
    ap.add_argument("--out-dir", default=str(HERE), help="where report.md/json go")
    ap.add_argument("--keep-existing", action="store_true",
                    help="keep other runtimes' results from the existing report.json")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    runtimes = [tuple(r.split("=", 1)) for r in args.runtime] or default_runtimes()
    out_dir = Path(args.out_dir)
    report: dict[str, Any] = {"spec": SPEC_VERSION, "runtimes": {}}
    old = out_dir / "report.json"
    if args.keep_existing and old.exists():
        report["runtimes"] = json.loads(old.read_text()).get("runtimes", {})
    for name, path in runtimes:
        path = os.path.abspath(path) if os.path.exists(path) else path
        data = run_suite(name, path, args.workers, args.pytest_args)
        classify(name, data["results"])
        report["runtimes"][name] = {"path": path, "version": data["version"],
                                    "seconds": data["seconds"], "results": data["results"],
                                    "totals": totals(data["results"])}
    report["generated"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    report["host"] = " ".join(os.uname()[i] for i in (0, 2, 4))
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    write_markdown(report, out_dir / "report.md")
    for name in report["runtimes"]:
        print(f"{name}: {report['runtimes'][name]['totals']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
