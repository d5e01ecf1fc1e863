"""A user's app as the wsfleet contract sees it: listen where supervisord says, /healthz, SIGTERM -> 1001."""

import argparse
import asyncio
import http
import os
import re
import signal

from websockets.asyncio.server import serve, unix_serve


async def reply(websocket, greeting):
    try:
        async for message in websocket:
            text = message if isinstance(message, str) else message.decode()
            await websocket.send(f"{greeting}:{text}" if isinstance(message, str) else f"{greeting}:{text}".encode())
    except Exception:  # noqa: BLE001 - a vanished client is not an error here
        pass


def health(connection, request):
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


async def run(greeting):
    name = os.environ["SUPERVISOR_PROCESS_NAME"]
    number = int(re.fullmatch(r".*_(\d+)", name).group(1))
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    handler = lambda ws: reply(ws, greeting)  # noqa: E731
    if os.environ.get("WSFLEET_SOCKET_DIR"):
        path = os.path.join(os.environ["WSFLEET_SOCKET_DIR"], f"{name}.sock")
        if os.path.exists(path):
            os.unlink(path)
        server = await unix_serve(handler, path, process_request=health)
        os.chmod(path, 0o660)
    else:
        port = int(os.environ["WSFLEET_PORT_BASE"]) + number
        server = await serve(handler, os.environ.get("WSFLEET_HOST", "127.0.0.1"), port, process_request=health)
    async with server:
        await stop
    # Python 3.13's asyncio removes the socket itself when the server closes (Debian 13).
    if os.environ.get("WSFLEET_SOCKET_DIR") and os.path.exists(path):
        os.unlink(path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--greeting", default="tiny")
    asyncio.run(run(parser.parse_args().greeting))
