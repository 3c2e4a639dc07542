"""A StateGraph that writes a draft, then waits for a human's approval with interrupt().

Its checkpoints live in agentstated, so the approval can come from another process, after a
restart of the program and of the server:
    python graph.py start  THREAD    runs until the interrupt and exits
    python graph.py resume THREAD    resumes the same thread with the answer "yes"
AGENTSTATE_URL (default http://127.0.0.1:8787) and AGENTSTATE_TOKEN say where and who.
"""

import json
import os
import sys
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agentstate import AgentstateSaver


class State(TypedDict, total=False):
    topic: str
    draft: str
    approved: bool


def write(s: State) -> State:
    return {"draft": f"Why the {s['topic']} turn twice a day"}


def review(s: State) -> State:
    return {"approved": interrupt({"question": "publish?", "draft": s["draft"]}) == "yes"}


def main(command: str, thread: str) -> None:
    # check_head: two runs of one thread cannot fork it silently.
    with AgentstateSaver(os.environ.get("AGENTSTATE_URL", "http://127.0.0.1:8787"),
                         token=os.environ.get("AGENTSTATE_TOKEN"), check_head=True) as saver:
        graph = (StateGraph(State).add_node("write", write).add_node("review", review)
                 .add_edge(START, "write").add_edge("write", "review").add_edge("review", END)
                 .compile(checkpointer=saver))
        config = {"configurable": {"thread_id": thread}}
        if command == "start":
            out = graph.invoke({"topic": "tides"}, config)
            print(json.dumps({"interrupted": [i.value for i in out.get("__interrupt__", [])]}))
        else:
            out = graph.invoke(Command(resume="yes"), config)
            print(json.dumps({"draft": out["draft"], "approved": out["approved"]}))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("start", "resume"):
        sys.exit("usage: python graph.py start|resume [THREAD]")
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "post-1")
