// A client for agentstated's run API (docs/http-api.md): versioned saves with optimistic
// concurrency and idempotency keys, loads, checkpoints and restores.
import { randomUUID } from "node:crypto";

import { Http, type ClientOptions, query, seg } from "./http.js";

export interface SaveOptions {
  threadId: string;
  userId: string;
  agentType: string;
  step?: number;
  phase?: string;
  checkpoint?: "auto" | "manual" | "critical" | "recovery";
  /** save only over this version (0: only when the run does not exist yet) */
  expectedVersion?: number;
  /** a retry with the same key is answered with the first acknowledgement */
  idempotencyKey?: string;
}

export interface SaveAck {
  run_id: string;
  version: number;
  checksum: string;
  replayed: boolean;
}

export interface RunRecord {
  run_id: string;
  thread_id: string;
  version: number;
  status: "active" | "completed";
  checksum: string;
  state: unknown;
  [field: string]: unknown;
}

export class RunClient {
  private readonly http: Http;
  constructor(options: ClientOptions) {
    this.http = new Http(options);
  }

  async save(runId: string, state: unknown, o: SaveOptions): Promise<SaveAck> {
    const headers: Record<string, string> = { "idempotency-key": o.idempotencyKey ?? randomUUID() };
    if (o.expectedVersion === 0) headers["if-none-match"] = "*";
    else if (o.expectedVersion !== undefined) headers["if-match"] = `"${o.expectedVersion}"`;
    const path =
      `/v1/runs/${seg(runId)}` +
      query({ thread_id: o.threadId, user_id: o.userId, agent_type: o.agentType, step: o.step, phase: o.phase, checkpoint: o.checkpoint });
    return (await this.http.call<SaveAck>("POST", path, { body: JSON.stringify(state), headers }))!;
  }
  load(runId: string): Promise<RunRecord | undefined> {
    return this.http.call<RunRecord>("GET", `/v1/runs/${seg(runId)}`, { missingOk: true });
  }
  async delete(runId: string): Promise<boolean> {
    return (await this.http.call<{ deleted: boolean }>("DELETE", `/v1/runs/${seg(runId)}`))!.deleted;
  }
  async complete(runId: string): Promise<void> {
    await this.http.call("POST", `/v1/runs/${seg(runId)}/complete`);
  }
  async checkpoint(runId: string, type: "manual" | "critical" | "recovery" = "manual"): Promise<{ checkpoint_id: string }> {
    return (await this.http.call<{ checkpoint_id: string }>("POST", `/v1/runs/${seg(runId)}/checkpoints` + query({ type })))!;
  }
  async restore(runId: string, checkpointId?: string): Promise<RunRecord> {
    return (await this.http.call<RunRecord>("POST", `/v1/runs/${seg(runId)}/restore` + query({ checkpoint_id: checkpointId })))!;
  }
}
