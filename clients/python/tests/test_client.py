"""The run API client against a real agentstated: typed answers, the engine's codes as
exceptions, idempotent retries, Retry-After, a server that is down."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from conftest import start_agentstated, stop

from agentstate import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    RunClient,
    SyncRunClient,
    UnauthenticatedError,
    UnavailableError,
)

WHO = {"thread_id": "th-1", "user_id": "u-1", "agent_type": "planner"}


async def test_save_load_checkpoint_restore(agentstated, tenant) -> None:
    _, token = tenant
    async with RunClient(agentstated.url, token=token) as runs:
        first = await runs.save("run-1", {"n": 1}, **WHO, step=1, expected_version=0)
        assert (first.run_id, first.version, first.replayed) == ("run-1", 1, False)
        point = await runs.checkpoint("run-1", "critical")
        assert point.version == 1
        second = await runs.save("run-1", {"n": 2}, **WHO, expected_version=1)
        assert second.version == 2
        record = await runs.load("run-1")
        assert record is not None
        assert (record.state, record.version, record.thread_id, record.status) == ({"n": 2}, 2, "th-1", "active")
        assert [c.checkpoint_id for c in await runs.checkpoints("run-1")] == [point.checkpoint_id]
        restored = await runs.restore("run-1", point.checkpoint_id)
        assert (restored.state, restored.version) == ({"n": 1}, 3)
        page, cursor = await runs.active_runs(thread_id="th-1")
        assert [r.run_id for r in page] == ["run-1"] and cursor is None
        await runs.complete("run-1")
        assert (await runs.load("run-1")).status == "completed"
        assert await runs.delete("run-1") is True
        assert await runs.load("run-1") is None


async def test_the_engines_codes_are_exceptions(agentstated, tenant) -> None:
    _, token = tenant
    async with RunClient(agentstated.url, token=token) as runs:
        await runs.save("r", {"a": 1}, **WHO)
        with pytest.raises(ConflictError) as stale:
            await runs.save("r", {"a": 2}, **WHO, expected_version=7)
        assert (stale.value.status, stale.value.code) == (409, "conflict")
        with pytest.raises(InvalidArgumentError):
            await runs.save("r", {"a": 1}, thread_id="", user_id="u", agent_type="a")
        with pytest.raises(NotFoundError):
            await runs.restore("no-such-run")
    async with RunClient(agentstated.url, token="as_" + "0" * 64) as wrong:
        with pytest.raises(UnauthenticatedError) as e:
            await wrong.load("r")
        assert "0" * 64 not in str(e.value), "the token leaked into the error"


async def test_a_retried_save_with_its_key_is_one_version(agentstated, tenant) -> None:
    _, token = tenant
    async with RunClient(agentstated.url, token=token) as runs:
        key = str(uuid.uuid4())
        first = await runs.save("k", {"v": 1}, **WHO, idempotency_key=key)
        again = await runs.save("k", {"v": 1}, **WHO, idempotency_key=key)
        assert (again.version, again.replayed) == (first.version, True)
        with pytest.raises(ConflictError):
            await runs.save("k", {"v": 2}, **WHO, idempotency_key=key)
        assert (await runs.load("k")).version == 1


def test_the_sync_client_is_the_same_api(agentstated, tenant) -> None:
    _, token = tenant
    with SyncRunClient(agentstated.url, token=token) as runs:
        assert runs.save("s", [1, 2], **WHO).version == 1
        assert runs.load("s").state == [1, 2]
        assert runs.load("missing") is None


def test_a_server_that_is_down_is_one_clear_error() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with SyncRunClient(url, token="secret-token-value", retries=3) as runs, pytest.raises(UnavailableError) as e:
        runs.load("r")
    assert time.monotonic() - started < 2, "a refused connection is not retried"
    assert url in str(e.value) and "GET /v1/runs/r" in str(e.value)
    assert "secret-token-value" not in str(e.value)


async def test_429_is_retried_after_retry_after(tmp_path) -> None:
    # A server of its own whose token bucket holds one request a second.
    server = start_agentstated(tmp_path, "memory://", "--rate-limit", "1")
    try:
        _, token = server.tenant()
        async with RunClient(server.url, token=token, retries=2, timeout=10) as runs:
            started = time.monotonic()
            for i in range(3):
                await runs.save(f"r{i}", {"i": i}, **WHO)
            assert time.monotonic() - started >= 1.0, "three requests at 1/s went through without waiting"
        async with RunClient(server.url, token=token, retries=0) as impatient:
            with pytest.raises(RateLimitedError) as e:
                for i in range(3):
                    await impatient.load(f"r{i}")
            assert e.value.status == 429
    finally:
        stop(server)
