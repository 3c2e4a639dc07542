"""LangGraph's own conformance suite (langgraph-checkpoint-conformance), base and extended
capabilities, against AgentstateSaver through a real agentstated: one pytest test per
capability, each of whose conformance tests must pass; none may be skipped."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from langgraph.checkpoint.conformance.spec import (
    test_copy_thread,
    test_delete_for_runs,
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_prune,
    test_put,
    test_put_writes,
)

from agentstate import Admin, AgentstateSaver

# How many conformance tests each capability holds, from the suite itself.
EXPECTED = {
    Capability.PUT: len(test_put.ALL_PUT_TESTS),
    Capability.PUT_WRITES: len(test_put_writes.ALL_PUT_WRITES_TESTS),
    Capability.GET_TUPLE: len(test_get_tuple.ALL_GET_TUPLE_TESTS),
    Capability.LIST: len(test_list.ALL_LIST_TESTS),
    Capability.DELETE_THREAD: len(test_delete_thread.ALL_DELETE_THREAD_TESTS),
    Capability.DELETE_FOR_RUNS: len(test_delete_for_runs.ALL_DELETE_FOR_RUNS_TESTS),
    Capability.COPY_THREAD: len(test_copy_thread.ALL_COPY_THREAD_TESTS),
    Capability.PRUNE: len(test_prune.ALL_PRUNE_TESTS),
}


def test_every_capability_is_covered() -> None:
    assert set(EXPECTED) == set(Capability), "the suite has a capability this file does not run"
    assert sum(EXPECTED.values()) > 0


@pytest.mark.parametrize("capability", list(Capability), ids=lambda c: c.value)
async def test_conformance(agentstated, capability: Capability) -> None:
    admin = Admin(agentstated.url, token=agentstated.admin_token)

    # One isolated tenant per saver instance, dropped after it.
    @checkpointer_test(name="AgentstateSaver")
    async def saver():
        name = f"conformance-{capability.value}"
        token = await admin.create_tenant(name)
        async with AgentstateSaver(agentstated.url, token=token) as s:
            yield s
        await admin.drop_tenant(name)

    failures: list[str] = []

    def on_result(cap: str, test: str, passed: bool, error: str | None) -> None:
        if not passed:
            failures.append(f"{test}\n{error}")

    try:
        report = await validate(saver, capabilities={capability.value}, progress=ProgressCallbacks(on_test_result=on_result))
    finally:
        await admin.aclose()
    result = report.results[capability.value]
    assert result.detected, f"{capability.value}: AgentstateSaver does not implement it"
    assert not failures, "\n\n".join(failures)
    assert result.tests_skipped == 0
    assert (result.tests_passed, result.tests_failed) == (EXPECTED[capability], 0)
