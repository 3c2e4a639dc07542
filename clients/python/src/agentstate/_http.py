"""One HTTP exchange with agentstated, for the async (aiohttp) and the sync (httpx) clients.

Every call has one deadline that covers its retries; the bearer token travels in a header
and never appears in an error. An RFC 9457 problem body becomes the exception of the
engine's code. 429 and 503 are retried after ``Retry-After`` (the same request, so a save's
``Idempotency-Key`` with it) while the deadline allows; a server that does not answer is
one clear ``UnavailableError`` naming the URL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import httpx

from agentstate.errors import AgentstateError, DeadlineError, UnavailableError, error_for


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # already percent-encoded, with its query
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    missing_ok: bool = False  # a 404 answers None


def seg(s: str) -> str:
    """A path segment, percent-encoded."""
    return quote(str(s), safe="")


def query(**params: Any) -> str:
    """A query string of the parameters that are not None."""
    given = {k: str(v) for k, v in params.items() if v is not None}
    return "?" + urlencode(given, quote_via=quote) if given else ""


def json_body(value: Any) -> bytes:
    """Strict JSON: NaN and infinities are refused here, as the server would."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError as e:
        raise ValueError(f"not JSON: {e} (NaN and infinities have no JSON form)") from None
    except TypeError as e:
        raise TypeError(f"not JSON: {e}") from None


class _Base:
    def __init__(self, url: str, token: str | None, timeout: float, retries: int, max_connections: int = 256) -> None:
        if not 1 <= max_connections <= 10000:
            raise ValueError(f"max_connections must be 1..10000, not {max_connections}")
        self.max_connections = max_connections
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"agentstated URL must be http:// or https://, not {url!r}")
        self.base = url.rstrip("/")
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.retries = retries

    def _headers_for(self, r: Request) -> dict[str, str]:
        headers = {**self._headers, **r.headers}
        if r.body is not None:
            headers["content-type"] = "application/json"
        return headers

    def _unreachable(self, r: Request, e: BaseException) -> AgentstateError:
        where = f"agentstated at {self.base} did not answer {r.method} {r.path.split('?')[0]}"
        if isinstance(e, (TimeoutError, httpx.TimeoutException)):
            return DeadlineError(f"{where} within the deadline of {self.timeout:g} s", status=0, code="timeout")
        return UnavailableError(f"{where}: {str(e) or type(e).__name__}", status=0, code="unavailable")

    def _retry_after(self, status: int, headers: Mapping[str, str], attempt: int, deadline: float) -> float | None:
        """Seconds to wait before trying again, or None to answer now."""
        if status not in (429, 503) or attempt >= self.retries:
            return None
        try:
            wait = max(0.0, float(headers.get("retry-after", "1")))
        except ValueError:
            wait = 1.0
        return wait if time.monotonic() + wait < deadline else None

    @staticmethod
    def _answer(r: Request, status: int, body: bytes) -> Any:
        if 200 <= status < 300:
            return json.loads(body)
        if status == 404 and r.missing_ok:
            return None
        text = body.decode("utf-8", "replace")
        code, detail = "internal", text[:200]
        try:
            problem = json.loads(text)
            code = problem.get("code", code)
            detail = problem.get("detail", detail)
        except (ValueError, AttributeError):
            pass  # not a problem body: keep the text
        raise error_for(code, status)(f"agentstated: {status} {code}: {detail}", status=status, code=code)


class AsyncHttp(_Base):
    """The async transport: one pooled ``aiohttp.ClientSession``, connections reused.

    aiohttp rather than httpx here: 100 coroutines reading through one client got 267
    requests/s from httpx 0.28.1's AsyncClient and 2,405 from aiohttp 3.14.5
    (bench/langgraph-python/http_clients.py, docs/benchmarks.md), and a saver's requests
    are all concurrent.
    """

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 10.0, retries: int = 3, max_connections: int = 256
    ) -> None:
        super().__init__(url, token, timeout, retries, max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        # A session belongs to its event loop: a saver used from a new loop gets a new one.
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # Past the limit, aiohttp hands a freed connection to whoever asks next rather
            # than to the longest waiter: 100 agents on 64 connections saw first requests
            # wait 1 to 4 s. So the limit is a bound on sockets, set above the concurrency.
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
            self._loop = loop
        return self._session

    async def call(self, r: Request) -> Any:
        session = self._client()
        deadline = time.monotonic() + self.timeout
        headers = self._headers_for(r)
        for attempt in range(self.retries + 1):
            left = max(deadline - time.monotonic(), 0.001)
            try:
                async with session.request(
                    r.method, self.base + r.path, data=r.body, headers=headers, timeout=aiohttp.ClientTimeout(total=left)
                ) as response:
                    status, got, body = response.status, response.headers, await response.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                raise self._unreachable(r, e) from None
            wait = self._retry_after(status, got, attempt, deadline)
            if wait is None:
                return self._answer(r, status, body)
            await asyncio.sleep(wait)  # Retry-After, bounded by the deadline
        raise AssertionError("unreachable: the last attempt answers")

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None


class SyncHttp(_Base):
    """The sync transport: one pooled ``httpx.Client``, connections reused."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 10.0, retries: int = 3, max_connections: int = 256
    ) -> None:
        super().__init__(url, token, timeout, retries, max_connections)
        self._client: httpx.Client | None = None

    def call(self, r: Request) -> Any:
        if self._client is None:
            limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=64)
            self._client = httpx.Client(limits=limits)
        deadline = time.monotonic() + self.timeout
        headers = self._headers_for(r)
        for attempt in range(self.retries + 1):
            left = max(deadline - time.monotonic(), 0.001)
            try:
                response = self._client.request(r.method, self.base + r.path, content=r.body, headers=headers, timeout=left)
            except httpx.HTTPError as e:
                raise self._unreachable(r, e) from None
            wait = self._retry_after(response.status_code, response.headers, attempt, deadline)
            if wait is None:
                return self._answer(r, response.status_code, response.content)
            time.sleep(wait)  # Retry-After, bounded by the deadline
        raise AssertionError("unreachable: the last attempt answers")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["AgentstateError", "AsyncHttp", "Request", "SyncHttp", "json_body", "query", "seg"]
