"""Metrics: real echo processes write them (prometheus_client multiprocess mode), the real exporter
serves them, and the tests scrape it over HTTP and parse what it says with prometheus_client's parser."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, http_get
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample the exporter serves: {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def multiproc(tmp_path: Path) -> Path:
    directory = tmp_path / "metrics"
    directory.mkdir()
    return directory


@pytest.fixture
def exporter(multiproc: Path, tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSFLEET_")}
    env.update(PROMETHEUS_MULTIPROC_DIR=str(multiproc), WSFLEET_METRICS_PORT=str(port))
    log = (tmp_path / "exporter.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "wsfleet_echo.exporter"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            scrape(port)
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "exporter.log").read_text()
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)


def metered(start_server, multiproc: Path, name: str, kind: str = "unix", **settings):
    return start_server(kind, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "SUPERVISOR_PROCESS_NAME": name}, **settings)


def test_open_connections_closes_by_code_and_messages_per_process(start_server, multiproc, exporter):
    a = metered(start_server, multiproc, "echo_00")
    b = metered(start_server, multiproc, "echo_01", kind="tcp")
    stack = contextlib.ExitStack()
    held = [stack.enter_context(server.connect()) for server in (a, a, a, b, b)]
    for i, ws in enumerate(held):
        ws.send(f"m{i}" * 10)
        assert ws.recv(timeout=5) == f"m{i}" * 10
    time.sleep(1.5)  # messages and bytes reach the shared counters once a second
    samples = scrape(exporter)
    assert value(samples, "wsfleet_echo_connections_open", process="echo_00") == 3
    assert value(samples, "wsfleet_echo_connections_open", process="echo_01") == 2
    assert value(samples, "wsfleet_echo_connections_opened_total", process="echo_00") == 3
    assert value(samples, "wsfleet_echo_messages_received_total", process="echo_00") == 3
    assert value(samples, "wsfleet_echo_sent_bytes_total", process="echo_01") == 2 * 20  # "m3" * 10, "m4" * 10
    held[0].close()  # 1000
    held[3].close(code=4000)
    assert http_get(a, "/")[0] == 426  # plain HTTP: refused
    deadline = time.monotonic() + 5
    while value(samples := scrape(exporter), "wsfleet_echo_connections_open", process="echo_01") != 1:
        assert time.monotonic() < deadline, samples
        time.sleep(0.1)
    assert value(samples, "wsfleet_echo_connections_open", process="echo_00") == 2
    assert value(samples, "wsfleet_echo_connections_closed_total", process="echo_00", code="1000") == 1
    assert value(samples, "wsfleet_echo_connections_closed_total", process="echo_01", code="4000") == 1
    assert value(samples, "wsfleet_echo_handshakes_refused_total", process="echo_00", status="426") == 1
    stack.close()


def test_a_killed_process_leaves_the_open_count_and_its_restart_shows_in_the_start_time(start_server, multiproc, exporter):
    a = metered(start_server, multiproc, "echo_00")
    stack = contextlib.ExitStack()
    clients = [stack.enter_context(a.connect()) for _ in range(4)]
    samples = scrape(exporter)
    assert value(samples, "wsfleet_echo_connections_open", process="echo_00") == 4
    started = value(samples, "wsfleet_echo_process_start_time_seconds", process="echo_00")
    assert started is not None and abs(started - time.time()) < 30
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)
    for ws in clients:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1006
    stack.close()
    # Nobody closed those connections in the dead process's files: the exporter forgets its gauges.
    assert value(scrape(exporter), "wsfleet_echo_connections_open", process="echo_00") in (None, 0)
    time.sleep(0.1)
    again = metered(start_server, multiproc, "echo_00")
    with again.connect() as ws:
        samples = scrape(exporter)
        assert value(samples, "wsfleet_echo_connections_open", process="echo_00") == 1
        assert value(samples, "wsfleet_echo_process_start_time_seconds", process="echo_00") > started
        assert value(samples, "wsfleet_echo_connections_opened_total", process="echo_00") == 5  # counters add up over restarts


def test_keepalive_pings_and_their_timeouts_are_counted(start_server, multiproc, exporter):
    a = metered(start_server, multiproc, "echo_00", ping_interval=0.5, ping_timeout=0.5)
    with a.connect() as ws:  # the sync client answers pings in its background thread
        time.sleep(2.5)
        assert value(scrape(exporter), "wsfleet_echo_pings_sent_total", process="echo_00") >= 1
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"
    assert value(scrape(exporter), "wsfleet_echo_ping_timeouts_total", process="echo_00") == 0


def test_without_the_directory_nothing_is_written_and_the_exporter_refuses_to_start(start_server, tmp_path):
    server = start_server("unix")
    with server.connect() as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    assert "metrics off" in server.log()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run([sys.executable, "-m", "wsfleet_echo.exporter"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "PROMETHEUS_MULTIPROC_DIR must name an existing directory" in result.stderr


def test_a_missing_directory_costs_the_metrics_not_the_service(start_server, tmp_path):
    """/run emptied by a reboot before tmpfiles ran, say: the process serves, without metrics, and says why."""
    missing = tmp_path / "gone"
    server = start_server("unix", extra_env={"PROMETHEUS_MULTIPROC_DIR": str(missing), "SUPERVISOR_PROCESS_NAME": "echo_00"})
    with server.connect() as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    assert "unusable" in server.log() and str(missing) in server.log()
    assert not missing.exists()
