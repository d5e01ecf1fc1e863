#!/usr/bin/env python3
"""Probe websockets servers from inside a test host with the real websockets client.

Every command prints one JSON object and exits 0 when it could run; the tests assert on the JSON.
  wsprobe.py echo TARGET MESSAGE...           echo each message (text) and its bytes (binary)
  wsprobe.py health TARGET                     GET /healthz: {"status": 200}
  wsprobe.py close-code TARGET -- CMD...       open a connection, run CMD, report the close code
TARGET is a Unix socket path (starts with /) or host:port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect, unix_connect


def open_ws(target: str):
    if target.startswith("/"):
        return unix_connect(target, "ws://localhost/", open_timeout=5)
    return connect(f"ws://{target}/", open_timeout=5)


def raw_get(target: str, path: str) -> int:
    if target.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(target)
    else:
        host, port = target.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=5)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def cmd_echo(target: str, messages: list[str]) -> dict:
    replies = []
    with open_ws(target) as ws:
        for message in messages:
            ws.send(message)
            replies.append(ws.recv(timeout=5))
            ws.send(message.encode())
            replies.append(ws.recv(timeout=5).decode(errors="replace") + " (binary)")
    return {"replies": replies}


def cmd_close_code(target: str, command: list[str]) -> dict:
    with open_ws(target) as ws:
        ws.send("before")
        ws.recv(timeout=5)
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        try:
            ws.recv(timeout=30)
        except ConnectionClosed:
            pass
        except TimeoutError:
            return {"code": None, "error": "no close within 30 s", "command_rc": result.returncode}
        return {"code": ws.close_code, "seconds": round(time.monotonic() - started, 2), "command_rc": result.returncode}


def main(argv: list[str]) -> int:
    command, target, *rest = argv
    if command == "echo":
        out = cmd_echo(target, rest)
    elif command == "health":
        out = {"status": raw_get(target, "/healthz")}
    elif command == "close-code":
        out = cmd_close_code(target, rest[1:] if rest[:1] == ["--"] else rest)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
