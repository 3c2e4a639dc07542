"""Tenants, made and dropped with an admin token (POST and DELETE /v1/admin/tenants/{t})."""

from __future__ import annotations

from agentstate._http import AsyncHttp, Request, SyncHttp, seg


class Admin:
    """The admin routes over asyncio."""

    def __init__(self, url: str, *, token: str, timeout: float = 10.0) -> None:
        self._http = AsyncHttp(url, token, timeout)

    async def create_tenant(self, tenant: str) -> str:
        """Makes a tenant and returns its first agent token (shown once)."""
        return (await self._http.call(Request("POST", f"/v1/admin/tenants/{seg(tenant)}")))["token"]

    async def drop_tenant(self, tenant: str) -> None:
        """Drops a tenant: its tokens revoked, then every run and checkpoint thread deleted."""
        await self._http.call(Request("DELETE", f"/v1/admin/tenants/{seg(tenant)}"))

    async def aclose(self) -> None:
        await self._http.aclose()


class SyncAdmin:
    """The admin routes for scripts."""

    def __init__(self, url: str, *, token: str, timeout: float = 10.0) -> None:
        self._http = SyncHttp(url, token, timeout)

    def create_tenant(self, tenant: str) -> str:
        return self._http.call(Request("POST", f"/v1/admin/tenants/{seg(tenant)}"))["token"]

    def drop_tenant(self, tenant: str) -> None:
        self._http.call(Request("DELETE", f"/v1/admin/tenants/{seg(tenant)}"))

    def close(self) -> None:
        self._http.close()
