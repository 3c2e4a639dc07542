// A StateGraph that writes a draft, then waits for a human's approval with interrupt().
// Its checkpoints live in agentstated, so the approval can come from another process, after
// a restart of the program and of the server:
//   node graph.mjs start  THREAD    runs until the interrupt and exits
//   node graph.mjs resume THREAD    resumes the same thread with the answer "yes"
// AGENTSTATE_URL (default http://127.0.0.1:8787) and AGENTSTATE_TOKEN say where and who.
import { AgentstateSaver } from "@agentstate/client";
import { Annotation, Command, END, START, StateGraph, interrupt } from "@langchain/langgraph";

const saver = new AgentstateSaver({
  url: process.env.AGENTSTATE_URL ?? "http://127.0.0.1:8787",
  token: process.env.AGENTSTATE_TOKEN,
  checkHead: true, // two runs of one thread cannot fork it silently
});

const State = Annotation.Root({
  topic: Annotation(),
  draft: Annotation(),
  approved: Annotation(),
});

const graph = new StateGraph(State)
  .addNode("write", (s) => ({ draft: `Why the ${s.topic} turn twice a day` }))
  .addNode("review", (s) => ({ approved: interrupt({ question: "publish?", draft: s.draft }) === "yes" }))
  .addEdge(START, "write")
  .addEdge("write", "review")
  .addEdge("review", END)
  .compile({ checkpointer: saver });

const [command, thread = "post-1"] = process.argv.slice(2);
const config = { configurable: { thread_id: thread } };
if (command === "start") {
  const out = await graph.invoke({ topic: "tides" }, config);
  console.log(JSON.stringify({ interrupted: out.__interrupt__?.map((i) => i.value) ?? null }));
} else if (command === "resume") {
  const out = await graph.invoke(new Command({ resume: "yes" }), config);
  console.log(JSON.stringify({ draft: out.draft, approved: out.approved }));
} else {
  console.error("usage: node graph.mjs start|resume [THREAD]");
  process.exit(2);
}
