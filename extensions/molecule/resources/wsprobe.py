#!/usr/bin/env python3
"""Probe websockets servers from inside a test host with the real websockets client.

Every command prints one JSON object and exits 0 when it could run; the tests assert on the JSON.
  wsprobe.py echo TARGET MESSAGE...           echo each message (text) and its bytes (binary)
  wsprobe.py health TARGET                     GET /healthz: {"status": 200}
  wsprobe.py close-code TARGET -- CMD...       open a connection, run CMD, report the close code
  wsprobe.py spread TARGET COUNT [--at-once]   hold COUNT connections at once (opened one after another, or
                                               all at the same time): which process serves each
  wsprobe.py idle TARGET SECONDS               echo, stay silent SECONDS, echo again
  wsprobe.py connects TARGET COUNT             COUNT new connections one after another, each echoing once
  wsprobe.py hold TARGET DIR                   echo, write DIR/ready, wait (<= 600 s) for DIR/go, echo
                                               again, write DIR/result (run it in the background)
  wsprobe.py get TARGET PATH                   GET PATH: {"status": 200, "body": the first 100000 characters}
  wsprobe.py tls-cipher TARGET CIPHER          a TLS 1.2 handshake offering only CIPHER (OpenSSL name):
                                               {"ok": true, "cipher": ...} or {"ok": false, "error": ...}
  wsprobe.py watch-health TARGET SECONDS       GET /healthz every 0.2 s (each given 5 s): [[time, status or null], ...]
  wsprobe.py watch-haproxy SECONDS             HAProxy's server states (admin socket) every 0.1 s:
                                               [[time, {address: op_state}], ...] (0 down, 2 up)
  wsprobe.py haproxy-stat BACKEND              its servers' `show stat` row (admin socket): {address: {field: value}}
  wsprobe.py slow-headers TARGET COUNT         COUNT clients send their request headers one byte a second;
                                               while they do, one echo and one /healthz; when each was cut
  wsprobe.py never-reads HOST:PORT SECONDS APP [pushes]
                                               a client that sends what the app echoes and never reads:
                                               when the load balancer cut it (<= SECONDS), one echo meanwhile,
                                               HAProxy's session of it, and when the app's side closed (APP: its socket
                                               directory, or FIRST-LAST of its ports). It sends until its own
                                               sends stall (the buffers full both ways), or with `pushes`
                                               only until the load balancer holds 1 MB it cannot send to it
                                               (an app pushing to a client that stopped reading)
TARGET is a Unix socket path (starts with /), host:port, or wss://host:port (TLS, trusting the
certificate file named by $WSPROBE_CAFILE).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect, unix_connect
from websockets.exceptions import ConnectionClosed

# The asyncio client: websockets' threaded sync client stalls now and then on TLS handshakes
# through nginx (measured here: 3 of 200 connections timed out, against 0 of 200 with asyncio).


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=os.environ["WSPROBE_CAFILE"])


def open_ws(target: str, **kwargs):
    kwargs.setdefault("open_timeout", 5)
    if target.startswith("/"):
        return unix_connect(target, "ws://localhost/", **kwargs)
    if target.startswith("wss://"):
        return connect(f"{target}/", ssl=tls_context(), **kwargs)
    return connect(f"ws://{target}/", **kwargs)


async def roundtrip(ws, message, timeout: float = 5):
    await ws.send(message)
    return await asyncio.wait_for(ws.recv(), timeout)


def http_get(target: str, path: str) -> tuple[int, bytes]:
    """GET path: the status and the body (as sent: chunked bodies keep their chunk lines)."""
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
    return int(data.split(b" ", 2)[1]), data.partition(b"\r\n\r\n")[2]


def raw_get(target: str, path: str) -> int:
    return http_get(target, path)[0]


async def cmd_echo(target: str, messages: list[str]) -> dict:
    replies = []
    async with open_ws(target) as ws:
        for message in messages:
            replies.append(await roundtrip(ws, message))
            replies.append((await roundtrip(ws, message.encode())).decode(errors="replace") + " (binary)")
    return {"replies": replies}


async def cmd_close_code(target: str, command: list[str]) -> dict:
    async with open_ws(target) as ws:
        await roundtrip(ws, "before")
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        rc = await asyncio.wait_for(proc.wait(), 60)
        try:
            await asyncio.wait_for(ws.recv(), 30)
        except ConnectionClosed:
            pass
        except TimeoutError:
            return {"code": None, "error": "no close within 30 s", "command_rc": rc}
        return {"code": ws.close_code, "seconds": round(time.monotonic() - started, 2), "command_rc": rc}


async def cmd_spread(target: str, count: int, at_once: bool = False) -> dict:
    processes: dict[str, int] = {}
    echoed = 0
    async with contextlib.AsyncExitStack() as stack:
        if at_once:  # every handshake at the same time: several load balancer workers take some
            opened = await asyncio.gather(*(open_ws(target) for _ in range(count)))
            connections = [await stack.enter_async_context(ws) for ws in opened]
        else:
            connections = [await stack.enter_async_context(open_ws(target)) for _ in range(count)]
        for i, ws in enumerate(connections):  # all open at once: least-connections sees them all
            name = ws.response.headers.get("X-Wsfleet-Process", "?")
            processes[name] = processes.get(name, 0) + 1
            echoed += await roundtrip(ws, f"s{i}") == f"s{i}"
    return {"processes": processes, "echoed": echoed}


async def cmd_idle(target: str, seconds: float) -> dict:
    # No keepalive pings from this client either: the connection carries nothing while idle.
    async with open_ws(target, ping_interval=None) as ws:
        first = await roundtrip(ws, "first")
        await asyncio.sleep(seconds)
        try:
            second = await roundtrip(ws, "after idle")
        except ConnectionClosed:
            return {"ok": False, "code": ws.close_code, "first": first}
    return {"ok": first == "first" and second == "after idle", "code": None}


async def cmd_connects(target: str, count: int) -> dict:
    ok, errors = 0, []
    for i in range(count):
        try:
            async with open_ws(target) as ws:
                ok += await roundtrip(ws, f"c{i}") == f"c{i}"
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"ok": ok, "failed": count - ok, "errors": errors[:5]}


async def cmd_hold(target: str, directory: str) -> dict:
    folder = Path(directory)
    result: dict = {"ok": False}
    try:
        async with open_ws(target) as ws:
            result["before"] = await roundtrip(ws, "before")
            result["process"] = ws.response.headers.get("X-Wsfleet-Process")
            (folder / "ready").write_text("1")
            deadline = time.monotonic() + 600
            while not (folder / "go").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            result["after"] = await roundtrip(ws, "after")
            result["ok"] = result["before"] == "before" and result["after"] == "after"
    except ConnectionClosed as exc:
        result["code"] = exc.rcvd.code if exc.rcvd else 1006
    (folder / "result").write_text(json.dumps(result))
    return result


async def cmd_slow_headers(target: str, count: int, limit: float = 40) -> dict:
    """COUNT plain-TCP clients that never finish their request headers (one byte a second, as a
    slowloris does); while they are all held, a real client's echo and a /healthz. Reports, for each
    slow client, the seconds from its first byte until the load balancer cut it (None: still open
    after ``limit`` s)."""
    host, port = target.removeprefix("wss://").rsplit(":", 1)
    tls = tls_context() if target.startswith("wss://") else None

    async def slow_client() -> float | None:
        reader, writer = await asyncio.open_connection(host, int(port), ssl=tls, server_hostname=host if tls else None)
        started = time.monotonic()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            header = b"X-Slow: " + b"a" * 1000
            for byte in header:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    # Anything back (HAProxy's 408) or the end of the stream: the client was cut.
                    await asyncio.wait_for(reader.read(65536), 1)
                    return round(time.monotonic() - started, 2)
                except TimeoutError:
                    pass
                if time.monotonic() - started > limit:
                    return None
            return None
        except (ConnectionError, OSError):
            return round(time.monotonic() - started, 2)
        finally:
            writer.close()

    tasks = [asyncio.create_task(slow_client()) for _ in range(count)]
    await asyncio.sleep(2)  # every slow client is connected and sending
    served = {"echo": None, "health": None}
    try:
        served["echo"] = (await cmd_echo(target, ["while slow clients wait"]))["replies"][0]
    except Exception as exc:  # noqa: BLE001 - reported, the test asserts on it
        served["echo"] = f"{type(exc).__name__}: {exc}"
    served["health"] = await asyncio.to_thread(raw_get, target, "/healthz")
    served["slow_open_meanwhile"] = sum(not t.done() for t in tasks)
    cut_after = await asyncio.gather(*tasks)
    return {"cut_after": cut_after, **served}


def established(local_port: int, remote_port: int) -> dict | None:
    """The established TCP socket on this host from local_port to remote_port (any address), with
    its send queue in bytes, or None (/proc/net/tcp and tcp6: hex ports, state 01)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    return {"send_queue": int(queues.split(":")[0], 16)}
    return None


