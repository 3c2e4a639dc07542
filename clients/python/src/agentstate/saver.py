"""A LangGraph checkpointer on agentstated's checkpoint model (docs/python.md).

The same wire as the JS saver: the checkpoint document (without channel_values) and the
metadata travel as JSON and are kept verbatim; each changed channel's value is serialised by
the saver's serde and sent as base64 beside its type, stored once per (thread, namespace,
channel, version) and joined back on read. Tenants are isolated by the token.

Every method has a sync and an async form (LangGraph calls either); both build the same
requests below and differ only in the transport that sends them.
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentstate._http import AsyncHttp, Request, SyncHttp, json_body, query, seg
from agentstate.errors import NotFoundError

_PAGE = 1000  # checkpoints per list request (the server's default)
_RUNS_PER_DELETE = 1000  # the server's limit of run ids per delete


class PruneReport(TypedDict):
    """What a prune or a delete removed."""

    checkpoints: int
    values: int
    writes: int
    threads: int


def _required(config: RunnableConfig, key: str, call: str) -> str:
    value = (config.get("configurable") or {}).get(key)
    if value is None or value == "":
        raise ValueError(f"{call}: config['configurable']['{key}'] is required")
    return str(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _PutOrder:
    """The order of a checkpoint and its writes.

    LangGraph sends a put in the background and a task's writes as soon as the task ends,
    so the writes to checkpoint N+1 can reach the server while its put is still in flight.
    The server takes writes only to a checkpoint that exists (a deleted thread takes none),
    so a write refused while this saver has a put of that thread in flight waits for the
    put of its checkpoint (bounded by the call's deadline) and goes again: writes land after
    their checkpoint, never orphaned before it. Safe across threads and event loops.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._settled: OrderedDict[tuple[str, str, str], None] = OrderedDict()  # the last 1024
        self._waiters: dict[tuple[str, str, str], list[Callable[[], None]]] = {}

    def begin(self, thread_ns: tuple[str, str]) -> None:
        with self._lock:
            self._in_flight[thread_ns] = self._in_flight.get(thread_ns, 0) + 1

    def end(self, thread_ns: tuple[str, str], checkpoint: tuple[str, str, str]) -> None:
        with self._lock:
            left = self._in_flight[thread_ns] - 1
            if left:
                self._in_flight[thread_ns] = left
            else:
                del self._in_flight[thread_ns]
            self._settled[checkpoint] = None
            if len(self._settled) > 1024:
                self._settled.popitem(last=False)
            wakes = self._waiters.pop(checkpoint, [])
        for wake in wakes:
            wake()

    def busy(self, thread_ns: tuple[str, str]) -> bool:
        with self._lock:
            return thread_ns in self._in_flight

    def _enlist(self, checkpoint: tuple[str, str, str], wake: Callable[[], None]) -> bool:
        with self._lock:
            if checkpoint in self._settled:
                return False
            self._waiters.setdefault(checkpoint, []).append(wake)
            return True

    def wait(self, checkpoint: tuple[str, str, str], timeout: float) -> None:
        event = threading.Event()
        if self._enlist(checkpoint, event.set):
            event.wait(timeout)

    async def await_(self, checkpoint: tuple[str, str, str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        settled = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(lambda: settled.done() or settled.set_result(None))

        if self._enlist(checkpoint, wake):
            try:
                await asyncio.wait_for(settled, timeout)
            except TimeoutError:
                pass  # the second attempt answers


class _ListCursor:
    """The pages of a list: the next request, and what each answer holds."""

    def __init__(self, config: RunnableConfig | None, filter: dict[str, Any] | None, before: RunnableConfig | None, limit: int | None) -> None:
        c = (config or {}).get("configurable") or {}
        self._params = {
            "thread_id": c.get("thread_id") or None,
            "ns": c.get("checkpoint_ns"),
            "checkpoint_id": c.get("checkpoint_id") or None,
            "filter": json_body(filter).decode() if filter else None,
        }
        self._before = get_checkpoint_id(before) if before else None
        self._left = limit
        self._done = limit is not None and limit <= 0

    def next_request(self) -> Request | None:
        if self._done:
            return None
        self._page = min(self._left if self._left is not None else _PAGE, _PAGE)
        return Request("GET", "/v1/checkpoints" + query(**self._params, before=self._before, limit=self._page))

    def take(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        got = body["checkpoints"]
        if self._left is not None:
            self._left -= len(got)
        self._done = len(got) < self._page or self._left == 0
        if got:  # the next page: ids below the last one (LangGraph's ids are unique uuid6)
            self._before = got[-1]["checkpoint_id"]
        return got


class AgentstateSaver(BaseCheckpointSaver[str]):
    """LangGraph's checkpointer on agentstated.

    ``check_head=True`` refuses a put whose parent is not the thread's newest checkpoint
    (``ConflictError``), so two runs on one thread cannot fork it silently. Use it as a
    context manager (``with`` or ``async with``), or call ``close``/``aclose``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        check_head: bool = False,
        serde: SerializerProtocol | None = None,
        max_connections: int = 256,
    ) -> None:
        super().__init__(serde=serde)
        self._async = AsyncHttp(url, token, timeout, retries, max_connections)
        self._sync = SyncHttp(url, token, timeout, retries, max_connections)
        self._check_head = check_head
        self._timeout = timeout
        self._order = _PutOrder()

    # -- the requests ---------------------------------------------------------------------

    @staticmethod
    def _tuple_request(config: RunnableConfig) -> Request | None:
        c = config.get("configurable") or {}
        thread_id = c.get("thread_id")
        if thread_id is None or thread_id == "":
            return None
        ns = c.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        path = f"/v1/threads/{seg(thread_id)}/" + (f"checkpoints/{seg(checkpoint_id)}" if checkpoint_id else "head")
        return Request("GET", path + query(ns=ns), missing_ok=True)

    def _put_request(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> tuple[Request, str, str]:
        thread_id = _required(config, "thread_id", "put")
        c = config["configurable"]
        ns = c.get("checkpoint_ns", "")
        doc = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        channel_values = checkpoint.get("channel_values") or {}
        values = []
        for channel, version in new_versions.items():
            if channel in channel_values:
                kind, data = self.serde.dumps_typed(channel_values[channel])
                values.append({"channel": channel, "version": str(version), "type": kind, "bytes": _b64(data)})
            else:
                values.append({"channel": channel, "version": str(version), "type": "empty", "bytes": ""})
        body = {
            "parent_id": c.get("checkpoint_id") or None,
            "checkpoint": doc,
            "metadata": get_serializable_checkpoint_metadata(config, metadata),
            "values": values,
            "check_head": self._check_head,
        }
        path = f"/v1/threads/{seg(thread_id)}/checkpoints/{seg(checkpoint['id'])}" + query(ns=ns)
        return Request("PUT", path, json_body(body)), thread_id, ns

    def _writes_request(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> tuple[Request, tuple[str, str], tuple[str, str, str]]:
        thread_id = _required(config, "thread_id", "put_writes")
        checkpoint_id = _required(config, "checkpoint_id", "put_writes")
        if not task_id:
            raise ValueError("put_writes: task_id is required")
        ns = config["configurable"].get("checkpoint_ns", "")
        wire = []
        for channel, value in writes:
            kind, data = self.serde.dumps_typed(value)
            wire.append({"channel": channel, "type": kind, "bytes": _b64(data)})
        path = f"/v1/threads/{seg(thread_id)}/checkpoints/{seg(checkpoint_id)}/writes/{seg(task_id)}" + query(ns=ns)
        body = json_body({"task_path": task_path, "writes": wire})
        return Request("PUT", path, body), (thread_id, ns), (thread_id, ns, checkpoint_id)

    @staticmethod
    def _delete_request(thread_id: str) -> Request:
        return Request("DELETE", f"/v1/threads/{seg(thread_id)}/checkpoints")

    @staticmethod
    def _runs_requests(run_ids: Sequence[str]) -> list[Request]:
        ids = [str(r) for r in run_ids]
        return [
            Request("POST", "/v1/checkpoints/delete-for-runs", json_body({"run_ids": ids[i : i + _RUNS_PER_DELETE]}))
            for i in range(0, len(ids), _RUNS_PER_DELETE)
        ]

    @staticmethod
    def _copy_request(source_thread_id: str, target_thread_id: str) -> Request:
        return Request("POST", f"/v1/threads/{seg(source_thread_id)}/copy" + query(to=target_thread_id))

    @staticmethod
    def _prune_requests(thread_ids: Sequence[str], strategy: str) -> list[Request]:
        if strategy == "keep_latest":
            params = {"strategy": "retain", "keep_last": 1}
        elif strategy == "delete":
            params = {"strategy": "delete"}
        else:
            raise ValueError(f"prune: strategy must be 'keep_latest' or 'delete', not {strategy!r}")
        return [Request("POST", "/v1/checkpoints/prune" + query(thread_id=t, **params)) for t in thread_ids]

    @staticmethod
    def _retain_request(thread_id: str | None, keep_last: int | None, ttl_ms: int | None) -> Request:
        if not keep_last and not ttl_ms:
            raise ValueError("retain: give keep_last or ttl_ms (prune(..., strategy='delete') removes all)")
        return Request("POST", "/v1/checkpoints/prune" + query(thread_id=thread_id, strategy="retain", keep_last=keep_last, ttl_ms=ttl_ms))

    def _tuple(self, t: dict[str, Any]) -> CheckpointTuple:
        loads = self.serde.loads_typed
        values = {v["channel"]: loads((v["type"], base64.b64decode(v["bytes"]))) for v in t["values"]}
        checkpoint: Checkpoint = {**t["checkpoint"], "channel_values": values}  # type: ignore[typeddict-item]
        ids = {"thread_id": t["thread_id"], "checkpoint_ns": t["ns"]}
        # LangGraph's order of a super-step's writes: (task_path, task_id, idx).
        writes = sorted(t["writes"], key=lambda w: (w["task_path"], w["task_id"], w["idx"]))
        return CheckpointTuple(
            config={"configurable": {**ids, "checkpoint_id": t["checkpoint_id"]}},
            checkpoint=checkpoint,
            metadata=t["metadata"],
            parent_config={"configurable": {**ids, "checkpoint_id": t["parent_id"]}} if t["parent_id"] else None,
            pending_writes=[(w["task_id"], w["channel"], loads((w["type"], base64.b64decode(w["bytes"])))) for w in writes],
        )

    @staticmethod
    def _stored(thread_id: str, ns: str, checkpoint: Checkpoint) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    # -- sync -------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        request = self._tuple_request(config)
        body = self._sync.call(request) if request else None
        return self._tuple(body) if body else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        cursor = _ListCursor(config, filter, before, limit)
        while (request := cursor.next_request()) is not None:
            for t in cursor.take(self._sync.call(request)):
                yield self._tuple(t)

    def put(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        thread_ns = self._thread_ns(config, "put")
        self._order.begin(thread_ns)  # in flight from the call on, serialising included
        try:
            request, thread_id, ns = self._put_request(config, checkpoint, metadata, new_versions)
            self._sync.call(request)
            return self._stored(thread_id, ns, checkpoint)
        finally:
            self._order.end(thread_ns, (*thread_ns, checkpoint["id"]))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        request, thread_ns, checkpoint = self._writes_request(config, writes, task_id, task_path)
        busy = self._order.busy(thread_ns)
        try:
            self._sync.call(request)
        except NotFoundError:
            if not (busy or self._order.busy(thread_ns)):
                raise
            self._order.wait(checkpoint, self._timeout)
            self._sync.call(request)

    def delete_thread(self, thread_id: str) -> None:
        self._sync.call(self._delete_request(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        for request in self._runs_requests(run_ids):
            self._sync.call(request)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copies every checkpoint, value and write; NotFoundError when the source has none,
        ConflictError when the target holds anything."""
        self._sync.call(self._copy_request(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for request in self._prune_requests(thread_ids, strategy):
            self._sync.call(request)

    def retain(self, thread_id: str | None = None, *, keep_last: int | None = None, ttl_ms: int | None = None) -> PruneReport:
        """Retention beyond LangGraph's prune: the newest ``keep_last`` per namespace, and
        threads untouched for ``ttl_ms`` removed; of one thread or of all the tenant's."""
        return self._sync.call(self._retain_request(thread_id, keep_last, ttl_ms))

    def close(self) -> None:
        self._sync.close()

    def __enter__(self) -> AgentstateSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async ------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        request = self._tuple_request(config)
        body = await self._async.call(request) if request else None
        return self._tuple(body) if body else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        cursor = _ListCursor(config, filter, before, limit)
        while (request := cursor.next_request()) is not None:
            for t in cursor.take(await self._async.call(request)):
                yield self._tuple(t)

    async def aput(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        thread_ns = self._thread_ns(config, "put")
        self._order.begin(thread_ns)
        try:
            request, thread_id, ns = self._put_request(config, checkpoint, metadata, new_versions)
            await self._async.call(request)
            return self._stored(thread_id, ns, checkpoint)
        finally:
            self._order.end(thread_ns, (*thread_ns, checkpoint["id"]))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        request, thread_ns, checkpoint = self._writes_request(config, writes, task_id, task_path)
        busy = self._order.busy(thread_ns)
        try:
            await self._async.call(request)
        except NotFoundError:
            if not (busy or self._order.busy(thread_ns)):
                raise
            await self._order.await_(checkpoint, self._timeout)
            await self._async.call(request)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._async.call(self._delete_request(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        for request in self._runs_requests(run_ids):
            await self._async.call(request)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._async.call(self._copy_request(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for request in self._prune_requests(thread_ids, strategy):
            await self._async.call(request)

    async def aretain(self, thread_id: str | None = None, *, keep_last: int | None = None, ttl_ms: int | None = None) -> PruneReport:
        return await self._async.call(self._retain_request(thread_id, keep_last, ttl_ms))

    async def aclose(self) -> None:
        await self._async.aclose()
        self._sync.close()

    async def __aenter__(self) -> AgentstateSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- versions ---------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """Versions as the reference savers make them: a zero-padded counter and a random
        fraction, so that they compare as strings and two writers never collide."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    @staticmethod
    def _thread_ns(config: RunnableConfig, call: str) -> tuple[str, str]:
        if config.get("configurable") is None:
            raise ValueError(f"{call}: config['configurable'] is required")
        return _required(config, "thread_id", call), config["configurable"].get("checkpoint_ns", "")
