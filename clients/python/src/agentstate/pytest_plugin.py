"""agentload's scenarios as pytest tests (docs/python.md).

    pytest -m "load and not slow" --quick --agentload-store sqlite:///tmp/as.db

Each scenario that ``agentload --list`` prints is one test, marked ``load`` (and ``slow``
or ``faults`` when agentload tags it so). A test runs the real ``agentload`` program on that
scenario alone and asserts its gates: a gate that fails names its measured value and its
limit. Reports go to ``--agentload-report-dir`` (default ``test_reports/load``): each
scenario's own in a directory of its name, and an ``index.html`` of them all.

The tests are collected only when asked for: with ``--agentload-store`` or
``--agentload-test``, or when ``-m`` selects ``load`` (``-m "not load"`` does not). Options that cannot work (an unknown scenario, a store agentload cannot
open or that is not healthy, no agentload) are a usage error before any test runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

_SCENARIO_TIMEOUT_S = 3600  # the full profile's longest scenario runs minutes, not an hour


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentload", "agentstate's load suite (agentload's scenarios as tests)")
    group.addoption("--agentload-store", metavar="URI", help="the store the scenarios run on, any agentload --store URI "
                    "(sqlite://, redis://, postgresql://, http://TOKEN@HOST:PORT for a running agentstated); default agentload's")
    group.addoption("--quick", action="store_true", help="agentload's quick profile: the same shape, smaller counts")
    group.addoption("--agentload-report-dir", metavar="DIR", default="test_reports/load", help="where the reports go")
    group.addoption("--agentload-bin", metavar="PATH", help="the agentload program (env AGENTLOAD_BIN; default agentload on PATH)")
    group.addoption("--agentload-test", metavar="NAME", action="append", default=[], help="only this scenario (repeatable)")
    group.addoption("--agentload-gate", metavar="NAME=LIMIT", action="append", default=[], help="override a gate's limit, as agentload --gate (repeatable)")


def _enabled(config: pytest.Config) -> bool:
    """Asked for: a store or a scenario named, or -m selecting load ("not load" does not)."""
    if config.getoption("--agentload-store") or config.getoption("--agentload-test"):
        return True
    return re.search(r"(?<!not )\bload\b", config.getoption("-m") or "") is not None


def _binary(config: pytest.Config) -> str:
    given = config.getoption("--agentload-bin") or os.environ.get("AGENTLOAD_BIN") or "agentload"
    found = shutil.which(given)
    if not found:
        raise pytest.UsageError(f"agentload: {given} is not an executable; build it (cmake --build build) and pass --agentload-bin")
    return found


def _run_args(config: pytest.Config) -> list[str]:
    """The arguments every agentload run of the session shares."""
    store = config.getoption("--agentload-store")
    args = ["--quick"] if config.getoption("--quick") else []
    args += ["--store", store] if store else []
    for gate in config.getoption("--agentload-gate"):
        args += ["--gate", gate]
    return args


def _list(binary: str) -> list[tuple[str, list[str]]]:
    """(name, tags) of every scenario, from agentload --list."""
    listed = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=60)
    if listed.returncode != 0:
        raise pytest.UsageError(f"agentload --list failed: {listed.stderr.strip()}")
    scenarios = []
    for line in listed.stdout.splitlines():
        name, _, rest = line.partition(" ")
        tags = rest.rsplit("[", 1)[1].rstrip("]").split(", ") if rest.rstrip().endswith("]") else []
        scenarios.append((name, tags))
    return scenarios


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "load: one of agentload's load scenarios")
    config.addinivalue_line("markers", "slow: a scenario that takes minutes (agentload's slow tag)")
    config.addinivalue_line("markers", "faults: a scenario that injects real faults (agentload's faults tag)")
    if not _enabled(config) or getattr(config, "workerinput", None) is not None:
        return
    binary = _binary(config)
    scenarios = _list(binary)
    wanted = config.getoption("--agentload-test")
    known = {name for name, _ in scenarios}
    for name in wanted:
        if name not in known:
            raise pytest.UsageError(f"--agentload-test {name}: unknown scenario; known: {', '.join(sorted(known))}")
    selected = [(n, t) for n, t in scenarios if not wanted or n in wanted]
    for tag in {t for _, tags in selected for t in tags}:
        config.addinivalue_line("markers", f"{tag}: agentload's {tag} tag")
    # The preflight: the options, the report directory and the store's health, no load.
    report_dir = Path(config.getoption("--agentload-report-dir")).resolve()
    check = subprocess.run(
        [binary, "--check", *_run_args(config), *(a for n, _ in selected for a in ("--test", n)), "--report-dir", str(report_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check.returncode != 0:
        raise pytest.UsageError(check.stderr.strip().splitlines()[-1] if check.stderr.strip() else f"agentload --check exited {check.returncode}")
    config.stash[_PLAN] = _Plan(binary, selected, report_dir)


class _Plan:
    def __init__(self, binary: str, scenarios: list[tuple[str, list[str]]], report_dir: Path) -> None:
        self.binary = binary
        self.scenarios = scenarios
        self.report_dir = report_dir
        self.ran: list[Path] = []


_PLAN = pytest.StashKey[_Plan]()


class ScenarioFailed(AssertionError):
    pass


class ScenarioItem(pytest.Item):
    """One agentload scenario, run by the real program."""

    def __init__(self, *, plan: _Plan, scenario: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.plan = plan
        self.scenario = scenario

    def runtest(self) -> None:
        config = self.config
        out = self.plan.report_dir / self.scenario
        if out.exists():
            shutil.rmtree(out)
        command = [
            self.plan.binary,
            "--test",
            self.scenario,
            *_run_args(config),
            "--report-dir",
            str(out),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=_SCENARIO_TIMEOUT_S)
        summary_path = out / "summary.json"
        if run.returncode == 2 or not summary_path.exists():
            raise ScenarioFailed(f"agentload could not run {self.scenario} (exit {run.returncode}): {run.stderr.strip()}")
        summary = json.loads(summary_path.read_text())
        self.plan.ran.append(out)
        (result,) = [s for s in summary["scenarios"] if s["test_name"] == self.scenario]
        self.user_properties.append(("report", str(out / result["report"])))
        if result.get("invalid"):
            raise ScenarioFailed(f"{self.scenario}: the run is invalid: {result['invalid_reason']}")
        failed = [g for g in result["gates"] if not g["passed"]]
        if failed or not result["passed"] or run.returncode != 0:
            lines = [
                f"gate {g['name']}: measured {g['measured']:g}{g['unit']}, limit {g['comparison']} {g['limit']:g}{g['unit']}"
                for g in failed
            ]
            raise ScenarioFailed(f"{self.scenario} missed {len(failed)} gate(s):\n" + "\n".join(lines or [run.stdout.strip()]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"agentload {self.scenario}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: before -m and -k deselect, so that they select among the scenarios too.
    plan = config.stash.get(_PLAN, None)
    if plan is None:
        return
    for name, tags in plan.scenarios:
        item = ScenarioItem.from_parent(session, name=name, nodeid=f"agentload::{name}", plan=plan, scenario=name)
        item.add_marker("load")
        for tag in tags:
            item.add_marker(tag)
        items.append(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # One report of every scenario that ran, as one agentload run writes it: each JSON
    # report, a summary.json of them all, and agentload's index.html over them.
    plan = session.config.stash.get(_PLAN, None)
    if plan is None or not plan.ran:
        return
    combined: dict[str, Any] | None = None
    for out in plan.ran:
        summary = json.loads((out / "summary.json").read_text())
        for result in summary["scenarios"]:
            shutil.copy2(out / result["report"], plan.report_dir / result["report"])
        if combined is None:
            combined = summary
        else:
            combined["scenarios"] += summary["scenarios"]
            combined["passed"] = combined["passed"] and summary["passed"]
            combined["interrupted"] = combined["interrupted"] or summary["interrupted"]
            combined["generated_at"] = summary["generated_at"]
    (plan.report_dir / "summary.json").write_text(json.dumps(combined, indent=1))
    made = subprocess.run([plan.binary, "report", str(plan.report_dir)], capture_output=True, text=True, timeout=120)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        line = made.stdout.strip() if made.returncode == 0 else f"agentload report failed: {made.stderr.strip()}"
        reporter.write_line(f"agentload: {line}")