def app_connections(app: str) -> int:
    """Established connections the app accepted: on the Unix sockets in directory APP, or on the TCP
    ports FIRST-LAST."""
    if app.startswith("/"):
        lines = subprocess.run(["ss", "-Hx", "state", "established"], capture_output=True, text=True, check=True).stdout.splitlines()
        return sum(1 for line in lines if len(line.split()) > 3 and line.split()[3].startswith(app.rstrip("/") + "/"))
    first, last = map(int, app.split("-"))
    lines = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True, check=True).stdout.splitlines()
    return sum(1 for line in lines if first <= int(line.split()[2].rsplit(":", 1)[1]) <= last)


async def cmd_never_reads(target: str, limit: float, app: str, pushes: bool = False) -> dict:
    """One client that sends messages the app echoes back and never reads a byte (a small receive
    buffer, reading paused after one message): the echoes fill its window, then the load balancer's
    buffers and the app's, and its own sends stall. With ``pushes`` it stops sending as soon as the
    load balancer holds 1 MB it cannot send to it: what a client that stopped reading looks like to
    an app that pushes to it (the way to the app stays clear). Reports the seconds from that stall
    (or stop) until the load balancer's side of the connection was gone (None: still established
    after ``limit`` s), what the load balancer had queued to it, another client's echo meanwhile,
    the seconds from the cut until the app's side of it was closed too (None: still open ``limit``
    s later), and, behind HAProxy, the seconds from the stall until HAProxy's session of it was gone
    (None: still there after ``limit`` s)."""
    host, port = target.removeprefix("wss://").rsplit(":", 1)
    baseline = app_connections(app)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    client_port = sock.getsockname()[1]
    kwargs = {"ssl": tls_context(), "server_hostname": host} if target.startswith("wss://") else {}
    uri = f"{'wss' if kwargs else 'ws'}://{host}:{port}/"
    # No keepalive pings from this client: it would give up on the pongs it never reads.
    ws = await connect(uri, sock=sock, max_queue=1, ping_interval=None, open_timeout=5, **kwargs)
    message, sent, started = os.urandom(65536), 0, time.monotonic()
    try:
        while time.monotonic() - started < 30:  # on loopback the buffers fill within a second or two
            try:
                await asyncio.wait_for(ws.send(message), 3)
            except TimeoutError:
                break
            sent += len(message)
            if pushes and ((established(int(port), client_port) or {}).get("send_queue") or 0) >= 1 << 20:
                break
        stalled = time.monotonic()
        lb_side = established(int(port), client_port)
        result = {
            "sent": sent, "stalled_after": round(stalled - started, 2), "queued": lb_side and lb_side["send_queue"],
            "pushes": pushes, "cut_after": None,
        }
        try:
            result["echo"] = (await cmd_echo(target, ["while one client never reads"]))["replies"][0]
        except Exception as exc:  # noqa: BLE001 - reported, the test asserts on it
            result["echo"] = f"{type(exc).__name__}: {exc}"
        # Also HAProxy's session of it (its admin socket, where HAProxy runs), which can end before
        # its socket does or, when HAProxy polls neither side, not when the kernel drops the socket.
        result["session_gone_after"] = None
        watch_session = os.path.exists(HAPROXY_ADMIN)
        while time.monotonic() - stalled < limit and (result["cut_after"] is None or (watch_session and result["session_gone_after"] is None)):
            now = round(time.monotonic() - stalled, 2)
            if result["cut_after"] is None and established(int(port), client_port) is None:
                result["cut_after"] = now
            if watch_session and result["session_gone_after"] is None and not haproxy_session(client_port):
                result["session_gone_after"] = now
            await asyncio.sleep(0.25)
        result["app_closed_after"] = None
        if result["cut_after"] is not None:
            cut = stalled + result["cut_after"]
            while time.monotonic() - cut < limit:
                if app_connections(app) <= baseline:
                    result["app_closed_after"] = round(max(0.0, time.monotonic() - cut), 2)
                    break
                await asyncio.sleep(0.25)
        return result
    finally:
        ws.transport.abort()


