"""LangGraph's workload through two Python savers on one PostgreSQL, in one run.

AgentstateSaver through agentstated (its PostgreSQL store), and langgraph-checkpoint-postgres's
AsyncPostgresSaver on a psycopg pool of 10 connections (its saver-wide asyncio.Lock holds
every call, whatever the pool). Both commit synchronously (PostgreSQL's default
synchronous_commit=on; neither turns it off).

Each of --agents concurrent graphs runs --steps super-steps on its own thread; a step is
what LangGraph's loop does: put a checkpoint whose changed channels are the agent's state
(small 300 B, large 8 KB, enterprise 30 KB, by agent in turn) and the step counter, put the
task's two writes, and read the thread's head back. The savers run in turn, --rounds times,
alternating which goes first; one JSON line per run, then the medians and their ratios.
Bytes stored are each saver's tables (heap, indexes, TOAST) over the threads written.

Usage: python saver_bench.py --agentstated URL --postgres URL --schema SCHEMA
                             [--agents 100] [--steps 50] [--rounds 3] [--only agentstate|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import psycopg
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agentstate import AgentstateSaver

SIZES = [300, 8 << 10, 30 << 10]
OURS = ["lg_checkpoints", "lg_values", "lg_writes", "lg_threads"]
REFERENCE = ["checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"]


def state(size: int, agent: int, step: int) -> list[str]:
    """A state of about `size` bytes that differs at every step, as an agent's messages do."""
    words, n, i = [], 0, 0
    while n < size:
        w = f"a{agent}s{step}w{(i * 2654435761) % 100003}"
        words.append(w)
        n += len(w) + 3
        i += 1
    return words


async def agent(saver, thread: str, states: list[dict], latencies: list[float]) -> None:
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for step, values in enumerate(states):
        t0 = time.perf_counter()
        c = empty_checkpoint()
        c["id"] = str(uuid6(clock_seq=-3))
        c["channel_values"] = {"messages": values, "step": step}
        versions = {"messages": f"{step + 1:032}.0", "step": f"{step + 1:032}.0"}
        c["channel_versions"] = versions
        c["versions_seen"] = {"agent": {"messages": f"{step:032}.0"}}
        config = await saver.aput(config, c, {"source": "loop", "step": step, "parents": {}}, versions)
        await saver.aput_writes(config, [("messages", {"role": "ai", "step": step}), ("next", "agent")], f"task-{step}")
        head = await saver.aget_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
        if head is None or head.checkpoint["id"] != c["id"]:
            raise RuntimeError(f"thread {thread}: read back {head and head.checkpoint['id']}, not {c['id']}")
        latencies.append((time.perf_counter() - t0) * 1000)


async def table_bytes(conn, schema: str, tables: list[str]) -> int:
    cur = await conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(format('%%I.%%I', %s::text, t)::regclass)), 0) AS b "
        "FROM unnest(%s::text[]) t WHERE to_regclass(format('%%I.%%I', %s::text, t)) IS NOT NULL",
        (schema, tables, schema),
    )
    return int((await cur.fetchone())["b"])


def cpu_times() -> tuple[int, int]:
    """The machine's (busy, total) jiffies from /proc/stat, every core."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


async def run(name: str, saver, prefix: str, a: argparse.Namespace, states, measure) -> dict:
    latencies: list[float] = []
    busy0, total0 = cpu_times()
    t0 = time.perf_counter()
    await asyncio.gather(*(agent(saver, f"{prefix}-{i}", states[i], latencies) for i in range(a.agents)))
    seconds = time.perf_counter() - t0
    busy1, total1 = cpu_times()
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    r = {
        "saver": name,
        "agents": a.agents,
        "steps": a.steps,
        "steps_per_s": round(a.agents * a.steps / seconds),
        "p50_ms": round(q(0.5), 2),
        "p99_ms": round(q(0.99), 2),
        "bytes_per_thread": round(await measure() / a.agents),
        # How much of the machine's CPU the run used, every process: the client, the server
        # (agentstated, for ours) and PostgreSQL.
        "machine_cpu_busy_percent": round(100 * (busy1 - busy0) / max(1, total1 - total0)),
    }
    print(json.dumps(r), flush=True)
    return r


async def main(a: argparse.Namespace) -> None:
    admin = await psycopg.AsyncConnection.connect(a.postgres, autocommit=True, row_factory=dict_row)
    ref_schema = f"lg_reference_py_{a.schema}"
    await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {ref_schema}")
    pool = AsyncConnectionPool(
        a.postgres,
        min_size=10,
        max_size=10,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "options": f"-c search_path={ref_schema}"},
    )
    await pool.open()
    reference = AsyncPostgresSaver(pool)
    await reference.setup()
    # The states, made before the clock starts: the client's CPU goes to the savers alone.
    states = [[state(SIZES[i % 3], i, step) for step in range(a.steps)] for i in range(a.agents)]
    results: dict[str, list[dict]] = {"agentstate": [], "postgres": []}
    async with AgentstateSaver(a.agentstated, timeout=60) as ours:
        for round_ in range(a.rounds):
            order = ["agentstate", "postgres"] if round_ % 2 == 0 else ["postgres", "agentstate"]
            for name in (n for n in order if not a.only or n == a.only):
                # Each run starts on empty tables, so bytes are this run's threads alone.
                if name == "agentstate":
                    tables = ", ".join(f"{a.schema}.{t}" for t in OURS)
                    await admin.execute(f"TRUNCATE {tables}")
                    await admin.execute(f"VACUUM FULL {tables}")
                    results[name].append(await run(name, ours, f"r{round_}", a, states, lambda: table_bytes(admin, a.schema, OURS)))
                else:
                    tables = ", ".join(f"{ref_schema}.{t}" for t in REFERENCE[:3])
                    await admin.execute(f"TRUNCATE {tables}")
                    await admin.execute(f"VACUUM FULL {tables}")
                    results[name].append(await run(name, reference, f"r{round_}", a, states, lambda: table_bytes(admin, ref_schema, REFERENCE)))
    await pool.close()
    await admin.execute(f"DROP SCHEMA {ref_schema} CASCADE")
    await admin.close()
    if a.only:
        return
    summary = {}
    for k in ("steps_per_s", "p50_ms", "p99_ms", "bytes_per_thread", "machine_cpu_busy_percent"):
        ours_m = statistics.median(r[k] for r in results["agentstate"])
        ref_m = statistics.median(r[k] for r in results["postgres"])
        summary[k] = {"agentstate": ours_m, "postgres": ref_m, "ratio": round(ours_m / ref_m, 2)}
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agentstated", required=True)
    p.add_argument("--postgres", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", choices=["agentstate", "postgres"])
    args = p.parse_args()
    if not (1 <= args.agents <= 10000 and 1 <= args.steps <= 100000 and 1 <= args.rounds <= 20):
        sys.exit("saver_bench: --agents 1..10000, --steps 1..100000, --rounds 1..20")
    asyncio.run(main(args))
