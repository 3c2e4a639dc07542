"""The pytest plugin, run as a user runs it (pytest in a subprocess, the plugin loaded from
the installed package's entry point), driving the real agentload program."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import ROOT

AGENTLOAD = str(Path(os.environ.get("AGENTLOAD_BIN", ROOT / "build" / "agentload")).resolve())
QUICK_TWO = ["--agentload-test", "mixed_workload_read_write_patterns", "--agentload-test", "burst_traffic_handling"]


@pytest.fixture
def run(pytester: pytest.Pytester):
    def go(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(f"--agentload-bin={AGENTLOAD}", "-p", "no:cacheprovider", *args, timeout=600)

    return go


def test_each_scenario_is_a_test_and_the_reports_are_written(run, pytester: pytest.Pytester) -> None:
    store = f"sqlite://{pytester.path / 'as.db'}"
    result = run("-m", "load and not slow", "--quick", "--agentload-store", store, "-v", *QUICK_TWO)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*agentload::mixed_workload_read_write_patterns PASSED*", "*agentload::burst_traffic_handling PASSED*"])
    reports = pytester.path / "test_reports" / "load"
    assert (reports / "index.html").is_file()
    assert (reports / "burst_traffic_handling" / "summary.json").is_file()
    assert len([p for p in reports.glob("*.json") if p.name != "summary.json"]) == 2, "each scenario's JSON report"
    summary = json.loads((reports / "summary.json").read_text())
    assert [s["test_name"] for s in summary["scenarios"]] == ["mixed_workload_read_write_patterns", "burst_traffic_handling"]
    assert summary["passed"] is True


def test_markers_select_among_the_scenarios(run, pytester: pytest.Pytester) -> None:
    store = f"sqlite://{pytester.path / 'as.db'}"
    result = run("-m", "load and slow", "--quick", "--agentload-store", store, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["agentload::sustained_load_24h_simulation"])
    assert "mixed_workload" not in result.stdout.str()
    listed = run("-m", "load and not slow", "--agentload-store", store, "--collect-only", "-q").stdout.str()
    assert len(re.findall(r"^agentload::", listed, re.M)) == 9


def test_a_missed_gate_fails_with_its_measured_value_and_limit(run, pytester: pytest.Pytester) -> None:
    store = f"sqlite://{pytester.path / 'as.db'}"
    result = run("-m", "load", "--quick", "--agentload-store", store, "--agentload-gate", "p95_ms=0.0001", *QUICK_TWO[:2])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mixed_workload_read_write_patterns missed 1 gate(s):*", "*gate p95_ms: measured *ms, limit <= 0.0001ms*"])


def test_bad_options_are_usage_errors_before_any_test(run) -> None:
    unknown = run("-m", "load", "--agentload-test", "no_such_scenario")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*--agentload-test no_such_scenario: unknown scenario; known: *"])
    bad_store = run("-m", "load", "--agentload-store", "mongodb://127.0.0.1:1")
    assert bad_store.ret == pytest.ExitCode.USAGE_ERROR
    bad_store.stderr.fnmatch_lines(["*unknown store scheme 'mongodb://'*"])
    down = run("-m", "load", "--agentload-store", "redis://127.0.0.1:1")
    assert down.ret == pytest.ExitCode.USAGE_ERROR
    down.stderr.fnmatch_lines(["*127.0.0.1:1*"])
    missing = run("-m", "load", "--agentload-bin", "/nonexistent/agentload")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR


def test_without_asking_for_load_no_scenario_is_collected(run, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    run("-q").assert_outcomes(passed=1)
    # Nor with load deselected, even with no agentload program to ask.
    run("-q", "-m", "not load", "--agentload-bin=/nonexistent/agentload").assert_outcomes(passed=1)


def test_the_scenarios_run_against_a_running_agentstated(run, agentstated, tenant) -> None:
    _, token = tenant
    store = agentstated.url.replace("http://", f"http://{token}@")
    result = run("-m", "load", "--quick", "--agentload-store", store, "--agentload-test", "mixed_workload_read_write_patterns")
    result.assert_outcomes(passed=1)
    assert token not in result.stdout.str() + result.stderr.str(), "the token leaked into pytest's output"
