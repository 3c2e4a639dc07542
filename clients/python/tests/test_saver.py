"""AgentstateSaver beyond the conformance suite: the sync API, the head check, retention,
writes racing their checkpoint's put, tenants, bad input, and a real StateGraph."""

from __future__ import annotations

import asyncio
import operator
import uuid
from typing import Annotated, TypedDict

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agentstate import AgentstateSaver, ConflictError, NotFoundError


def config(thread: str, checkpoint_id: str | None = None) -> dict:
    c = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    if checkpoint_id:
        c["configurable"]["checkpoint_id"] = checkpoint_id
    return c


def checkpoint(values: dict, version: int = 1) -> dict:
    c = empty_checkpoint()
    c["id"] = str(uuid6(clock_seq=-1))
    c["channel_values"] = values
    c["channel_versions"] = {k: version for k in values}
    return c


def test_the_sync_api_round_trips(agentstated, tenant) -> None:
    _, token = tenant
    with AgentstateSaver(agentstated.url, token=token) as saver:
        c = checkpoint({"msgs": ["hi", b"\x00\xff"], "n": 3})
        stored = saver.put(config("t"), c, {"source": "input", "step": -1, "parents": {}}, {"msgs": 1, "n": 1})
        saver.put_writes(stored, [("out", {"x": 1}), ("__error__", "boom")], "task-1", "a:b")
        got = saver.get_tuple(config("t"))
        assert got.checkpoint["channel_values"] == {"msgs": ["hi", b"\x00\xff"], "n": 3}
        assert got.metadata["step"] == -1
        assert got.pending_writes == [("task-1", "__error__", "boom"), ("task-1", "out", {"x": 1})]
        assert [t.checkpoint["id"] for t in saver.list(None)] == [c["id"]]
        assert [t.checkpoint["id"] for t in saver.list(config("t"), filter={"source": "loop"})] == []
        saver.delete_thread("t")
        assert saver.get_tuple(config("t")) is None


async def test_the_head_check_refuses_a_fork(agentstated, tenant) -> None:
    _, token = tenant
    async with AgentstateSaver(agentstated.url, token=token, check_head=True) as saver:
        root = await saver.aput(config("t"), checkpoint({"a": 1}), {"step": 0}, {"a": 1})
        child = checkpoint({"a": 2})
        await saver.aput(root, child, {"step": 1}, {"a": 1})
        fork = checkpoint({"a": 3})
        with pytest.raises(ConflictError) as e:
            await saver.aput(root, fork, {"step": 1}, {"a": 1})  # root is no longer the head
        assert "newest checkpoint" in str(e.value)
        assert await saver.aget_tuple(config("t", fork["id"])) is None
        assert (await saver.aget_tuple(config("t"))).checkpoint["id"] == child["id"]


async def test_retention_keeps_the_last_n(agentstated, tenant) -> None:
    _, token = tenant
    async with AgentstateSaver(agentstated.url, token=token) as saver:
        parent = config("t")
        ids = []
        for step in range(5):
            c = checkpoint({"step": step}, step + 1)
            parent = await saver.aput(parent, c, {"step": step}, {"step": step + 1})
            ids.append(c["id"])
        report = await saver.aretain("t", keep_last=2)
        assert report["checkpoints"] == 3
        assert [t.checkpoint["id"] async for t in saver.alist(config("t"))] == ids[:-3:-1]
        with pytest.raises(ValueError):
            await saver.aretain("t")


async def test_writes_sent_while_their_put_is_in_flight_land_after_it(agentstated, tenant) -> None:
    _, token = tenant
    async with AgentstateSaver(agentstated.url, token=token) as saver:
        parent = config("race")
        for step in range(10):
            # A put that takes a while to send, so that the writes overtake it on another
            # connection.
            c = checkpoint({"step": step, "blob": b"x" * (4 << 20)}, step + 1)
            # As LangGraph does: the put in the background, the task's writes at once.
            put = asyncio.ensure_future(saver.aput(parent, c, {"step": step}, {"step": step + 1, "blob": step + 1}))
            await asyncio.sleep(0)
            writes = asyncio.ensure_future(saver.aput_writes(config("race", c["id"]), [("x", step)], f"task-{step}"))
            parent, _ = await asyncio.gather(put, writes)
            got = await saver.aget_tuple(parent)
            assert got.pending_writes == [(f"task-{step}", "x", step)], f"step {step}"