def tls_cipher(target: str, cipher: str) -> dict:
    host, port = target.removeprefix("wss://").rsplit(":", 1)
    context = tls_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock, context.wrap_socket(sock, server_hostname=host) as tls:
            return {"ok": True, "cipher": tls.cipher()[0], "version": tls.version()}
    except (ssl.SSLError, OSError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def watch_health(target: str, seconds: float) -> list:
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        started = time.time()
        try:
            samples.append([round(started, 3), raw_get(target, "/healthz")])
        except OSError:  # refused, reset or no answer within 5 s
            samples.append([round(started, 3), None])
        time.sleep(0.2)
    return samples


HAPROXY_ADMIN = "/run/haproxy/admin.sock"


def haproxy_command(command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(HAPROXY_ADMIN)
        sock.sendall(command.encode() + b"\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode()


def haproxy_session(client_port: int) -> bool:
    """Whether HAProxy holds a session of the frontend wsfleet from the client port CLIENT_PORT."""
    return any("fe=wsfleet" in line and f":{client_port} " in line for line in haproxy_command("show sess").splitlines())


def haproxy_stat(backend: str) -> dict:
    """`show stat` of BACKEND's servers, keyed by address:port; e.g. hanafail counts the real
    connections that failed (observe layer4), chkfail the failed checks."""
    text = haproxy_command("show stat").removeprefix("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {row["addr"]: row for row in rows if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}


def watch_haproxy(seconds: float) -> list:
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        data = haproxy_command("show servers state wsfleet")
        states = {}
        for line in data.splitlines()[2:]:
            fields = line.split()
            if len(fields) > 5:  # be_id be_name srv_id srv_name srv_addr srv_op_state ...
                states[f"{fields[4]}:{fields[18]}" if len(fields) > 18 else fields[4]] = int(fields[5])
        samples.append([round(time.time(), 3), states])
        time.sleep(0.1)
    return samples


def main(argv: list[str]) -> int:
    command, target, *rest = argv
    if command == "echo":
        out = asyncio.run(cmd_echo(target, rest))
    elif command == "health":
        out = {"status": raw_get(target, "/healthz")}
    elif command == "spread":
        out = asyncio.run(cmd_spread(target, int(rest[0]), rest[1:] == ["--at-once"]))
    elif command == "idle":
        out = asyncio.run(cmd_idle(target, float(rest[0])))
    elif command == "connects":
        out = asyncio.run(cmd_connects(target, int(rest[0])))
    elif command == "hold":
        out = asyncio.run(cmd_hold(target, rest[0]))
    elif command == "get":
        status, body = http_get(target, rest[0])
        out = {"status": status, "body": body.decode(errors="replace")[:100000]}
    elif command == "tls-cipher":
        out = tls_cipher(target, rest[0])
    elif command == "watch-health":
        out = watch_health(target, float(rest[0]))
    elif command == "watch-haproxy":
        out = watch_haproxy(float(target))
    elif command == "haproxy-stat":
        out = haproxy_stat(target)
    elif command == "slow-headers":
        out = asyncio.run(cmd_slow_headers(target, int(rest[0])))
    elif command == "never-reads":
        out = asyncio.run(cmd_never_reads(target, float(rest[0]), rest[1], rest[2:] == ["pushes"]))
    elif command == "close-code":
        out = asyncio.run(cmd_close_code(target, rest[1:] if rest[:1] == ["--"] else rest))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
