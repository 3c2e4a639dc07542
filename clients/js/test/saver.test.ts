// What AgentstateSaver and RunClient add beyond the reference savers, against the real
// agentstated of test/server.ts: the head check, copy, prune, tenant isolation, and clear
// errors for a server that is down or a token that is wrong.
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { AgentstateAdmin, AgentstateError, AgentstateSaver, RunClient } from "../src/index.js";

const url = inject("agentstatedUrl");
const admin = new AgentstateAdmin({ url, token: inject("adminToken") });
const tenants: string[] = [];
async function tenant(name: string): Promise<string> {
  const t = `${name}-${process.pid}`;
  tenants.push(t);
  return admin.createTenant(t);
}

function checkpoint(n: number) {
  const c = emptyCheckpoint();
  c.id = uuid6(n);
  c.channel_values = { step: n };
  c.channel_versions = { step: n };
  return c;
}
const meta = (step: number) => ({ source: "loop" as const, step, parents: {} });

let tokenA = "";
let tokenB = "";
beforeAll(async () => {
  tokenA = await tenant("saver-a");
  tokenB = await tenant("saver-b");
});
afterAll(async () => {
  for (const t of tenants) await admin.dropTenant(t);
});

describe("the head check", () => {
  it("refuses a put whose parent is not the thread's newest checkpoint, and lets one of many concurrent ones through", async () => {
    const saver = new AgentstateSaver({ url, token: tokenA, checkHead: true });
    const thread = { configurable: { thread_id: "head-check" } };
    const c1 = await saver.put(thread, checkpoint(1), meta(1), { step: 1 });
    const c2 = await saver.put(c1, checkpoint(2), meta(2), { step: 2 });
    // A second run that still believes c1 is the head.
    await expect(saver.put(c1, checkpoint(3), meta(3), { step: 3 })).rejects.toMatchObject({ status: 409, code: "conflict" });
    const racers = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => saver.put(c2, checkpoint(10 + i), meta(10 + i), { step: 10 + i })),
    );
    expect(racers.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(racers.filter((r) => r.status === "rejected" && (r.reason as AgentstateError).status === 409)).toHaveLength(7);
    // Without the check, as LangGraph's savers: the fork is allowed.
    const loose = new AgentstateSaver({ url, token: tokenA });
    await expect(loose.put(c1, checkpoint(30), meta(30), { step: 30 })).resolves.toBeDefined();
  });
});

describe("the order of a checkpoint and its writes", () => {
  it("lands writes sent before their checkpoint's put (as LangGraph sends them) after it", async () => {
    const saver = new AgentstateSaver({ url, token: tokenA });
    const thread = { configurable: { thread_id: "order" } };
    const c1 = checkpoint(300);
    const c2 = checkpoint(301);
    // LangGraph chains put(c2) after put(c1), and sends c2's writes at once.
    const puts = saver.put(thread, c1, meta(1), { step: 300 }).then((cfg) => saver.put(cfg, c2, meta(2), { step: 301 }));
    const writes = saver.putWrites({ configurable: { thread_id: "order", checkpoint_id: c2.id } }, [["out", "done"]], "task-1");
    await Promise.all([puts, writes]);
    const t = await saver.getTuple({ configurable: { thread_id: "order", checkpoint_id: c2.id } });
    expect(t?.pendingWrites).toEqual([["task-1", "out", "done"]]);
  });
});

describe("copy and prune", () => {
  it("copies a thread whole and keeps only the newest checkpoints it is told to", async () => {
    const saver = new AgentstateSaver({ url, token: tokenA });
    let config: { configurable: Record<string, string> } = { configurable: { thread_id: "retained" } };
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      config = (await saver.put(config, checkpoint(100 + i), meta(i), { step: 100 + i })) as typeof config;
      ids.push(config.configurable.checkpoint_id);
    }
    expect(await saver.copyThread("retained", "retained-copy")).toBe(5);
    const report = await saver.prune({ threadId: "retained", keepLast: 2 });
    expect(report).toEqual({ checkpoints: 3, values: 3, writes: 0, threads: 0 });
    const left = [];
    for await (const t of saver.list({ configurable: { thread_id: "retained" } })) left.push(t.checkpoint.channel_values.step);
    expect(left).toEqual([105, 104]);
    const copied = await saver.getTuple({ configurable: { thread_id: "retained-copy", checkpoint_id: ids[0] } });
    expect(copied?.checkpoint.channel_values).toEqual({ step: 101 });
    expect(await saver.prune({ threadId: "retained-copy", strategy: "delete" })).toMatchObject({ checkpoints: 5, threads: 1 });
    expect(await saver.getTuple({ configurable: { thread_id: "retained-copy" } })).toBeUndefined();
  });
});

