"""Requests/s that one Python process gets from agentstated through each async HTTP client,
at 1 and at 100 concurrent coroutines (GET of a missing head: a request the server answers
from its store at once). The anchor for clients/python's choice of aiohttp for async.

Usage: python http_clients.py --agentstated URL [--requests 3000]
"""

import argparse
import asyncio
import json
import time

import aiohttp
import httpx


async def rate(get, url: str, concurrency: int, requests: int) -> float:
    done = 0

    async def worker() -> None:
        nonlocal done
        for _ in range(requests // concurrency):
            await get(url)
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - t0)


async def main(a: argparse.Namespace) -> None:
    url = a.agentstated.rstrip("/") + "/v1/threads/bench/head"
    for concurrency in (1, 100):
        row = {"concurrency": concurrency}
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=256)) as c:
            row[f"httpx_{httpx.__version__}_per_s"] = round(await rate(c.get, url, concurrency, a.requests))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as s:

            async def get(u: str) -> None:
                async with s.get(u) as r:
                    await r.read()

            row[f"aiohttp_{aiohttp.__version__}_per_s"] = round(await rate(get, url, concurrency, a.requests))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--agentstated", required=True)
    p.add_argument("--requests", type=int, default=3000)
    asyncio.run(main(p.parse_args()))
