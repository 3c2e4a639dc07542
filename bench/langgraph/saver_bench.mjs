// LangGraph's workload through two savers on one PostgreSQL, in one run: AgentstateSaver
// through agentstated (its PostgreSQL store) and @langchain/langgraph-checkpoint-postgres's
// PostgresSaver (its own pool of pg's default 10 connections). Both commit synchronously
// (PostgreSQL's default synchronous_commit=on; neither turns it off).
//
// Each of --agents concurrent agents runs --steps super-steps on its own thread, and each
// step is what LangGraph's loop does: put a checkpoint whose changed channels are the
// agent's state (small 300 B, large 8 KB, enterprise 30 KB, by agent in turn) and the step
// counter, put the task's two writes, and read the thread's head back. The savers run in
// turn, --rounds times, alternating which goes first; printed as one JSON line per run and a
// summary with the ratios. Bytes stored are the saver's tables (heap, indexes, TOAST) over
// the threads written, each of --steps steps.
//
// Usage: node saver_bench.mjs --agentstated URL --postgres URL [--agents 50] [--steps 100] [--rounds 3]
import { AgentstateSaver } from "@agentstate/client";
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((out, a, i, all) => (a.startsWith("--") ? [...out, [a.slice(2), all[i + 1]]] : out), []),
);
const agents = Number(args.agents ?? 50);
const steps = Number(args.steps ?? 100);
const rounds = Number(args.rounds ?? 3);
if (!args.agentstated || !args.postgres || !args.schema) {
  console.error("usage: node saver_bench.mjs --agentstated URL --postgres URL --schema SCHEMA [--agents 50] [--steps 100] [--rounds 3]");
  process.exit(2);
}
const SIZES = [300, 8 << 10, 30 << 10];

// A state of about `bytes` bytes that differs at every step, as an agent's messages do.
function state(bytes, agent, step) {
  const words = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const w = `a${agent}s${step}w${(i * 2654435761) % 100003}`;
    words.push(w);
    n += w.length + 3;
  }
  return { messages: words, step };
}

async function runAgent(saver, thread, size, latencies) {
  let config = { configurable: { thread_id: thread, checkpoint_ns: "" } };
  for (let step = 0; step < steps; step++) {
    const t0 = performance.now();
    const c = emptyCheckpoint();
    c.id = uuid6(-3);
    c.channel_values = { messages: state(size, thread, step), step };
    c.channel_versions = { messages: step + 1, step: step + 1 };
    c.versions_seen = { agent: { messages: step } };
    config = await saver.put(config, c, { source: "loop", step, parents: {} }, { messages: step + 1, step: step + 1 });
    await saver.putWrites(config, [["messages", { role: "ai", step }], ["next", "agent"]], `task-${step}`);
    const head = await saver.getTuple({ configurable: { thread_id: thread, checkpoint_ns: "" } });
    if (head?.checkpoint.id !== c.id) throw new Error(`thread ${thread}: read back ${head?.checkpoint.id}, not ${c.id}`);
    latencies.push(performance.now() - t0);
  }
}

const tableBytes = async (client, schema, tables) =>
  Number(
    (
      await client.query(
        "SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', $1::text, t)::regclass)), 0) AS b FROM unnest($2::text[]) t",
        [schema, tables],
      )
    ).rows[0].b,
  );

async function run(name, saver, prefix, measureBytes) {
  const latencies = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: agents }, (_, i) => runAgent(saver, `${prefix}-${i}`, SIZES[i % 3], latencies)));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const r = {
    saver: name,
    agents,
    steps,
    steps_per_s: Math.round((agents * steps) / seconds),
    p50_ms: +q(0.5).toFixed(2),
    p99_ms: +q(0.99).toFixed(2),
    bytes_per_thread: Math.round((await measureBytes()) / agents),
  };
  console.log(JSON.stringify(r));
  return r;
}

const client = new pg.Client({ connectionString: args.postgres });
await client.connect();
const refSchema = `lg_reference_${process.pid}`;

const reference = new PostgresSaver(new pg.Pool({ connectionString: args.postgres }), undefined, { schema: refSchema });
await reference.setup();
const ours = new AgentstateSaver({ url: args.agentstated });
const oursTables = ["lg_checkpoints", "lg_values", "lg_writes", "lg_threads"];
const refTables = ["checkpoints", "checkpoint_blobs", "checkpoint_writes"];
const results = { agentstate: [], postgres: [] };
for (let round = 0; round < rounds; round++) {
  const order = (round % 2 === 0 ? ["agentstate", "postgres"] : ["postgres", "agentstate"]).filter(
    (n) => !args.only || n === args.only,
  );
  for (const name of order) {
    // Each run starts on empty tables, so bytes are this run's threads alone.
    if (name === "agentstate") {
      await ours.prune({ strategy: "delete" });
      await client.query(`VACUUM FULL ${oursTables.map((t) => `${args.schema}.${t}`).join(", ")}`);
      results.agentstate.push(await run(name, ours, `r${round}`, () => tableBytes(client, args.schema, oursTables)));
    } else {
      await client.query(`TRUNCATE ${refTables.map((t) => `${refSchema}.${t}`).join(", ")}`);
      await client.query(`VACUUM FULL ${refTables.map((t) => `${refSchema}.${t}`).join(", ")}`);
      results.postgres.push(await run(name, reference, `r${round}`, () => tableBytes(client, refSchema, refTables)));
    }
  }
}
if (args.only) process.exit(0); // a profile of one saver: no ratios
const median = (xs, k) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = {};
for (const k of ["steps_per_s", "p50_ms", "p99_ms", "bytes_per_thread"]) {
  summary[k] = { agentstate: median(results.agentstate, k), postgres: median(results.postgres, k) };
  summary[k].ratio = +(summary[k].agentstate / summary[k].postgres).toFixed(2);
}
console.log(JSON.stringify({ summary }));
await client.query(`DROP SCHEMA ${refSchema} CASCADE`);
await client.end();
await reference.end();
