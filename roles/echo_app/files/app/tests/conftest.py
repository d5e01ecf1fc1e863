"""Start the real echo server as a subprocess on a temporary Unix socket or a free TCP port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect, unix_connect

START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(server: "EchoServer", path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """A plain HTTP/1.1 GET over the server's socket; returns (status, body)."""
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if server.unix_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(server.unix_path)
    else:
        sock = socket.create_connection(("127.0.0.1", server.port))
    with sock:
        sock.settimeout(5)
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode()


@dataclass
class EchoServer:
    process: subprocess.Popen
    log_path: Path
    unix_path: str | None = None
    port: int | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/" if self.port else "ws://localhost/"

    def connect(self, **kwargs) -> ClientConnection:
        kwargs.setdefault("open_timeout", 5)
        if self.unix_path:
            return unix_connect(self.unix_path, self.url, **kwargs)
        return connect(self.url, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def _wait_ready(server: EchoServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if http_get(server, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready within {START_TIMEOUT} s:\n{server.log()}")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Factory: start_server(kind, **settings) -> a ready EchoServer; settings become WSFLEET_<NAME>."""
    servers: list[EchoServer] = []

    def start(
        kind: str = "unix",
        *,
        listen_env: dict[str, str] | None = None,
        unix_path: str | None = None,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        **settings: object,
    ) -> EchoServer:
        """listen_env replaces the default WSFLEET_SOCKET/WSFLEET_PORT; then say where it listens.
        extra_env: more environment (PROMETHEUS_MULTIPROC_DIR, SUPERVISOR_PROCESS_NAME)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSFLEET_") and k not in ("SUPERVISOR_PROCESS_NAME", "PROMETHEUS_MULTIPROC_DIR")}
        env.update(extra_env or {})
        env.update({f"WSFLEET_{k.upper()}": str(v) for k, v in settings.items()})
        if listen_env is not None:
            env.update(listen_env)
        elif kind == "unix":
            unix_path = str(tmp_path / f"echo_{len(servers):02d}.sock")
            env["WSFLEET_SOCKET"] = unix_path
        else:
            port = free_port()
            env["WSFLEET_PORT"] = str(port)
        log_path = tmp_path / f"server{len(servers)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "wsfleet_echo"], env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        server = EchoServer(process, log_path, unix_path, port)
        servers.append(server)
        _wait_ready(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.fixture(params=["unix", "tcp"])
def server(request: pytest.FixtureRequest, start_server) -> EchoServer:
    """A running server with default settings, once on a Unix socket and once on TCP."""
    return start_server(request.param)
