"""The echo server, run as a real subprocess and driven by the real websockets client."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

import pytest
from conftest import EchoServer, free_port, http_get
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus


def test_echoes_text_and_binary_unchanged(server: EchoServer) -> None:
    with server.connect() as ws:
        for message in ["Hello!", "", "héllo wörld ✓" * 100, b"\x00\x01\xff" * 1000, b""]:
            ws.send(message)
            assert ws.recv(timeout=5) == message


def test_handshake_names_the_serving_process(server: EchoServer) -> None:
    with server.connect() as ws:
        assert ws.response.headers["X-Wsfleet-Process"] == f"{socket.gethostname()}/pid-{server.process.pid}"


def test_many_messages_keep_order(server: EchoServer) -> None:
    with server.connect() as ws:
        for i in range(200):
            ws.send(f"m{i}")
        assert [ws.recv(timeout=5) for _ in range(200)] == [f"m{i}" for i in range(200)]


def test_healthz_answers_200(server: EchoServer) -> None:
    assert http_get(server, "/healthz") == (200, "OK\n")
    assert http_get(server, "/healthz?probe=lb")[0] == 200


def test_plain_http_gets_426_with_hint(server: EchoServer) -> None:
    status, body = http_get(server, "/")
    assert status == 426
    assert "WebSocket" in body and "/healthz" in body


def test_health_checks_do_not_flood_the_log(start_server) -> None:
    server = start_server("unix")
    for _ in range(5):
        http_get(server, "/healthz")
    with server.connect() as ws:
        ws.send("x")
        ws.recv(timeout=5)
    server.stop()
    log = server.log()
    assert "HTTP response sent" not in log
    assert len(re.findall(r"connection \d+ open", log)) == 1
    assert len(re.findall(r"connection \d+ closed .* code 1000", log)) == 1


@pytest.mark.parametrize("kind", ["unix", "tcp"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 1001), (signal.SIGINT, 1001), (signal.SIGUSR1, 1012)])
def test_signal_closes_every_connection_and_exits_0(start_server, kind: str, sig: int, code: int) -> None:
    server = start_server(kind, close_timeout=3)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(server.connect()) for _ in range(5)]
        for ws in clients:
            ws.send("before")
            assert ws.recv(timeout=5) == "before"
        started = time.monotonic()
        server.process.send_signal(sig)
        for ws in clients:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
            assert ws.close_code == code
        assert server.process.wait(timeout=10) == 0
        assert time.monotonic() - started < 3 + 1
    if server.unix_path:
        assert not os.path.exists(server.unix_path), "socket file left behind"


def raw_websocket(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket client made of a bare TCP socket: it answers nothing unless a test makes it.

    The handshake's response is read byte by byte up to its blank line, so no frame is consumed.
    """
    sock = socket.socket()
    if rcvbuf is not None:  # before connect(), so the TCP window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"connection closed during the handshake: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked frame from the server: (opcode, payload)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed mid-frame"
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", exactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", exactly(8))[0]
    return first & 0x0F, exactly(length)


def send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """One final client frame, masked with a zero key (legal, and the payload needs no XOR)."""
    if len(payload) < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload))
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, len(payload))
    sock.sendall(header + b"\0\0\0\0" + payload)


def answer_pings_until(server: EchoServer, logged: str, within: float) -> None:
    """With a client that answers pings connected, wait until the server logs `logged`; the client
    must still echo three 0.5 s ping intervals later."""
    with server.connect() as answering:  # websockets' client answers pings by itself
        deadline = time.monotonic() + within
        while logged not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        answering.send("still here")
        assert answering.recv(timeout=5) == "still here"


PING, PONG, BINARY = 0x9, 0xA, 0x2


