"""Settings of the echo server: command-line options, each with an environment variable default.

The environment variables are the application contract that the ``wsfleet.fleet.supervisord`` role
fulfils; any application deployed by the collection reads the same ones (see the collection README).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ENV_PREFIX = "WSFLEET_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting has a value that is not allowed; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to run one process."""

    unix_path: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    socket_mode: int = 0o660
    max_size: int = 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
    origins: tuple[str, ...] = field(default_factory=tuple)
    backlog: int = 4096
    uvloop: bool = True
    compression: str | None = None
    log_level: str = "INFO"

    @property
    def listen_description(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        return f"tcp:{self.host}:{self.port}"


def process_number(process_name: str) -> int:
    """The number supervisord puts at the end of a process name: ``echo_03`` -> 3."""
    match = re.fullmatch(r".*_(\d+)", process_name)
    if match is None:
        raise SettingsError(
            f"SUPERVISOR_PROCESS_NAME={process_name!r} does not end in _NN; "
            "use process_name=%(program_name)s_%(process_num)02d in the supervisord program"
        )
    return int(match.group(1))


def _env_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean (allowed: true/false, yes/no, on/off, 1/0)")


def _number(name: str, value: str, *, kind: type = float, minimum: float = 0) -> float | int:
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a{'n integer' if kind is int else ' number'}") from None
    if number < minimum:
        raise SettingsError(f"{name}={value!r} must be >= {minimum}")
    return number


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; every option's default comes from its environment variable."""

    def default(name: str, fallback: str | None = None) -> str | None:
        return env.get(ENV_PREFIX + name, fallback)

    parser = argparse.ArgumentParser(
        prog="wsfleet-echo",
        description=(
            "WebSocket echo server. Listens on a Unix socket or a TCP port, echoes every message, "
            "answers GET /healthz, and closes connections with 1001 on SIGTERM/SIGINT "
            "(1012 on SIGUSR1, a restart)."
        ),
        epilog=(
            "Listen address, first match wins: --unix; --socket-dir (socket "
            "<dir>/$SUPERVISOR_PROCESS_NAME.sock); --port; --port-base (port base + the _NN number "
            "of $SUPERVISOR_PROCESS_NAME)."
        ),
    )
    listen = parser.add_argument_group("listen address")
    listen.add_argument("--unix", metavar="PATH", default=default("SOCKET"), help="Unix socket path [WSFLEET_SOCKET]")
    listen.add_argument(
        "--socket-dir", metavar="DIR", default=default("SOCKET_DIR"), help="directory of per-process sockets [WSFLEET_SOCKET_DIR]"
    )
    listen.add_argument(
        "--socket-mode", metavar="OCTAL", default=default("SOCKET_MODE", "0660"), help="Unix socket mode [WSFLEET_SOCKET_MODE] (0660)"
    )
    listen.add_argument("--host", default=default("HOST", "127.0.0.1"), help="TCP bind address [WSFLEET_HOST] (127.0.0.1)")
    listen.add_argument("--port", default=default("PORT"), help="TCP port [WSFLEET_PORT]")
    listen.add_argument("--port-base", default=default("PORT_BASE"), help="first port of a numprocs program [WSFLEET_PORT_BASE]")

    conn = parser.add_argument_group("connections")
    conn.add_argument(
        "--max-size", default=default("MAX_SIZE", "1048576"), help="largest message in bytes; larger closes with 1009 [WSFLEET_MAX_SIZE] (1048576)"
    )
    conn.add_argument(
        "--ping-interval", default=default("PING_INTERVAL", "20"), help="seconds between keepalive pings, 0 disables [WSFLEET_PING_INTERVAL] (20)"
    )
    conn.add_argument(
        "--ping-timeout",
        default=default("PING_TIMEOUT", "20"),
        help="seconds from a ping being due to its pong, else close 1011; 0 never closes [WSFLEET_PING_TIMEOUT] (20)",
    )
    conn.add_argument("--close-timeout", default=default("CLOSE_TIMEOUT", "10"), help="seconds to wait for the closing handshake [WSFLEET_CLOSE_TIMEOUT] (10)")
    conn.add_argument("--origins", default=default("ORIGINS", ""), help="comma-separated allowed Origin values; empty allows any [WSFLEET_ORIGINS]")
    conn.add_argument("--backlog", default=default("BACKLOG", "4096"), help="listen backlog [WSFLEET_BACKLOG] (4096)")
    conn.add_argument("--compression", default=default("COMPRESSION", "none"), help="permessage-deflate: deflate or none [WSFLEET_COMPRESSION] (none)")

    run = parser.add_argument_group("runtime")
    run.add_argument("--uvloop", default=default("UVLOOP", "true"), help="run on uvloop: true or false [WSFLEET_UVLOOP] (true)")
    run.add_argument("--log-level", default=default("LOG_LEVEL", "INFO"), help="DEBUG, INFO, WARNING or ERROR [WSFLEET_LOG_LEVEL] (INFO)")
    return parser


def _optional_seconds(name: str, value: str) -> float | None:
    seconds = _number(name, value)
    return None if seconds == 0 else seconds


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the command line and the environment; raise SettingsError when invalid."""
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)

    unix_path: str | None = None
    port: int | None = None
    if args.unix:
        unix_path = args.unix
    elif args.socket_dir:
        name = env.get("SUPERVISOR_PROCESS_NAME")
        if not name:
            raise SettingsError("WSFLEET_SOCKET_DIR is set but SUPERVISOR_PROCESS_NAME is not; set WSFLEET_SOCKET instead")
        process_number(name)  # same naming rule as TCP, so a bad process_name fails the same way
        unix_path = os.path.join(args.socket_dir, f"{name}.sock")
    elif args.port:
        port = int(_number("WSFLEET_PORT", args.port, kind=int, minimum=1))
    elif args.port_base:
        name = env.get("SUPERVISOR_PROCESS_NAME")
        if not name:
            raise SettingsError("WSFLEET_PORT_BASE is set but SUPERVISOR_PROCESS_NAME is not; set WSFLEET_PORT instead")
        port = int(_number("WSFLEET_PORT_BASE", args.port_base, kind=int, minimum=1)) + process_number(name)
    else:
        raise SettingsError("no listen address: set WSFLEET_SOCKET, WSFLEET_SOCKET_DIR, WSFLEET_PORT or WSFLEET_PORT_BASE")
    if port is not None and port > 65535:
        raise SettingsError(f"TCP port {port} is above 65535 (WSFLEET_PORT / WSFLEET_PORT_BASE)")

    try:
        socket_mode = int(args.socket_mode, 8)
    except ValueError:
        raise SettingsError(f"WSFLEET_SOCKET_MODE={args.socket_mode!r} is not an octal mode such as 0660") from None

    compression = args.compression.strip().lower()
    if compression not in ("deflate", "none"):
        raise SettingsError(f"WSFLEET_COMPRESSION={args.compression!r} is not allowed (allowed: deflate, none)")

    log_level = args.log_level.strip().upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"WSFLEET_LOG_LEVEL={args.log_level!r} is not allowed (allowed: DEBUG, INFO, WARNING, ERROR)")

    close_timeout = float(_number("WSFLEET_CLOSE_TIMEOUT", args.close_timeout))
    return Settings(
        unix_path=unix_path,
        host=args.host,
        port=port,
        socket_mode=socket_mode,
        max_size=int(_number("WSFLEET_MAX_SIZE", args.max_size, kind=int, minimum=1)),
        ping_interval=_optional_seconds("WSFLEET_PING_INTERVAL", args.ping_interval),
        ping_timeout=_optional_seconds("WSFLEET_PING_TIMEOUT", args.ping_timeout),
        close_timeout=close_timeout,
        origins=tuple(o.strip() for o in args.origins.split(",") if o.strip()),
        backlog=int(_number("WSFLEET_BACKLOG", args.backlog, kind=int, minimum=1)),
        uvloop=_env_bool("WSFLEET_UVLOOP", args.uvloop),
        compression="deflate" if compression == "deflate" else None,
        log_level=log_level,
    )
