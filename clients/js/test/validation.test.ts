// LangGraph's own validation suite (@langchain/langgraph-checkpoint-validation, library
// mode) against AgentstateSaver on a real agentstated: 718 cases under our own name (no
// name-keyed skips), and the opt-in deltaChannelHistoryTests. One tenant per instance.
import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import { inject } from "vitest";

import { AgentstateAdmin, AgentstateSaver } from "../src/index.js";

const url = inject("agentstatedUrl");
const admin = new AgentstateAdmin({ url, token: inject("adminToken") });
const tenants = new WeakMap<AgentstateSaver, string>();
let made = 0;

const initializer = {
  checkpointerName: "@agentstate/client AgentstateSaver",
  async createCheckpointer() {
    const tenant = `validation-${process.pid}-${++made}`;
    const saver = new AgentstateSaver({ url, token: await admin.createTenant(tenant) });
    tenants.set(saver, tenant);
    return saver;
  },
  async destroyCheckpointer(saver: AgentstateSaver) {
    await admin.dropTenant(tenants.get(saver)!);
  },
};

validate(initializer);
deltaChannelHistoryTests(initializer);