async def test_a_deleted_thread_takes_no_writes_and_bad_ids_are_refused(agentstated, tenant) -> None:
    _, token = tenant
    async with AgentstateSaver(agentstated.url, token=token) as saver:
        stored = await saver.aput(config("t"), checkpoint({"a": 1}), {}, {"a": 1})
        await saver.adelete_thread("t")
        with pytest.raises(NotFoundError):
            await saver.aput_writes(stored, [("a", 1)], "task")
        with pytest.raises(ValueError, match="thread_id"):
            await saver.aput({"configurable": {}}, checkpoint({}), {}, {})
        with pytest.raises(ValueError, match="checkpoint_id"):
            await saver.aput_writes(config("t"), [("a", 1)], "task")
        assert await saver.aget_tuple({"configurable": {}}) is None
        with pytest.raises(ValueError, match="strategy"):
            await saver.aprune(["t"], strategy="newest")
        with pytest.raises(ValueError, match="NaN"):
            await saver.aput(config("t"), checkpoint({}), {"score": float("nan")}, {})


async def test_one_tenant_never_sees_anothers_threads(agentstated) -> None:
    (_, a), (_, b) = agentstated.tenant(), agentstated.tenant()
    async with AgentstateSaver(agentstated.url, token=a) as one, AgentstateSaver(agentstated.url, token=b) as other:
        await one.aput(config("shared-id"), checkpoint({"secret": 1}), {"run_id": "r"}, {"secret": 1})
        assert await other.aget_tuple(config("shared-id")) is None
        assert [t async for t in other.alist(None)] == []
        await other.adelete_for_runs(["r"])
        await other.aprune(["shared-id"], strategy="delete")
        assert (await one.aget_tuple(config("shared-id"))).checkpoint["channel_values"] == {"secret": 1}


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def build(saver: AgentstateSaver):
    def plan(state: State) -> dict:
        return {"steps": ["plan"]}

    def approve(state: State) -> dict:
        answer = interrupt("approve the plan?")
        return {"steps": [f"approved:{answer}"]}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("approve", approve)
    g.add_edge(START, "plan")
    g.add_edge("plan", "approve")
    g.add_edge("approve", END)
    return g.compile(checkpointer=saver)


def test_a_state_graph_interrupts_and_resumes_sync(agentstated, tenant) -> None:
    _, token = tenant
    thread = {"configurable": {"thread_id": f"graph-{uuid.uuid4().hex[:8]}"}}
    with AgentstateSaver(agentstated.url, token=token) as saver:
        first = build(saver).invoke({"steps": []}, thread)
        assert first["__interrupt__"][0].value == "approve the plan?"
    with AgentstateSaver(agentstated.url, token=token) as saver:  # a new saver: nothing in memory
        done = build(saver).invoke(Command(resume="yes"), thread)
        assert done["steps"] == ["plan", "approved:yes"]
        history = list(saver.list(thread))
        assert len(history) >= 4 and history[0].metadata["step"] > history[-1].metadata["step"]


async def test_a_state_graph_interrupts_and_resumes_async(agentstated, tenant) -> None:
    _, token = tenant
    thread = {"configurable": {"thread_id": "graph-async"}}
    async with AgentstateSaver(agentstated.url, token=token) as saver:
        first = await build(saver).ainvoke({"steps": []}, thread)
        assert "__interrupt__" in first
        done = await build(saver).ainvoke(Command(resume="ok"), thread)
        assert done["steps"] == ["plan", "approved:ok"]
