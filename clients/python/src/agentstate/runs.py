"""A client for agentstated's run API (docs/http-api.md): versioned saves with optimistic
concurrency and idempotency keys, loads, checkpoints and restores.

``RunClient`` is asyncio; ``SyncRunClient`` is the same calls for scripts. Both build their
requests with the functions below and differ only in how they send them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from agentstate._http import AsyncHttp, Request, SyncHttp, json_body, query, seg

CheckpointType = Literal["auto", "manual", "critical", "recovery"]


@dataclass(frozen=True)
class SaveAck:
    run_id: str
    version: int
    checksum: str
    replayed: bool = False


@dataclass(frozen=True, kw_only=True)
class ActiveRun:
    """A run in a page of active runs: who and which version, without the state."""

    run_id: str
    thread_id: str
    user_id: str
    agent_type: str
    version: int
    saved_at_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # fields of newer servers

    @classmethod
    def of(cls, body: dict[str, Any]) -> Any:
        return _typed(cls, body)


@dataclass(frozen=True, kw_only=True)
class RunRecord(ActiveRun):
    """A loaded run: its latest version, and the state as it was saved."""

    status: Literal["active", "completed"]
    checksum: str
    state: Any
    step_count: int = 0
    phase: str = ""
    checkpoint_type: str = "auto"
    is_recovery_point: bool = False


@dataclass(frozen=True, kw_only=True)
class RunCheckpoint:
    checkpoint_id: str
    run_id: str
    version: int
    type: str  # manual, critical, recovery
    is_recovery_point: bool = False
    created_at_ms: int = 0
    payload_bytes: int = 0
    checksum: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> RunCheckpoint:
        return _typed(cls, body)


def _typed(cls: Any, body: dict[str, Any]) -> Any:
    """A model of a JSON object: its known fields typed, the rest kept in ``extra``."""
    known = {f for f in cls.__dataclass_fields__ if f != "extra"}
    return cls(**{k: v for k, v in body.items() if k in known}, extra={k: v for k, v in body.items() if k not in known})


# The requests, each with how its answer becomes a result.
def _save(
    run_id: str,
    state: Any,
    *,
    thread_id: str,
    user_id: str,
    agent_type: str,
    step: int | None = None,
    phase: str | None = None,
    checkpoint: CheckpointType | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[Request, Any]:
    # A key per call, so that the transport's retries of this request are one save.
    headers = {"idempotency-key": idempotency_key or str(uuid.uuid4())}
    if expected_version == 0:
        headers["if-none-match"] = "*"
    elif expected_version is not None:
        headers["if-match"] = f'"{expected_version}"'
    path = f"/v1/runs/{seg(run_id)}" + query(
        thread_id=thread_id, user_id=user_id, agent_type=agent_type, step=step, phase=phase, checkpoint=checkpoint
    )
    return Request("POST", path, json_body(state), headers), lambda b: SaveAck(**{k: b[k] for k in ("run_id", "version", "checksum", "replayed") if k in b})


def _load(run_id: str) -> tuple[Request, Any]:
    return Request("GET", f"/v1/runs/{seg(run_id)}", missing_ok=True), lambda b: b and RunRecord.of(b)


def _delete(run_id: str) -> tuple[Request, Any]:
    return Request("DELETE", f"/v1/runs/{seg(run_id)}"), lambda b: bool(b["deleted"])


def _complete(run_id: str) -> tuple[Request, Any]:
    return Request("POST", f"/v1/runs/{seg(run_id)}/complete"), lambda b: None


def _checkpoint(run_id: str, type: CheckpointType = "manual") -> tuple[Request, Any]:
    return Request("POST", f"/v1/runs/{seg(run_id)}/checkpoints" + query(type=type)), RunCheckpoint.of


def _checkpoints(run_id: str) -> tuple[Request, Any]:
    return Request("GET", f"/v1/runs/{seg(run_id)}/checkpoints"), lambda b: [RunCheckpoint.of(c) for c in b["checkpoints"]]


def _restore(run_id: str, checkpoint_id: str | None = None) -> tuple[Request, Any]:
    return Request("POST", f"/v1/runs/{seg(run_id)}/restore" + query(checkpoint_id=checkpoint_id)), RunRecord.of


def _active_runs(thread_id: str | None = None, limit: int | None = None, cursor: str | None = None) -> tuple[Request, Any]:
    return Request("GET", "/v1/runs" + query(thread_id=thread_id, limit=limit, cursor=cursor)), lambda b: (
        [ActiveRun.of(r) for r in b["runs"]],
        b.get("next_cursor") or None,  # "" on the last page
    )


class RunClient:
    """The run API over asyncio. Use as ``async with RunClient(url, token=...) as runs``."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 10.0, retries: int = 3, max_connections: int = 256
    ) -> None:
        self._http = AsyncHttp(url, token, timeout, retries, max_connections)

    async def _run(self, made: tuple[Request, Any]) -> Any:
        request, parse = made
        return parse(await self._http.call(request))

    async def save(self, run_id: str, state: Any, **kw: Any) -> SaveAck:
        """Saves a state; ``expected_version`` (0: only if new) and ``idempotency_key`` as the API."""
        return await self._run(_save(run_id, state, **kw))

    async def load(self, run_id: str) -> RunRecord | None:
        return await self._run(_load(run_id))

    async def delete(self, run_id: str) -> bool:
        return await self._run(_delete(run_id))

    async def complete(self, run_id: str) -> None:
        await self._run(_complete(run_id))

    async def checkpoint(self, run_id: str, type: CheckpointType = "manual") -> RunCheckpoint:
        return await self._run(_checkpoint(run_id, type))

    async def checkpoints(self, run_id: str) -> list[RunCheckpoint]:
        return await self._run(_checkpoints(run_id))

    async def restore(self, run_id: str, checkpoint_id: str | None = None) -> RunRecord:
        return await self._run(_restore(run_id, checkpoint_id))

    async def active_runs(
        self, thread_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> tuple[list[ActiveRun], str | None]:
        """One page: (runs, next_cursor or None)."""
        return await self._run(_active_runs(thread_id, limit, cursor))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RunClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncRunClient:
    """The run API for scripts: the same calls as ``RunClient``, blocking."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 10.0, retries: int = 3, max_connections: int = 256
    ) -> None:
        self._http = SyncHttp(url, token, timeout, retries, max_connections)

    def _run(self, made: tuple[Request, Any]) -> Any:
        request, parse = made
        return parse(self._http.call(request))

    def save(self, run_id: str, state: Any, **kw: Any) -> SaveAck:
        return self._run(_save(run_id, state, **kw))

    def load(self, run_id: str) -> RunRecord | None:
        return self._run(_load(run_id))

    def delete(self, run_id: str) -> bool:
        return self._run(_delete(run_id))

    def complete(self, run_id: str) -> None:
        self._run(_complete(run_id))

    def checkpoint(self, run_id: str, type: CheckpointType = "manual") -> RunCheckpoint:
        return self._run(_checkpoint(run_id, type))

    def checkpoints(self, run_id: str) -> list[RunCheckpoint]:
        return self._run(_checkpoints(run_id))

    def restore(self, run_id: str, checkpoint_id: str | None = None) -> RunRecord:
        return self._run(_restore(run_id, checkpoint_id))

    def active_runs(
        self, thread_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> tuple[list[ActiveRun], str | None]:
        return self._run(_active_runs(thread_id, limit, cursor))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncRunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
