"""The echo server: one process, one Unix socket or TCP port."""

from __future__ import annotations

import asyncio
import functools
import http
import itertools
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Sequence

from websockets.asyncio.server import Server, ServerConnection, serve, unix_serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from . import PROCESS_HEADER, __version__, metrics
from .keepalive import Keepalive
from .settings import Settings, SettingsError, parse

log = logging.getLogger("wsfleet_echo")

HEALTH_PATH = "/healthz"
_ids = itertools.count(1)


def _peer(connection: ServerConnection) -> str:
    """Who is on the other end: the proxies' X-Forwarded-For when there is one, else the socket peer.

    A chain of proxies may send the header more than once (HAProxy's ``option forwardfor`` adds a
    header of its own after the one nginx sent): every value counts, in order, as one list.
    """
    request = connection.request
    forwarded = request.headers.get_all("X-Forwarded-For") if request is not None else []
    if forwarded:
        return ", ".join(forwarded)
    address = connection.remote_address
    if isinstance(address, tuple) and address:
        return f"{address[0]}:{address[1]}"
    return "unix"


async def echo(connection: ServerConnection, keepalive: Keepalive | None = None, counts: metrics.NoMetrics = metrics.NoMetrics()) -> None:
    """Send every message back unchanged until the connection closes; keep it in the keepalive meanwhile."""
    conn_id = next(_ids)
    counts.opened()
    peer = _peer(connection)
    log.info("connection %d open from %s path %s", conn_id, peer, connection.request.path if connection.request else "?")
    if keepalive is not None:
        keepalive.add(connection)
    try:
        async for message in connection:
            await connection.send(message)
            counts.echoed(len(message))
    except ConnectionClosed:
        # A client that vanishes without a close frame, or a message over max_size (1009), ends here.
        # It is an ordinary event for a WebSocket server: logged below, never as a traceback.
        pass
    finally:
        if keepalive is not None:
            keepalive.discard(connection)
        code = connection.close_code if connection.close_code is not None else CloseCode.ABNORMAL_CLOSURE
        # When this side closed and the peer never answered (a keepalive ping timeout, a client gone
        # silent during shutdown), the code received is 1006: say what the server sent.
        sent = connection.protocol.close_sent
        told = f" (sent {sent.code} {sent.reason})" if sent is not None and sent.code != code else ""
        reason = f" {connection.close_reason}" if connection.close_reason else ""
        log.info("connection %d closed from %s code %d%s%s", conn_id, peer, code, reason, told)
        counts.closed(code)


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """Answer /healthz and plain HTTP before the WebSocket handshake."""
    path = request.path.split("?", 1)[0]
    if path == HEALTH_PATH:
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    if "websocket" not in request.headers.get("Upgrade", "").lower():
        response = connection.respond(
            http.HTTPStatus.UPGRADE_REQUIRED,
            f"This endpoint speaks WebSocket only; use a WebSocket client, or GET {HEALTH_PATH} for health.\n",
        )
        response.headers["Upgrade"] = "websocket"
        return response
    return None


def process_name() -> str:
    """Which process serves a connection: ``<hostname>/<supervisord process name, else pid-PID>``.

    The host name tells the processes of different app hosts apart behind one load balancer.
    """
    process = os.environ.get("SUPERVISOR_PROCESS_NAME") or f"pid-{os.getpid()}"
    return f"{socket.gethostname()}/{process}"


def process_response(connection: ServerConnection, request: Request, response: Response, counts: metrics.NoMetrics = metrics.NoMetrics()) -> None:
    """Name the serving process on accepted handshakes; log refused ones (e.g. 403) once, at INFO.

    The header lets load tests and the molecule tests see how the load balancer spread connections.
    """
    if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
        response.headers[PROCESS_HEADER] = process_name()
    elif response.status_code not in (http.HTTPStatus.SWITCHING_PROTOCOLS, http.HTTPStatus.OK):
        counts.refused(response.status_code)
        log.info(
            "handshake refused %d %s: %s %s origin %s",
            response.status_code,
            response.reason_phrase,
            _peer(connection),
            request.path,
            request.headers.get("Origin", "-"),
        )