describe("delete for runs", () => {
  it("removes the checkpoints of the runs named, in every thread, and keeps the others", async () => {
    const saver = new AgentstateSaver({ url, token: tokenA });
    const put = (thread: string, n: number, run: string) =>
      saver.put({ configurable: { thread_id: thread } }, checkpoint(200 + n), { ...meta(n), run_id: run }, { step: 200 + n });
    await put("runs-1", 1, "r-gone");
    await put("runs-2", 2, "r-gone");
    await put("runs-2", 3, "r-kept");
    expect(await saver.deleteForRuns(["r-gone"])).toMatchObject({ checkpoints: 2, threads: 1 });
    const left = [];
    for await (const t of saver.list({ configurable: { thread_id: "runs-2" } })) left.push(t.metadata?.run_id);
    expect(left).toEqual(["r-kept"]);
    expect(await saver.getTuple({ configurable: { thread_id: "runs-1" } })).toBeUndefined();
    expect(await saver.deleteForRuns([])).toEqual({ checkpoints: 0, values: 0, writes: 0, threads: 0 });
  });
});

describe("tenants", () => {
  it("never show one tenant's threads to another, whatever thread id it names", async () => {
    const a = new AgentstateSaver({ url, token: tokenA });
    const b = new AgentstateSaver({ url, token: tokenB });
    await a.put({ configurable: { thread_id: "shared-name" } }, checkpoint(200), meta(0), { step: 200 });
    expect(await b.getTuple({ configurable: { thread_id: "shared-name" } })).toBeUndefined();
    const seen = [];
    for await (const t of b.list({ configurable: {} })) seen.push(t);
    expect(seen).toEqual([]);
    await b.deleteThread("shared-name");
    expect(await a.getTuple({ configurable: { thread_id: "shared-name" } })).toBeDefined();
  });
});

describe("errors", () => {
  it("name the URL when the server is down, without a stack of retries", async () => {
    const down = new AgentstateSaver({ url: "http://127.0.0.1:9", token: "x", timeoutMs: 2000 });
    await expect(down.getTuple({ configurable: { thread_id: "t" } })).rejects.toThrow(/agentstated at http:\/\/127\.0\.0\.1:9 did not answer GET/);
  });
  it("are a 401 for a wrong token, which the message does not repeat", async () => {
    const wrong = new AgentstateSaver({ url, token: "not-a-token-0123456789" });
    const e = await wrong.getTuple({ configurable: { thread_id: "t" } }).catch((x) => x);
    expect(e).toBeInstanceOf(AgentstateError);
    expect(e.status).toBe(401);
    expect(e.message).not.toContain("not-a-token-0123456789");
  });
  it("reject puts and writes without their ids, and getTuple without a thread is undefined", async () => {
    const saver = new AgentstateSaver({ url, token: tokenA });
    await expect(saver.put({}, checkpoint(1), meta(1), {})).rejects.toThrow(/configurable/);
    await expect(saver.putWrites({ configurable: { thread_id: "t" } }, [["a", 1]], "task")).rejects.toThrow(/checkpoint_id/);
    expect(await saver.getTuple({ configurable: {} })).toBeUndefined();
    // A deleted thread takes no writes.
    await expect(
      saver.putWrites({ configurable: { thread_id: "gone", checkpoint_id: uuid6(1) } }, [["a", 1]], "task"),
    ).rejects.toMatchObject({ status: 404 });
  });
});

describe("the run client", () => {
  it("saves versions with optimistic concurrency and answers a retried key with the first acknowledgement", async () => {
    const runs = new RunClient({ url, token: tokenA });
    const first = await runs.save("run-1", { n: 1 }, { threadId: "th", userId: "u", agentType: "planner", expectedVersion: 0, idempotencyKey: "k1" });
    expect(first.version).toBe(1);
    const again = await runs.save("run-1", { n: 1 }, { threadId: "th", userId: "u", agentType: "planner", idempotencyKey: "k1" });
    expect(again).toMatchObject({ version: 1, replayed: true });
    await expect(runs.save("run-1", { n: 2 }, { threadId: "th", userId: "u", agentType: "planner", expectedVersion: 0 })).rejects.toMatchObject({ status: 409 });
    expect((await runs.load("run-1"))?.state).toEqual({ n: 1 });
    expect(await runs.load("no-such-run")).toBeUndefined();
  });
});
