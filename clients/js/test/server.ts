// vitest's global setup: a real agentstated on loopback with a token file holding one admin
// token, on the store AGENTSTATE_TEST_STORE names: "sqlite" (default, a file in a fresh
// directory) or "postgres" (AGENTSTATE_POSTGRES_URL, a schema of its own). Every test
// makes its own tenants with the admin token. Under CI a missing binary or service fails.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    agentstatedUrl: string;
    adminToken: string;
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));

function storeUri(dir: string): string {
  const kind = process.env.AGENTSTATE_TEST_STORE ?? "sqlite";
  if (kind === "sqlite") return `sqlite://${path.join(dir, "state.db")}`;
  if (kind === "postgres") {
    const pg = process.env.AGENTSTATE_POSTGRES_URL;
    if (!pg) throw new Error("AGENTSTATE_POSTGRES_URL is not set: run scripts/services.sh up and eval its env");
    return `${pg}${pg.includes("?") ? "&" : "?"}schema=js_saver_${process.pid}`;
  }
  throw new Error(`AGENTSTATE_TEST_STORE must be sqlite or postgres, not ${kind}`);
}

let server: ChildProcess | undefined;
let dir = "";

export async function setup(project: TestProject) {
  const bin = process.env.AGENTSTATED_BIN ?? path.resolve(here, "../../../build/agentstated");
  dir = mkdtempSync(path.join(tmpdir(), "agentstate-js-"));
  const admin = `admin-${randomBytes(16).toString("hex")}`;
  const hashed = spawnSync(bin, ["hash-token", "--tenant", "ops", "--role", "admin"], { input: `${admin}\n` });
  if (hashed.status !== 0) throw new Error(`${bin} hash-token failed (${hashed.error ?? hashed.stderr}); build it first`);
  writeFileSync(path.join(dir, "tokens"), hashed.stdout);
  server = spawn(bin, ["--listen", "127.0.0.1:0", "--threads", "2", "--tokens", path.join(dir, "tokens"), "--store", storeUri(dir)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`agentstated did not start in 10 s: ${seen}`)), 10000);
    server!.stderr!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
    server!.on("exit", (code) => reject(new Error(`agentstated exited with ${code}: ${seen}`)));
  });
  server.stderr!.resume();
  project.provide("agentstatedUrl", url);
  project.provide("adminToken", admin);
}

export async function teardown() {
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((resolve) => server!.once("exit", resolve));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}