def test_sigterm_with_a_client_that_never_answers_the_close_exits_within_close_timeout(start_server) -> None:
    server = start_server("tcp", close_timeout=2)
    # A raw TCP client that completes the handshake and then never reads or answers a close frame.
    sock = raw_websocket(server.port)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    elapsed = time.monotonic() - started
    sock.close()
    assert elapsed < 2 + 1.5, f"took {elapsed:.1f} s with close_timeout 2"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_client_whose_buffers_are_full_does_not_hold_up_the_exit(start_server, sig: int) -> None:
    """A client that stopped reading while the server sent to it: the close frame cannot even be
    written, and websockets' close() waits for room to write it past close_timeout. The process
    aborts such connections and exits within close_timeout + 2 s (before: it never exited, and a
    rolling restart, which sends SIGUSR1 and waits, waited for ever; found behind HAProxy)."""
    server = start_server("tcp", close_timeout=2)
    sock = raw_websocket(server.port, rcvbuf=4096)
    sock.settimeout(0.5)
    sent = 0
    with contextlib.suppress(TimeoutError):
        while sent < 64 * 2**20:  # the echoes fill the client's window, then the server's buffers
            send_frame(sock, BINARY, b"x" * 65536)
            sent += 65536
    assert sent < 64 * 2**20, "the server never stopped taking messages"
    started = time.monotonic()
    server.process.send_signal(sig)
    assert server.process.wait(timeout=15) == 0
    elapsed = time.monotonic() - started
    sock.close()
    assert elapsed < 2 + 2 + 1, f"took {elapsed:.1f} s with close_timeout 2"
    assert "did not close within" in server.log()


def test_keepalive_pings_idle_clients_and_closes_those_that_never_answer(start_server) -> None:
    """An idle client that answers pings stays; one that never answers is closed with 1011."""
    server = start_server("tcp", ping_interval=0.5, ping_timeout=0.5, close_timeout=1)
    silent = raw_websocket(server.port)
    assert read_frame(silent)[0] == PING  # the server pings an idle connection within 0.5 s
    answer_pings_until(server, "sent 1011", within=10)
    silent.close()
    server.stop()
    log = server.log()
    # No pong within 0.5 s: the server closes with 1011, waits close_timeout for an answer, then drops it.
    assert "pings every 0.5 s, timeout 0.5 s, metrics off)" in log, log
    assert len(re.findall(r"closed from 127\.0\.0\.1:\d+ code 1006 \(sent 1011 keepalive ping timeout\)", log)) == 1, log
    assert len(re.findall(r"closed from 127\.0\.0\.1:\d+ code 1000$", log, re.MULTILINE)) == 1, log
    assert "Traceback" not in log, log


def test_keepalive_spreads_pings_over_the_interval_and_repeats_them(start_server) -> None:
    """Every connection gets a ping every interval, its first within two; they are not all pinged at once."""
    server = start_server("tcp", ping_interval=1, ping_timeout=1)
    clients = {raw_websocket(server.port): time.monotonic() for _ in range(30)}
    pings: dict[socket.socket, list[float]] = {sock: [] for sock in clients}
    with selectors.DefaultSelector() as selector:
        for sock in clients:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 4.6
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                opcode, payload = read_frame(key.fileobj)
                assert opcode == PING, opcode
                pings[key.fileobj].append(time.monotonic())
                send_frame(key.fileobj, PONG, payload)
    for sock, opened in clients.items():
        times = [opened, *pings[sock]]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # The first ping once a full interval has passed (the test below checks that strictly), so within
        # two; then one every interval.
        assert len(gaps) >= 3 and gaps[0] < 2 + 0.3 and max(gaps[1:]) < 1 + 0.3, gaps
        assert min(gaps[1:]) > 1 - 0.3, gaps
        sock.close()
    # Spread: the first pings of 30 connections opened within a moment fall in many 50 ms windows.
    windows = {int(times[0] / 0.05) for times in pings.values()}
    assert len(windows) >= 8, sorted(windows)
    server.stop()
    assert "sent 1011" not in server.log() and "Traceback" not in server.log(), server.log()


