#!/usr/bin/env python3
"""Probe websockets servers from inside a test host with the real websockets client.

Every command prints one JSON object and exits 0 when it could run; the tests assert on the JSON.
  wsprobe.py echo TARGET MESSAGE...           echo each message (text) and its bytes (binary)
  wsprobe.py health TARGET                     GET /healthz: {"status": 200}
  wsprobe.py close-code TARGET -- CMD...       open a connection, run CMD, report the close code
  wsprobe.py spread TARGET COUNT               hold COUNT connections at once: which process serves each
  wsprobe.py idle TARGET SECONDS               echo, stay silent SECONDS, echo again
  wsprobe.py connects TARGET COUNT             COUNT new connections one after another, each echoing once
  wsprobe.py hold TARGET DIR                   echo, write DIR/ready, wait (<= 600 s) for DIR/go, echo
                                               again, write DIR/result (run it in the background)
TARGET is a Unix socket path (starts with /), host:port, or wss://host:port (TLS, trusting the
certificate file named by $WSPROBE_CAFILE).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect, unix_connect


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=os.environ["WSPROBE_CAFILE"])


def open_ws(target: str, **kwargs):
    kwargs.setdefault("open_timeout", 5)
    if target.startswith("/"):
        return unix_connect(target, "ws://localhost/", **kwargs)
    if target.startswith("wss://"):
        return connect(f"{target}/", ssl=tls_context(), **kwargs)
    return connect(f"ws://{target}/", **kwargs)


def raw_get(target: str, path: str) -> int:
    if target.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(target)
    else:
        host, port = target.removeprefix("wss://").rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=5)
        if target.startswith("wss://"):
            sock = tls_context().wrap_socket(sock, server_hostname=host)
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


def cmd_spread(target: str, count: int) -> dict:
    processes: dict[str, int] = {}
    echoed = 0
    with contextlib.ExitStack() as stack:
        connections = [stack.enter_context(open_ws(target)) for _ in range(count)]
        for i, ws in enumerate(connections):  # all open at once: least-connections sees them all
            name = ws.response.headers.get("X-Wsfleet-Process", "?")
            processes[name] = processes.get(name, 0) + 1
            ws.send(f"s{i}")
            echoed += ws.recv(timeout=5) == f"s{i}"
    return {"processes": processes, "echoed": echoed}


def cmd_idle(target: str, seconds: float) -> dict:
    # No keepalive pings from this client either: the connection carries nothing while idle.
    with open_ws(target, ping_interval=None) as ws:
        ws.send("first")
        first = ws.recv(timeout=5)
        time.sleep(seconds)
        try:
            ws.send("after idle")
            second = ws.recv(timeout=5)
        except ConnectionClosed:
            return {"ok": False, "code": ws.close_code, "first": first}
    return {"ok": first == "first" and second == "after idle", "code": None}


def cmd_connects(target: str, count: int) -> dict:
    ok, errors = 0, []
    for i in range(count):
        try:
            with open_ws(target) as ws:
                ws.send(f"c{i}")
                if ws.recv(timeout=5) == f"c{i}":
                    ok += 1
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"ok": ok, "failed": count - ok, "errors": errors[:5]}


def cmd_hold(target: str, directory: str) -> dict:
    folder = Path(directory)
    result: dict = {"ok": False}
    try:
        with open_ws(target) as ws:
            ws.send("before")
            result["before"] = ws.recv(timeout=5)
            result["process"] = ws.response.headers.get("X-Wsfleet-Process")
            (folder / "ready").write_text("1")
            deadline = time.monotonic() + 600
            while not (folder / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            ws.send("after")
            result["after"] = ws.recv(timeout=5)
            result["ok"] = result["before"] == "before" and result["after"] == "after"
    except ConnectionClosed as exc:
        result["code"] = exc.rcvd.code if exc.rcvd else 1006
    (folder / "result").write_text(json.dumps(result))
    return result


def main(argv: list[str]) -> int:
    command, target, *rest = argv
    if command == "echo":
        out = cmd_echo(target, rest)
    elif command == "health":
        out = {"status": raw_get(target, "/healthz")}
    elif command == "spread":
        out = cmd_spread(target, int(rest[0]))
    elif command == "idle":
        out = cmd_idle(target, float(rest[0]))
    elif command == "connects":
        out = cmd_connects(target, int(rest[0]))
    elif command == "hold":
        out = cmd_hold(target, rest[0])
    elif command == "close-code":
        out = cmd_close_code(target, rest[1:] if rest[:1] == ["--"] else rest)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
