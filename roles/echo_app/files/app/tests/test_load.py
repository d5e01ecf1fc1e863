"""The load client (wsfleet-load), run as a real subprocess against real echo server subprocesses."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import EchoServer, free_port

from wsfleet_echo import load
from wsfleet_echo.load_stats import Histogram, WorkerStats
from wsfleet_echo import PROCESS_HEADER

RUN_TIMEOUT = 60


def start_load(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "wsfleet_echo.load", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for the client; its output as text, carriage returns kept (the progress line uses them)."""
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    return process.returncode, stdout.decode(), stderr.decode()


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, stdout, stderr = finish(start_load("--json", *args))
    assert stdout, stderr
    return code, json.loads(stdout)


def process_header(server: EchoServer) -> str:
    """The X-Wsfleet-Process value a server puts on its handshakes (one probe connection)."""
    with server.connect() as ws:
        return ws.response.headers[PROCESS_HEADER]


def opened(server: EchoServer) -> int:
    return len(re.findall(r"connection \d+ open", server.log()))


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_ping_pong_over_two_workers_and_two_processes(start_server) -> None:
    servers = [start_server("unix"), start_server("unix")]
    names = [process_header(s) for s in servers]
    code, stdout, stderr = finish(
        start_load(
            "--json",
            "--progress",
            "--unix",
            servers[0].unix_path,
            "--unix",
            servers[1].unix_path,
            "-c",
            "50",
            "-d",
            "2",
            "--workers",
            "2",
        )
    )
    report = json.loads(stdout)
    assert code == 0 and report["ok"] and report["exit_code"] == 0, stdout + stderr
    assert report["handshakes"] == {"ok": 50, "failed": 0, "failed_by_reason": {}}
    assert report["closes"] == {"by_code": {}, "clean": 0, "abnormal": 0, "other": 0}
    assert report["errors"] == {}
    assert report["spread"] == {names[0]: 25, names[1]: 25}
    assert report["open_at_end"] == 50
    assert report["workers"] == {"count": 2, "reported": 2, "lost": {}}
    assert report["config"]["mode"] == "ping-pong" and report["config"]["loop"] == "uvloop"
    assert report["window_s"] == 2
    messages, latency = report["messages"], report["latency_ms"]
    assert 0 < messages["round_trips"] <= messages["total_round_trips"]
    assert messages["per_s"] == pytest.approx(messages["round_trips"] / 2, rel=0.01)
    assert latency["samples"] == messages["round_trips"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert "\r" in stderr and "handshakes 50 ok 0 failed" in stderr


def test_rate_mode_over_tcp_sends_at_the_planned_rate(start_server) -> None:
    server = start_server("tcp")
    code, report = run_json(server.url, "-c", "10", "--rate", "20", "-d", "1.5", "--workers", "1", "--no-uvloop")
    assert code == 0, report
    assert report["config"]["mode"] == "rate" and report["config"]["loop"] == "asyncio"
    # 10 connections x 20 msg/s x 1.5 s, give or take the messages at the window's edges
    assert report["messages"]["round_trips"] == pytest.approx(300, abs=15)
    assert report["messages"]["per_s"] == pytest.approx(200, abs=10)
    assert report["latency_ms"]["p99"] <= report["latency_ms"]["max"]


def test_idle_hold_keeps_every_connection_open_then_closes_with_1000(start_server) -> None:
    server = start_server("unix")
    code, report = run_json("--unix", server.unix_path, "-c", "40", "--rate", "0", "--ramp-rate", "0", "-d", "1")
    assert code == 0, report
    assert report["config"]["mode"] == "idle"
    assert report["handshakes"]["ok"] == 40 and report["open_at_end"] == 40
    assert report["messages"]["round_trips"] == 0
    assert report["latency_ms"] == {
        "samples": 0,
        "min": None,
        "mean": None,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }
    wait_for(lambda: len(re.findall(r"connection \d+ closed .* code 1000", server.log())) == 40, "40 closes with 1000")
    assert opened(server) == 40


def test_sigterm_ends_a_background_run_early_with_its_report(start_server) -> None:
    """How scripts stop a long hold: SIGTERM (a shell leaves SIGINT ignored in background jobs)."""
    server = start_server("unix")
    client = start_load("--json", "--progress", "--unix", server.unix_path, "-c", "10", "--rate", "1", "-d", "600")
    wait_for(lambda: opened(server) == 10, "10 connections")
    time.sleep(1.5)
    started = time.monotonic()
    client.send_signal(signal.SIGTERM)
    code, stdout, stderr = finish(client)
    assert time.monotonic() - started < 10
    report = json.loads(stdout)
    assert code == 1 and report["completed"] is False, report
    assert report["handshakes"] == {"ok": 10, "failed": 0, "failed_by_reason": {}}, report
    assert report["open_at_end"] == 10 and report["closes"]["by_code"] == {}, report
    assert report["messages"]["total_round_trips"] >= 10, report


def summary_rows(stdout: str) -> dict[str, str]:
    """The summary table as {row name: value}."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines())


@pytest.mark.parametrize(
    ("sig", "as_json"),
    [(signal.SIGTERM, True), (signal.SIGTERM, False), (signal.SIGINT, False)],
    ids=["term-json", "term-table", "int-table"],
)
def test_signal_to_the_whole_process_group_still_reports_what_ran(start_server, sig: int, as_json: bool) -> None:
    """`timeout 5 wsfleet-load ...`, `kill -- -PGID`, a CI cancel, Ctrl-C: the parent and every worker get
    the signal at once; each worker stops its load and reports, and the report counts what ran."""
    server = start_server("unix")
    args = ["--unix", server.unix_path, "-c", "20", "--workers", "2", "--rate", "5", "-d", "600"]
    client = subprocess.Popen(
        [sys.executable, "-m", "wsfleet_echo.load", *(["--json"] if as_json else []), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a shell job or a CI step has
    )
    try:
        wait_for(lambda: opened(server) == 20, "20 connections")
        time.sleep(2)
        started = time.monotonic()
        os.killpg(client.pid, sig)
        out, err = client.communicate(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):  # workers left behind, if any; the group is ours
            os.killpg(client.pid, signal.SIGKILL)
        if client.poll() is None:
            client.wait(timeout=5)
    stdout, stderr = out.decode(), err.decode()
    assert client.returncode == 1, stdout + stderr
    assert elapsed < 8, f"took {elapsed:.1f} s to stop"
    assert "Traceback" not in stderr, stderr
    if as_json:
        report = json.loads(stdout)
        assert report["completed"] is False and report["exit_code"] == 1, report
        assert report["workers"] == {"count": 2, "reported": 2, "lost": {}}, report
        assert report["handshakes"] == {"ok": 20, "failed": 0, "failed_by_reason": {}}, report
        assert report["messages"]["round_trips"] > 0 and report["messages"]["total_round_trips"] >= 20, report
        assert report["open_at_end"] == 20 and report["closes"]["by_code"] == {} and report["errors"] == {}, report
    else:
        rows = summary_rows(stdout)
        assert rows["handshakes"] == "20 ok, 0 failed", stdout
        assert rows["workers"] == "2 of 2 reported", stdout
        assert rows["open at end"] == "20 of 20", stdout
        assert rows["client errors"] == "none" and rows["server closes"].startswith("none "), stdout
        assert int(rows["messages/s"].split("(")[1].split()[0].replace(",", "")) > 0, stdout
        assert rows["result"] == "FAILED (incomplete run)", stdout
    wait_for(lambda: len(re.findall(r"connection \d+ closed .* code 1000", server.log())) == 20, "20 closes with 1000")


def test_summary_shows_lost_workers_and_any_count() -> None:
    """The table prints whatever a report holds: lost workers' reasons are text, not counts."""
    parser = load.build_parser()
    plan = load.make_plan(parser, parser.parse_args(["ws://localhost/", "-c", "4", "--workers", "2"]))
    lost = {0: "exited with status -15 without a result", 1: "killed: no result in time"}
    run = SimpleNamespace(interrupted=True, lost=lost, loops={}, results={}, elapsed=1.0)
    rows = summary_rows(load.format_summary(load.build_report(plan, run, WorkerStats())))
    reasons = "worker 0 exited with status -15 without a result, worker 1 killed: no result in time"
    assert rows["workers"] == f"0 of 2 reported; lost: {reasons}"
    assert rows["result"] == "FAILED (incomplete run)"
    assert load._counts({"a": 1234, "b": 0.5, "c": "text", "d": None}) == "a 1,234, b 0.5, c text, d None"


@pytest.mark.parametrize(("sig", "code", "exit_code"), [(signal.SIGTERM, "1001", 0), (signal.SIGKILL, "1006", 1)])
def test_server_closes_are_counted_by_code(start_server, sig: int, code: str, exit_code: int) -> None:
    kept, ended = start_server("unix"), start_server("tcp", close_timeout=2)
    client = start_load("--json", "--unix", kept.unix_path, ended.url, "-c", "20", "--rate", "0", "-d", "2.5")
    wait_for(lambda: opened(ended) == 10, "10 connections to the server that will end")
    ended.process.send_signal(sig)
    ended.process.wait(timeout=10)
    returncode, stdout, stderr = finish(client)
    report = json.loads(stdout)
    assert returncode == exit_code == report["exit_code"], stdout + stderr
    assert report["closes"]["by_code"] == {code: 10}
    assert report["closes"]["clean" if exit_code == 0 else "abnormal"] == 10
    assert report["handshakes"]["ok"] == 20 and report["open_at_end"] == 10


def test_reconnect_through_a_restart_sees_1012_and_no_abnormal_close(start_server) -> None:
    first = start_server("unix", close_timeout=2)
    before = process_header(first)
    client = start_load("--json", "--reconnect", "--unix", first.unix_path, "-c", "20", "-d", "6", "--workers", "2")
    wait_for(lambda: opened(first) == 21, "20 client connections")  # plus the probe
    first.process.send_signal(signal.SIGUSR1)  # what a rolling restart sends: close with 1012, exit
    assert first.process.wait(timeout=10) == 0
    second = start_server(listen_env={"WSFLEET_SOCKET": first.unix_path}, unix_path=first.unix_path)
    after = process_header(second)
    returncode, stdout, stderr = finish(client)
    report = json.loads(stdout)
    assert report["closes"] == {"by_code": {"1012": 20}, "clean": 20, "abnormal": 0, "other": 0}, stdout + stderr
    assert report["errors"] == {}
    assert report["handshakes"]["ok"] == 40
    assert report["spread"] == {before: 20, after: 20}
    assert report["open_at_end"] == 20
    # While no process listens, reconnects fail at once (a supervisor's restart gap); each counts.
    failed = report["handshakes"]["failed_by_reason"]
    assert set(failed) <= {"ENOENT (No such file or directory)", "ECONNREFUSED (Connection refused)"}
    assert returncode == report["exit_code"] == (1 if failed else 0)


@pytest.mark.parametrize("as_json", [True, False])
def test_refused_targets_count_failed_handshakes_and_exit_1(tmp_path: Path, as_json: bool) -> None:
    args = [f"ws://127.0.0.1:{free_port()}/", "--unix", str(tmp_path / "missing.sock"), "-c", "4", "-d", "0.5"]
    if as_json:
        code, report = run_json(*args)
        assert code == 1 and report["exit_code"] == 1 and not report["ok"] and report["completed"]
        assert report["handshakes"] == {
            "ok": 0,
            "failed": 4,
            "failed_by_reason": {"ECONNREFUSED (Connection refused)": 2, "ENOENT (No such file or directory)": 2},
        }
        assert report["open_at_end"] == 0
    else:
        code, stdout, _ = finish(start_load(*args))
        assert code == 1
        rows = summary_rows(stdout)
        assert rows["handshakes"] == "0 ok, 4 failed"
        assert "ECONNREFUSED (Connection refused) 2" in rows["failed by"]
        assert rows["open at end"] == "0 of 4"
        assert rows["result"] == "FAILED"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["ws://localhost/", "--connections", "0"], "--connections"),
        (["ws://localhost/", "--rate", "-1"], "--rate"),
        (["ws://localhost/", "--duration", "0"], "--duration"),
        (["ws://localhost/", "--workers", "two"], "--workers"),
        (["ws://localhost/", "--timeout", "nan"], "--timeout"),
        (["ws://localhost/", "--cafile", "/nonexistent/ca.pem"], "--cafile"),
        (["http://localhost/"], "URL"),
        ([], "--unix"),
        (["ws://localhost/", "--bogus"], "--bogus"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(capsys: pytest.CaptureFixture, args: list[str], named: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load.main(args)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_more_connections_per_worker_than_open_files_is_refused(capsys: pytest.CaptureFixture) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no open-file limit")
    assert load.main(["ws://localhost/", "-c", str(hard), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "RLIMIT_NOFILE" in err and "--workers 2 or more" in err


def test_histogram_quantiles_within_half_a_percent() -> None:
    rng = random.Random(6)
    samples = [rng.lognormvariate(-7, 1.2) for _ in range(20000)]  # around 1 ms, from us to tens of ms
    halves = Histogram(), Histogram()
    for i, value in enumerate(samples):
        halves[i % 2].add(value)
    stats = WorkerStats()
    for half in halves:
        part = WorkerStats(latency=half)
        stats.merge(part)
    merged = stats.latency
    ordered = sorted(samples)
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        assert merged.quantile(q) == pytest.approx(exact, rel=0.005)
    assert merged.count == len(samples) and merged.max == ordered[-1] and merged.min == ordered[0]
    assert merged.quantile(1.0) == pytest.approx(ordered[-1], rel=0.005)
    assert Histogram().quantile(0.5) is None
