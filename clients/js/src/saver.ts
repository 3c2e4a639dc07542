// A LangGraph.js checkpointer on agentstated's checkpoint model (docs/langgraph.md).
//
// The checkpoint document (without channel_values) and the metadata travel as JSON and are
// kept verbatim; each changed channel's value is serialised by the saver's serde and sent
// as base64 beside its type, stored once per (thread, namespace, channel, version), and
// joined back on read. The server applies LangGraph's write indexes and orders pending
// writes by (task_id, idx); tenants are isolated by the token.
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
  TASKS,
  getCheckpointId,
  maxChannelVersion,
} from "@langchain/langgraph-checkpoint";

import { AgentstateError, Http, type ClientOptions, query, seg } from "./http.js";

export interface SaverOptions extends ClientOptions {
  /**
   * Refuse a put whose parent is not the thread's newest checkpoint (409), so that two
   * runs on one thread cannot fork it silently. Off by default, as LangGraph's savers.
   */
  checkHead?: boolean;
  serde?: SerializerProtocol;
}

interface WireValue {
  channel: string;
  version: string;
  type: string;
  bytes: string;
}
interface WireTuple {
  thread_id: string;
  ns: string;
  checkpoint_id: string;
  parent_id: string | null;
  checkpoint: Omit<Checkpoint, "channel_values">;
  metadata: CheckpointMetadata;
  values: WireValue[];
  writes: { task_id: string; task_path: string; channel: string; idx: number; type: string; bytes: string }[];
}

/** What a prune removed. */
export interface PruneReport {
  checkpoints: number;
  values: number;
  writes: number;
  threads: number;
}

const PAGE = 1000;
const bytesOf = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const base64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

function required(config: RunnableConfig, key: "thread_id" | "checkpoint_id", call: string): string {
  const v = config.configurable?.[key];
  if (v === undefined || v === null || v === "")
    throw new Error(`${call}: config.configurable.${key} is required`);
  return String(v);
}

// The order of a checkpoint and its writes. LangGraph chains its puts but sends a task's
// writes at once, so the writes to checkpoint N+1 can reach the server while put(N) is still
// in flight and put(N+1) not yet made. The server takes writes only to a checkpoint that
// exists (a deleted thread takes none), so a write refused while this saver has a put of
// that thread in flight waits for the put of its checkpoint (bounded by the call's
// deadline) and goes again: writes land after their checkpoint, never orphaned before it.
class PutOrder {
  private readonly inFlight = new Map<string, number>(); // thread+ns -> puts in flight
  private readonly waiters = new Map<string, (() => void)[]>(); // checkpoint -> waiting writes
  private readonly settled = new Set<string>(); // checkpoints put lately (the last 1024)

  async track<T>(threadNs: string, checkpoint: string, put: Promise<T>): Promise<T> {
    this.inFlight.set(threadNs, (this.inFlight.get(threadNs) ?? 0) + 1);
    try {
      return await put;
    } finally {
      const n = this.inFlight.get(threadNs)! - 1;
      if (n === 0) this.inFlight.delete(threadNs);
      else this.inFlight.set(threadNs, n);
      this.settled.add(checkpoint);
      if (this.settled.size > 1024) this.settled.delete(this.settled.values().next().value!);
      for (const wake of this.waiters.get(checkpoint) ?? []) wake();
      this.waiters.delete(checkpoint);
    }
  }
  busy(threadNs: string): boolean {
    return this.inFlight.has(threadNs);
  }
  /** Resolves when the checkpoint's put settles here, or after `ms`. */
  async settledOrTimeout(checkpoint: string, ms: number): Promise<void> {
    if (this.settled.has(checkpoint)) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      const list = this.waiters.get(checkpoint) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.waiters.set(checkpoint, list);
    });
  }
}

export class AgentstateSaver extends BaseCheckpointSaver {
  private readonly http: Http;
  private readonly checkHead: boolean;
  private readonly order = new PutOrder();
  private readonly timeoutMs: number;

