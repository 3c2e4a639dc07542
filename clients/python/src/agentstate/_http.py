"""One HTTP exchange with agentstated, for the async and the sync clients alike.

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

import httpx

from agentstate.errors import AgentstateError, UnavailableError, error_for


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
    def __init__(self, url: str, token: str | None, timeout: float, retries: int) -> None:
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

    def _unreachable(self, r: Request, e: Exception) -> UnavailableError:
        why = str(e) or type(e).__name__
        return UnavailableError(
            f"agentstated at {self.base} did not answer {r.method} {r.path.split('?')[0]}: {why}",
            status=0,
            code="unavailable",
        )

    def _retry_after(self, response: httpx.Response, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before trying again, or None to answer now."""
        if response.status_code not in (429, 503) or attempt >= self.retries:
            return None
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        wait = max(0.0, wait)
        return wait if time.monotonic() + wait < deadline else None

    @staticmethod
    def _answer(r: Request, response: httpx.Response) -> Any:
        if 200 <= response.status_code < 300:
            return response.json()
        if response.status_code == 404 and r.missing_ok:
            return None
        code, detail = "internal", response.text[:200]
        try:
            problem = response.json()
            code = problem.get("code", code)
            detail = problem.get("detail", detail)
        except (ValueError, AttributeError):
            pass  # not a problem body: keep the text
        cls = error_for(code, response.status_code)
        raise cls(f"agentstated: {response.status_code} {code}: {detail}", status=response.status_code, code=code)


class AsyncHttp(_Base):
    """The async transport: one pooled ``httpx.AsyncClient``, connections reused."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0, retries: int = 3) -> None:
        super().__init__(url, token, timeout, retries)
        self._client: httpx.AsyncClient | None = None

    async def call(self, r: Request) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        deadline = time.monotonic() + self.timeout
        headers = self._headers_for(r)
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            try:
                response = await self._client.request(
                    r.method, self.base + r.path, content=r.body, headers=headers, timeout=max(left, 0.001)
                )
            except httpx.HTTPError as e:
                raise self._unreachable(r, e) from None
            wait = self._retry_after(response, attempt, deadline)
            if wait is None:
                return self._answer(r, response)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt answers")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class SyncHttp(_Base):
    """The sync transport: one pooled ``httpx.Client``, connections reused."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0, retries: int = 3) -> None:
        super().__init__(url, token, timeout, retries)
        self._client: httpx.Client | None = None

    def call(self, r: Request) -> Any:
        if self._client is None:
            self._client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        deadline = time.monotonic() + self.timeout
        headers = self._headers_for(r)
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            try:
                response = self._client.request(
                    r.method, self.base + r.path, content=r.body, headers=headers, timeout=max(left, 0.001)
                )
            except httpx.HTTPError as e:
                raise self._unreachable(r, e) from None
            wait = self._retry_after(response, attempt, deadline)
            if wait is None:
                return self._answer(r, response)
            time.sleep(wait)  # Retry-After, bounded by the deadline
        raise AssertionError("unreachable: the last attempt answers")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["AgentstateError", "AsyncHttp", "Request", "SyncHttp", "json_body", "query", "seg"]