def test_keepalive_first_ping_comes_a_full_interval_after_opening(start_server) -> None:
    """As websockets' own keepalive: no connection is pinged before one interval has passed since it
    opened; each gets its first ping within two intervals, and those first pings are still spread."""
    interval = 3
    server = start_server("tcp", ping_interval=interval, ping_timeout=interval)
    clients: dict[socket.socket, float] = {}
    for _ in range(30):
        opening = time.monotonic()  # before the handshake, so before the server sees the connection open
        clients[raw_websocket(server.port)] = opening
    first_ping: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        for sock in clients:
            selector.register(sock, selectors.EVENT_READ)
        deadline = max(clients.values()) + 2 * interval + 0.5
        while len(first_ping) < len(clients) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                opcode, payload = read_frame(key.fileobj)
                assert opcode == PING, opcode
                first_ping.setdefault(key.fileobj, time.monotonic())
                send_frame(key.fileobj, PONG, payload)
    after = sorted(round(first_ping[sock] - opening, 3) for sock, opening in clients.items() if sock in first_ping)
    for sock in clients:
        sock.close()
    early = [seconds for seconds in after if seconds < interval]
    assert not early, f"{len(early)} of {len(clients)} connections pinged before {interval} s: {early}"
    assert len(after) == len(clients), f"only {len(after)} of {len(clients)} pinged within 2 intervals: {after}"
    assert after[-1] < 2 * interval + 0.5, after
    # Spread: the first pings of 30 connections opened within a moment fall in many interval/20 windows.
    windows = {int(pinged / (interval / 20)) for pinged in first_ping.values()}
    assert len(windows) >= 8, sorted(windows)
    server.stop()
    assert "sent 1011" not in server.log() and "Traceback" not in server.log(), server.log()


def test_keepalive_closes_a_client_that_stops_reading_without_holding_up_the_others(start_server) -> None:
    """A client that reads nothing while the server has echoes for it: its ping cannot even be written.

    It is closed within ping_timeout of the ping being due, plus close_timeout and one second for
    the close frame that cannot be written either; a client that answers keeps its pings meanwhile.
    """
    server = start_server("tcp", ping_interval=0.5, ping_timeout=0.5, close_timeout=1)
    stuck = raw_websocket(server.port, rcvbuf=4096)
    stuck.settimeout(2)
    with contextlib.suppress(TimeoutError):  # the server stops reading once its echoes back up
        for _ in range(16):
            send_frame(stuck, BINARY, b"x" * 512 * 1024)
    port = stuck.getsockname()[1]
    answer_pings_until(server, f"{port} code 1006 (sent 1011", within=0.5 + 0.5 + 1 + 1 + 3)
    stuck.close()
    server.stop()
    log = server.log()
    assert f"closed from 127.0.0.1:{port} code 1006 (sent 1011 keepalive ping timeout)" in log, log
    assert len(re.findall(r"closed from 127\.0\.0\.1:\d+ code 1000$", log, re.MULTILINE)) == 1, log
    assert "Traceback" not in log and "ERROR" not in log, log


def test_oversized_message_closes_with_1009(start_server) -> None:
    server = start_server("unix", max_size=1024)
    with server.connect(max_size=None) as ws:
        ws.send("a" * 1024)
        assert ws.recv(timeout=5) == "a" * 1024
        ws.send("a" * 1025)
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=5)
        assert ws.close_code == 1009


def test_origin_allow_list(start_server) -> None:
    server = start_server("tcp", origins="https://good.example, https://other.example")
    with server.connect(origin="https://good.example") as ws:
        ws.send("ok")
        assert ws.recv(timeout=5) == "ok"
    with pytest.raises(InvalidStatus) as refused:
        server.connect(origin="https://evil.example")
    assert refused.value.response.status_code == 403
    # Non-browser clients send no Origin header and are not a cross-site hijacking vector.
    with server.connect() as ws:
        ws.send("no origin")
        assert ws.recv(timeout=5) == "no origin"
    server.stop()
    assert "handshake refused 403" in server.log()


def test_x_forwarded_for_from_a_chain_of_proxies_is_logged_whole(start_server) -> None:
    """nginx in front of HAProxy: the app gets X-Forwarded-For twice (HAProxy adds its own header)."""
    server = start_server("tcp")
    chain = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.2")]
    with server.connect(additional_headers=chain) as ws:
        ws.send("through two proxies")
        assert ws.recv(timeout=5) == "through two proxies"
    server.stop()
    log = server.log()
    assert "open from 203.0.113.7, 198.51.100.2 path /" in log, log
    assert "Traceback" not in log and "ERROR" not in log, log