def _serve_kwargs(settings: Settings, counts: metrics.NoMetrics) -> dict:
    kwargs: dict = {
        "max_size": settings.max_size,
        # Keepalive pings come from the process's one Keepalive task, not from one task per connection.
        "ping_interval": None,
        "ping_timeout": None,
        "close_timeout": settings.close_timeout,
        "compression": settings.compression,
        "process_request": process_request,
        "process_response": functools.partial(process_response, counts=counts),
        "backlog": settings.backlog,
        "server_header": f"wsfleet-echo/{__version__}",
    }
    if settings.origins:
        # Clients that send no Origin header are not browsers, so not a cross-site hijacking risk.
        kwargs["origins"] = [*settings.origins, None]
    return kwargs


def _remove_stale_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


async def _open(settings: Settings, keepalive: Keepalive | None, counts: metrics.NoMetrics) -> Server:
    kwargs = _serve_kwargs(settings, counts)
    handler = functools.partial(echo, keepalive=keepalive, counts=counts)
    if settings.unix_path is not None:
        _remove_stale_socket(settings.unix_path)
        server = await unix_serve(handler, settings.unix_path, **kwargs)
        os.chmod(settings.unix_path, settings.socket_mode)
        return server
    return await serve(handler, settings.host, settings.port, **kwargs)


async def run(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT (close code 1001) or SIGUSR1 (close code 1012, a restart)."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[CloseCode] = loop.create_future()

    def request_stop(code: CloseCode, signame: str) -> None:
        if not stop.done():
            log.info("%s received: closing connections with %d", signame, code)
            stop.set_result(code)

    handlers = {
        signal.SIGTERM: CloseCode.GOING_AWAY,
        signal.SIGINT: CloseCode.GOING_AWAY,
        signal.SIGUSR1: CloseCode.SERVICE_RESTART,
    }
    for signum, code in handlers.items():
        loop.add_signal_handler(signum, request_stop, code, signal.Signals(signum).name)

    counts = metrics.create(os.environ.get("SUPERVISOR_PROCESS_NAME") or f"pid-{os.getpid()}")
    keepalive = None
    if settings.ping_interval is not None:
        keepalive = Keepalive(settings.ping_interval, settings.ping_timeout, settings.close_timeout, counts)
    server = await _open(settings, keepalive, counts)
    pinging = loop.create_task(keepalive.run()) if keepalive is not None else None
    flushing = loop.create_task(counts.flush_forever())
    log.info(
        "wsfleet-echo %s listening on %s (loop %s, compression %s, max_size %d, backlog %d, pings %s, metrics %s)",
        __version__,
        settings.listen_description,
        type(loop).__module__.split(".")[0],
        settings.compression or "none",
        settings.max_size,
        settings.backlog,
        f"every {settings.ping_interval:g} s, timeout {settings.ping_timeout or 0:g} s" if keepalive is not None else "off",
        os.environ[metrics.MULTIPROC_ENV] if isinstance(counts, metrics.Metrics) else "off",
    )
    if ready is not None:
        ready.set()
    try:
        code = await stop
        if pinging is not None:  # no new pings to connections that are closing
            pinging.cancel()
        server.close(code=code)
        # Each connection waits at most close_timeout for the client's close frame, all at once. A
        # close frame that cannot even be written (a peer that stopped reading, its window and our
        # buffers full) makes websockets wait for room past close_timeout, for ever: after close_timeout
        # and 2 s more, what is left is aborted (its clients see 1006), so a restart always ends.
        try:
            async with asyncio.timeout(settings.close_timeout + 2):
                await asyncio.shield(server.wait_closed())
        except TimeoutError:
            stuck = list(server.all_connections)  # connections closing, too (server.connections: open ones)
            log.warning("%d connection(s) did not close within %g s: aborting them", len(stuck), settings.close_timeout + 2)
            for connection in stuck:
                connection.transport.abort()
            await server.wait_closed()
    finally:
        flushing.cancel()
        for signum in handlers:
            loop.remove_signal_handler(signum)
        if settings.unix_path is not None:
            _remove_stale_socket(settings.unix_path)
    log.info("stopped")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    # websockets logs every handshake and health check at INFO; our own lines replace them.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse(argv)
    except SettingsError as exc:
        print(f"wsfleet-echo: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if settings.uvloop:
        try:
            import uvloop
        except ImportError:
            print("wsfleet-echo: WSFLEET_UVLOOP is true but uvloop is not installed (install it, or set it to false)", file=sys.stderr)
            return 2
        uvloop.run(run(settings))
    else:
        asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
