"""A real agentstated on loopback for the tests, with a token file holding one admin token,
on the store AGENTSTATE_TEST_STORE names: "sqlite" (default, a file in a fresh directory) or
"postgres" (AGENTSTATE_POSTGRES_URL, a schema of its own). Every test makes its own tenants
with the admin token. A missing binary or service fails; nothing is skipped."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentstate import SyncAdmin

ROOT = Path(__file__).resolve().parents[3]


def agentstated_bin() -> str:
    path = os.environ.get("AGENTSTATED_BIN", str(ROOT / "build" / "agentstated"))
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is not an executable agentstated: build it first (cmake --build build)")
    return path


@dataclass
class Server:
    url: str
    admin_token: str
    process: subprocess.Popen

    def tenant(self) -> tuple[str, str]:
        """A fresh tenant and its agent token."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        admin = SyncAdmin(self.url, token=self.admin_token)
        try:
            return name, admin.create_tenant(name)
        finally:
            admin.close()


def start_agentstated(directory: Path, store: str, *extra: str) -> Server:
    binary = agentstated_bin()
    admin = f"admin-{secrets.token_hex(16)}"
    hashed = subprocess.run(
        [binary, "hash-token", "--tenant", "ops", "--role", "admin"], input=f"{admin}\n", capture_output=True, text=True, timeout=30
    )
    if hashed.returncode != 0:
        raise RuntimeError(f"{binary} hash-token failed: {hashed.stderr.strip()}")
    tokens = directory / "tokens"
    tokens.write_text(hashed.stdout)
    process = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--threads", "2", "--tokens", str(tokens), "--store", store, *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    assert process.stderr is not None
    for line in process.stderr:  # ends when the process exits
        seen += line
        if m := re.search(r"listening on (127\.0\.0\.1:\d+)", line):
            break
    else:
        raise RuntimeError(f"agentstated exited with {process.wait()}: {seen}")
    # Keep draining stderr so that the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    return Server(f"http://{m.group(1)}", admin, process)


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=30)


def test_store(directory: Path) -> str:
    kind = os.environ.get("AGENTSTATE_TEST_STORE", "sqlite")
    if kind == "sqlite":
        return f"sqlite://{directory / 'state.db'}"
    if kind == "postgres":
        pg = os.environ.get("AGENTSTATE_POSTGRES_URL")
        if not pg:
            raise RuntimeError("AGENTSTATE_POSTGRES_URL is not set: run scripts/services.sh up and eval its env")
        return f"{pg}{'&' if '?' in pg else '?'}schema=py_saver_{os.getpid()}"
    raise RuntimeError(f"AGENTSTATE_TEST_STORE must be sqlite or postgres, not {kind}")


@pytest.fixture(scope="session")
def agentstated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("agentstated")
    server = start_agentstated(directory, test_store(directory))
    yield server
    stop(server)


@pytest.fixture
def tenant(agentstated: Server) -> tuple[str, str]:
    return agentstated.tenant()