def test_client_vanishing_without_close_frame_leaves_no_traceback(start_server) -> None:
    server = start_server("unix")
    ws = server.connect().__enter__()  # left without close(): its socket is reset below
    ws.send("hi")
    assert ws.recv(timeout=5) == "hi"
    # Drop the TCP/Unix connection without a close frame; SO_LINGER 0 makes it an abrupt reset.
    ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.socket.close()
    deadline = time.monotonic() + 5
    while "code 1006" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    log = server.log()
    assert re.search(r"connection \d+ closed from unix code 1006", log), log
    assert "Traceback" not in log and "ERROR" not in log, log


def test_unix_socket_mode_and_backlog(start_server) -> None:
    server = start_server("unix", backlog=1000, socket_mode="0660")
    assert stat.S_IMODE(os.stat(server.unix_path).st_mode) == 0o660
    # ss shows a listening socket's backlog in its Send-Q column.
    out = subprocess.run(["ss", "-xlnH", "src", server.unix_path], capture_output=True, text=True, check=True).stdout
    assert out.split()[3] == "1000", out


def test_uvloop_on_by_default_and_off_by_setting(start_server) -> None:
    on = start_server("unix")
    off = start_server("unix", uvloop="false")
    on.stop()
    off.stop()
    assert "loop uvloop" in on.log()
    assert "pings every 20 s, timeout 20 s, metrics off)" in on.log()  # the defaults
    assert "loop asyncio" in off.log()


def test_compression_is_a_setting(start_server) -> None:
    plain = start_server("tcp")
    deflate = start_server("tcp", compression="deflate")
    with plain.connect() as ws:  # the client offers permessage-deflate by default
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    with deflate.connect() as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        ws.send("zip" * 1000)
        assert ws.recv(timeout=5) == "zip" * 1000


def test_supervisor_process_name_picks_socket_and_port(start_server, tmp_path) -> None:
    by_dir = start_server(
        listen_env={"WSFLEET_SOCKET_DIR": str(tmp_path), "SUPERVISOR_PROCESS_NAME": "echo_03"},
        unix_path=str(tmp_path / "echo_03.sock"),
    )
    with by_dir.connect() as ws:
        assert ws.response.headers["X-Wsfleet-Process"] == f"{socket.gethostname()}/echo_03"
        ws.send("dir")
        assert ws.recv(timeout=5) == "dir"

    base = free_port() - 2
    by_base = start_server(
        listen_env={"WSFLEET_PORT_BASE": str(base), "SUPERVISOR_PROCESS_NAME": "echo_02"}, port=base + 2
    )
    with by_base.connect() as ws:
        ws.send("base")
        assert ws.recv(timeout=5) == "base"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no listen address"),
        ({"WSFLEET_PORT": "http"}, "WSFLEET_PORT='http' is not an integer"),
        ({"WSFLEET_PORT": "70000"}, "above 65535"),
        ({"WSFLEET_SOCKET_DIR": "/tmp"}, "SUPERVISOR_PROCESS_NAME is not"),
        ({"WSFLEET_PORT_BASE": "8000", "SUPERVISOR_PROCESS_NAME": "echo"}, "does not end in _NN"),
        ({"WSFLEET_PORT": "8000", "WSFLEET_COMPRESSION": "gzip"}, "WSFLEET_COMPRESSION='gzip' is not allowed"),
        ({"WSFLEET_PORT": "8000", "WSFLEET_UVLOOP": "maybe"}, "WSFLEET_UVLOOP='maybe' is not a boolean"),
        ({"WSFLEET_PORT": "8000", "WSFLEET_MAX_SIZE": "-1"}, "WSFLEET_MAX_SIZE='-1' must be >= 1"),
        ({"WSFLEET_SOCKET": "/tmp/x.sock", "WSFLEET_SOCKET_MODE": "rw"}, "WSFLEET_SOCKET_MODE='rw'"),
    ],
)
def test_bad_settings_exit_2_naming_the_variable(env: dict[str, str], message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WSFLEET_") and k != "SUPERVISOR_PROCESS_NAME"}
    result = subprocess.run(
        [sys.executable, "-m", "wsfleet_echo"], env={**clean, **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
