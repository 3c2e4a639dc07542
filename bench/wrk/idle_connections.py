"""Opens N idle TCP connections to agentstated on a loopback port and prints its RSS before
and after, read from /proc/PID/status (bench/http_anchor.sh).

Usage: idle_connections.py PORT N PID
"""
import socket
import sys
import time


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main() -> int:
    port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    before = rss_kb(pid)
    conns = []
    for _ in range(n):
        conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    time.sleep(1.0)  # the server accepts and starts a session for each
    # One request on a fresh connection: the server still answers with N idle ones open.
    probe = socket.create_connection(("127.0.0.1", port), timeout=5)
    probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = probe.recv(256).split(b"\r\n", 1)[0].decode()
    after = rss_kb(pid)
    print(f"RSS before {before / 1024:.1f} MiB, with {n} idle connections {after / 1024:.1f} MiB: "
          f"{(after - before) / n:.2f} KiB per connection; /healthz meanwhile: {answer}")
    for c in conns:
        c.close()
    return 0 if answer.endswith("200 OK") else 1


if __name__ == "__main__":
    sys.exit(main())
