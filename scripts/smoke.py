#!/usr/bin/env python3
"""Prove a deployment the way websockets' guides do: send Hello! through the load balancer.

    scripts/smoke.py [ws://127.0.0.1:8080/]
Exit status 0 when the message comes back and /healthz answers 200.
"""

from __future__ import annotations

import sys
import urllib.request

from websockets.sync.client import connect


def main(url: str) -> int:
    health_url = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/") + "/healthz"
    with urllib.request.urlopen(health_url, timeout=5) as response:
        print(f"GET {health_url}: {response.status}")
        if response.status != 200:
            return 1
    with connect(url, open_timeout=10) as ws:
        print(f"Connected to {url} (served by {ws.response.headers.get('X-Wsfleet-Process', '?')}).")
        print("> Hello!")
        ws.send("Hello!")
        reply = ws.recv(timeout=10)
        print(f"< {reply}")
    print("Connection closed: 1000 (OK).")
    return 0 if reply == "Hello!" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/"))