  constructor(options: SaverOptions) {
    super(options.serde);
    this.http = new Http(options);
    this.checkHead = options.checkHead ?? false;
    this.timeoutMs = options.timeoutMs ?? 10000;
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = config.configurable?.thread_id;
    if (threadId === undefined || threadId === null || threadId === "") return undefined;
    const ns: string = config.configurable?.checkpoint_ns ?? "";
    const id = getCheckpointId(config);
    const path = id
      ? `/v1/threads/${seg(String(threadId))}/checkpoints/${seg(id)}`
      : `/v1/threads/${seg(String(threadId))}/head`;
    const t = await this.http.call<WireTuple>("GET", path + query({ ns }), { missingOk: true });
    return t ? this.toTuple(t) : undefined;
  }

  async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    let left = options?.limit;
    if (left !== undefined && left <= 0) return;
    const filter = options?.filter && Object.keys(options.filter).length ? JSON.stringify(options.filter) : undefined;
    let before: string | undefined = options?.before?.configurable?.checkpoint_id;
    const c = config.configurable ?? {};
    while (true) {
      const page = Math.min(left ?? PAGE, PAGE);
      const r = await this.http.call<{ checkpoints: WireTuple[] }>(
        "GET",
        "/v1/checkpoints" +
          query({
            thread_id: c.thread_id || undefined,
            ns: c.checkpoint_ns,
            checkpoint_id: c.checkpoint_id || undefined,
            before,
            limit: page,
            filter,
          }),
      );
      const got = r!.checkpoints;
      for (const t of got) yield await this.toTuple(t);
      if (left !== undefined) left -= got.length;
      if (got.length < page || left === 0) return;
      // The next page: ids below the last one (LangGraph's ids are unique uuid6 strings).
      before = got[got.length - 1].checkpoint_id;
    }
  }

  async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    if (config.configurable === undefined) throw new Error("put: config.configurable is required");
    const threadId = required(config, "thread_id", "put");
    const ns: string = config.configurable.checkpoint_ns ?? "";
    // In flight from the call on, serialising included (PutOrder).
    return this.order.track(
      JSON.stringify([threadId, ns]),
      JSON.stringify([threadId, ns, checkpoint.id]),
      this.send(config, threadId, ns, checkpoint, metadata, newVersions),
    );
  }

  private async send(
    config: RunnableConfig,
    threadId: string,
    ns: string,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const { channel_values: channelValues, ...doc } = checkpoint;
    const values = await Promise.all(
      Object.entries(newVersions).map(async ([channel, version]) => {
        if (!(channel in (channelValues ?? {})))
          return { channel, version: String(version), type: "empty", bytes: "" };
        const [type, bytes] = await this.serde.dumpsTyped(channelValues[channel]);
        return { channel, version: String(version), type, bytes: base64(bytes) };
      }),
    );
    const body = {
      parent_id: config.configurable?.checkpoint_id ?? null,
      checkpoint: doc,
      metadata,
      values,
      check_head: this.checkHead,
    };
    await this.http.call("PUT", `/v1/threads/${seg(threadId)}/checkpoints/${seg(checkpoint.id)}` + query({ ns }), { body });
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath = ""): Promise<void> {
    const threadId = required(config, "thread_id", "putWrites");
    const checkpointId = required(config, "checkpoint_id", "putWrites");
    const ns: string = config.configurable?.checkpoint_ns ?? "";
    const wire = await Promise.all(
      writes.map(async ([channel, value]) => {
        const [type, bytes] = await this.serde.dumpsTyped(value);
        return { channel, type, bytes: base64(bytes) };
      }),
    );
    const threadNs = JSON.stringify([threadId, ns]);
    const busy = this.order.busy(threadNs);
    const send = () =>
      this.http.call("PUT", `/v1/threads/${seg(threadId)}/checkpoints/${seg(checkpointId)}/writes/${seg(taskId)}` + query({ ns }), {
        body: { task_path: taskPath, writes: wire },
      });
    try {
      await send();
    } catch (e) {
      if (!(e instanceof AgentstateError && e.status === 404 && (busy || this.order.busy(threadNs)))) throw e;
      await this.order.settledOrTimeout(JSON.stringify([threadId, ns, checkpointId]), this.timeoutMs);
      await send();
    }
  }

  async deleteThread(threadId: string): Promise<void> {
    await this.http.call("DELETE", `/v1/threads/${seg(threadId)}/checkpoints`);
  }

  /** Copies every checkpoint, value and write of a thread into a new thread id. */
  async copyThread(from: string, to: string): Promise<number> {
    const r = await this.http.call<{ copied: number }>("POST", `/v1/threads/${seg(from)}/copy` + query({ to }));
    return r!.copied;
  }

  /**
   * LangGraph's deleteForRuns: removes every checkpoint whose metadata names one of the
   * runs (its run_id), with its writes, across the tenant's threads.
   */
  async deleteForRuns(runIds: string[]): Promise<PruneReport> {
    const total: PruneReport = { checkpoints: 0, values: 0, writes: 0, threads: 0 };
    for (let i = 0; i < runIds.length; i += 1000) {
      const r = (await this.http.call<PruneReport>("POST", "/v1/checkpoints/delete-for-runs", {
        body: { run_ids: runIds.slice(i, i + 1000) },
      }))!;
      for (const k of Object.keys(total) as (keyof PruneReport)[]) total[k] += r[k];
    }
    return total;
  }

  /**
   * Retention: keep the newest `keepLast` checkpoints per namespace, drop threads untouched
   * for `ttlMs`, or (strategy "delete") remove everything; of one thread or of all.
   */
  async prune(options: { threadId?: string; keepLast?: number; ttlMs?: number; strategy?: "retain" | "delete" }): Promise<PruneReport> {
    const r = await this.http.call<PruneReport>(
      "POST",
      "/v1/checkpoints/prune" +
        query({ thread_id: options.threadId, keep_last: options.keepLast, ttl_ms: options.ttlMs, strategy: options.strategy }),
    );
    return r!;
  }

  private async toTuple(t: WireTuple): Promise<CheckpointTuple> {
    const channelValues: Record<string, unknown> = {};
    for (const v of t.values) channelValues[v.channel] = await this.serde.loadsTyped(v.type, bytesOf(v.bytes));
    const checkpoint = { ...t.checkpoint, channel_values: channelValues } as Checkpoint;
    const parent = t.parent_id ?? undefined;
    if (checkpoint.v < 4 && parent !== undefined) await this.migratePendingSends(checkpoint, t, parent);
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: t.thread_id, checkpoint_ns: t.ns, checkpoint_id: t.checkpoint_id } },
      checkpoint,
      metadata: t.metadata,
      pendingWrites: await Promise.all(
        t.writes.map(async (w) => [w.task_id, w.channel, await this.serde.loadsTyped(w.type, bytesOf(w.bytes))] as [string, string, unknown]),
      ),
    };
    if (parent !== undefined)
      tuple.parentConfig = { configurable: { thread_id: t.thread_id, checkpoint_ns: t.ns, checkpoint_id: parent } };
    return tuple;
  }

  // Checkpoints before format 4 kept pending sends as the parent's writes to TASKS.
  private async migratePendingSends(checkpoint: Checkpoint, t: WireTuple, parent: string): Promise<void> {
    const p = await this.http.call<WireTuple>(
      "GET",
      `/v1/threads/${seg(t.thread_id)}/checkpoints/${seg(parent)}` + query({ ns: t.ns }),
      { missingOk: true },
    );
    const sends = await Promise.all(
      (p?.writes ?? []).filter((w) => w.channel === TASKS).map((w) => this.serde.loadsTyped(w.type, bytesOf(w.bytes))),
    );
    checkpoint.channel_values[TASKS] = sends;
    const versions = Object.values(checkpoint.channel_versions ?? {});
    checkpoint.channel_versions ??= {};
    checkpoint.channel_versions[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }
}
