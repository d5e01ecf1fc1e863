"""site.yml on one host: nginx or HAProxy (wsfleet_lb) in front of every app process.

Every check uses the real websockets client inside the host, through the load balancer on 8080.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
import uuid

import pytest
import testinfra.utils.ansible_runner
from conftest import CAFILE, RESOURCES, Load, Watch, converge_again, service_log

if "MOLECULE_INVENTORY_FILE" in os.environ:
    testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")

SITE = RESOURCES.parent.parent.parent / "playbooks" / "site.yml"


@pytest.fixture(scope="module")
def lb(variables):
    return variables.get("wsfleet_lb", "nginx")


@pytest.fixture(scope="module")
def tls(variables):
    return bool(variables.get("test_tls_dir"))


@pytest.fixture(scope="module")
def lb_url(tls):
    """The load balancer's address, as wsprobe takes it."""
    return "wss://127.0.0.1:8080" if tls else "127.0.0.1:8080"


@pytest.fixture(scope="module")
def numprocs(variables):
    return int(variables["supervisord_numprocs"])


def config_path(lb):
    return "/etc/nginx/nginx.conf" if lb == "nginx" else "/etc/haproxy/haproxy.cfg"


def wait_all_backends_up(host, probe, numprocs, lb_url, timeout=30):
    """HAProxy needs a couple of health checks to mark restarted servers up; nginx needs nothing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(probe("spread", lb_url, numprocs)["processes"]) == numprocs:
            return
        time.sleep(1)
    raise AssertionError(f"not every process is reachable through the LB\n{service_log(host)}")


def test_reached_over_ssh_as_an_unprivileged_user_with_become(host, variables):
    """lb_haproxy_tcp is converged and verified the way fleets are run: SSH as `deploy`, sudo to root."""
    if variables.get("ansible_connection") != "ssh":
        pytest.skip("this scenario is reached through docker exec; lb_haproxy_tcp goes over SSH")
    assert variables["ansible_user"] == "deploy" and variables["ansible_become"] is True
    assert host.run("id -un").stdout.strip() == "root"  # the tests, too, run their commands with sudo
    assert host.run("printenv SUDO_USER").stdout.strip() == "deploy"
    assert host.user("deploy").uid != 0 and "sudo" not in host.user("deploy").groups
    accepted = host.run("journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey for deploy'").stdout.strip()
    assert int(accepted or 0) > 0, "sshd never let deploy in with its key"


def test_service_running_and_listening(host, lb):
    service = host.service(lb)
    assert service.is_running, service_log(host)
    assert service.is_enabled
    assert host.socket("tcp://0.0.0.0:8080").is_listening


def test_tls_when_enabled_and_plain_refused(host, probe, tls):
    if not tls:
        pytest.skip("this scenario serves plain WebSocket; lb_nginx and lb_haproxy_tcp terminate TLS")
    assert probe("echo", "wss://127.0.0.1:8080", "over TLS")["replies"][0] == "over TLS"
    assert not probe.ok("echo", "127.0.0.1:8080", "plain")


def test_no_distribution_default_site(host, lb):
    """Debian's nginx package enables a welcome page on port 80; the role removes its link."""
    if lb != "nginx":
        pytest.skip("nginx only")
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    assert not host.socket("tcp://0.0.0.0:80").is_listening


def handshake_headers(host, address: str, tls: bool) -> tuple[str, dict[str, str]]:
    """The status line and headers of a WebSocket handshake through the load balancer at address
    (curl, so the request leaves from that address's side: loopback, or the host's own network)."""
    out = host.run(
        # HTTP/1.1: Debian 13's curl offers h2 over TLS, where HAProxy takes it and the app answers 426.
        "curl -sk --http1.1 --max-time 3 -D - -o /dev/null -H 'Connection: Upgrade' -H 'Upgrade: websocket' "
        "-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "
        f"{'https' if tls else 'http'}://{address}:8080/"
    ).stdout
    lines = out.replace("\r", "").splitlines()
    return (lines[0] if lines else ""), {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}


def test_which_process_served_is_shown_only_to_the_clients_allowed(host, lb, tls):
    """The app names its process (X-Wsfleet-Process) and its version (Server) on every handshake.
    Through the load balancer only the clients of *_lb_process_header_sources (default: the host
    itself) see them; a client from the network gets neither. Before, every client got both."""
    address = host.run("hostname -I").stdout.split()[0]
    status, local = handshake_headers(host, "127.0.0.1", tls)
    assert " 101 " in status and "x-wsfleet-process" in local, (status, local)
    status, public = handshake_headers(host, address, tls)
    assert " 101 " in status, (address, status, public)
    assert "x-wsfleet-process" not in public and "wsfleet-echo" not in public.get("server", ""), (address, public)


@pytest.mark.once("tls_off")
def test_turning_tls_off_removes_the_key_and_serves_plain(host, probe, lb, tls):
    """With TLS turned off the certificate and key leave the host; turned on again, TLS serves.
    Turned off as operators type it, `-e nginx_lb_tls=false`: a string, which the roles once took
    as true in templates (and which ansible-core refuses as a bare conditional)."""
    if not tls:
        pytest.skip("this scenario serves plain WebSocket; lb_nginx and lb_haproxy_tcp terminate TLS")
    files = ["/etc/nginx/wsfleet/tls.crt", "/etc/nginx/wsfleet/tls.key"] if lb == "nginx" else ["/etc/haproxy/wsfleet/tls.pem"]
    try:
        off = converge_again(host, SITE, f"{lb}_lb_tls=false")
        assert off.returncode == 0, off.stdout[-4000:] + off.stderr[-2000:]
        assert not [path for path in files if host.file(path).exists], files
        assert probe("echo", "127.0.0.1:8080", "plain now")["replies"][0] == "plain now"
    finally:
        on = converge_again(host, SITE)
        assert on.returncode == 0, on.stdout[-4000:] + on.stderr[-2000:]
    assert host.file(files[-1]).mode == 0o600
    assert probe("echo", "wss://127.0.0.1:8080", "TLS again")["replies"][0] == "TLS again"


def test_haproxy_stats_page_off_without_a_password_and_metrics_on_localhost(host, probe, lb):
    """The stats listener serves Prometheus metrics; its HTML page only behind a password (none set here)."""
    if lb != "haproxy":
        pytest.skip("HAProxy only")
    assert host.socket("tcp://127.0.0.1:8404").is_listening and not host.socket("tcp://0.0.0.0:8404").is_listening
    assert probe("get", "127.0.0.1:8404", "/stats")["status"] != 200
    metrics = probe("get", "127.0.0.1:8404", "/metrics")
    assert metrics["status"] == 200 and "haproxy_process_" in metrics["body"], metrics


def test_tls_offers_only_forward_secret_aead_suites(probe, tls):
    """Mozilla's intermediate list (without DHE): a client offering only a CBC suite is refused;
    OpenSSL's default list, which the load balancers used before, accepted it."""
    if not tls:
        pytest.skip("this scenario serves plain WebSocket; lb_nginx and lb_haproxy_tcp terminate TLS")
    good = probe("tls-cipher", "wss://127.0.0.1:8080", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert good["ok"] and good["version"] == "TLSv1.2", good
    for cipher in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):  # CBC suites, with and without SHA-1
        refused = probe("tls-cipher", "wss://127.0.0.1:8080", cipher)
        assert not refused["ok"], (cipher, refused)


def test_echo_text_and_binary_through_the_lb(probe, lb_url):
    assert probe("echo", lb_url, "Hello!", "ünïcode ✓")["replies"] == [
        "Hello!", "Hello! (binary)", "ünïcode ✓", "ünïcode ✓ (binary)"
    ]


def test_healthz_through_the_lb(probe, lb_url):
    assert probe("health", lb_url)["status"] == 200


def test_healthz_fails_at_once_when_no_process_answers(host, probe, numprocs, lb_url):
    """/healthz means "an app process answers", not "the proxy runs": a cloud health check relies on it.

    Checked right after the processes stop, before HAProxy's own checks (2 x 2 s) mark the servers
    down: answering from HAProxy's server count would still say 200 then (and at boot).
    """
    wait_all_backends_up(host, probe, numprocs, lb_url)
    assert host.run("supervisorctl stop 'echo:*'").rc == 0
    try:
        status = probe("health", lb_url)["status"]
        assert status in (502, 503), status
    finally:
        assert host.run("supervisorctl start 'echo:*'").rc == 0
    deadline = time.monotonic() + 30
    while probe("health", lb_url)["status"] != 200:
        assert time.monotonic() < deadline, service_log(host)
        time.sleep(0.5)
    wait_all_backends_up(host, probe, numprocs, lb_url)


def test_least_connections_gives_every_process_its_exact_share(host, probe, numprocs, lb_url):
    """4 x N connections held at once, opened one after another and then all at the same time: each
    of the N processes gets exactly 4, whichever worker accepted them.

    nginx's workers share the servers' connection counts through the upstream's zone; without it
    each worker's least_conn counts only its own connections (measured: 3 of 5 simultaneous rounds
    gave 5/4/3/4 or 5/5/3/3 over 4 processes, and one sequential round 5/4/3/4).
    """
    count = 4 * numprocs
    for at_once in (False, True, True, True):
        out = probe("spread", lb_url, count, *(["--at-once"] if at_once else []))
        spread = out["processes"]
        assert out["echoed"] == count
        assert sorted(name.split("/")[1] for name in spread) == [f"echo_{i:02d}" for i in range(numprocs)], spread
        assert set(spread.values()) == {4}, (at_once, spread)


def test_idle_websocket_outlives_the_guides_timeouts(probe, lb, lb_url):
    """Neither the app nor the client pings: only the proxy's own timeouts decide.

    The guides' configs cut such a connection: HAProxy's at timeout client/server (30 s), nginx's
    at its default proxy_read_timeout (60 s), so the silence lasts longer than each.
    """
    out = probe("idle", lb_url, 65 if lb == "nginx" else 35)
    assert out["ok"], out


def test_clients_sending_headers_slowly_are_cut_and_others_are_served(probe, lb, lb_url, variables):
    """50 slowloris clients (request headers one byte a second) are cut at the request-header timeout.

    Without it HAProxy keeps them for timeout client and nginx for its 60-s client_header_timeout;
    each holds a connection (and a maxconn slot) meanwhile. While they are all held, a real client
    still gets its handshake and echo, and /healthz answers.
    """
    limit = int(variables.get("haproxy_lb_timeout_http_request" if lb == "haproxy" else "nginx_lb_client_header_timeout", 10))
    out = probe("slow-headers", lb_url, 50, timeout=90)
    assert out["slow_open_meanwhile"] == 50, out  # the real client below was served while all 50 were held
    assert out["echo"] == "while slow clients wait" and out["health"] == 200, out
    cut = out["cut_after"]
    assert None not in cut, out  # every slow client was cut (the probe gives up at 40 s)
    assert limit - 1 <= min(cut) and max(cut) <= limit + 3, (limit, cut)


def app_target(variables, numprocs) -> str:
    """The app's side, as wsprobe counts its connections: the socket directory, or FIRST-LAST port."""
    if variables.get("supervisord_listen") == "tcp":
        base = int(variables.get("supervisord_port_base", 8000))
        return f"{base}-{base + numprocs - 1}"
    return variables.get("supervisord_socket_dir", "/run/wsfleet")


@pytest.mark.once("never_reads")
def test_a_client_that_never_reads_is_cut_and_others_are_served(probe, lb, lb_url, variables, numprocs):
    """A client that stops reading while the app sends to it: its socket on the load balancer is gone
    *_lb_send_timeout after its window closed (the scenario's app sends no pings, so nothing else
    would end it), the load balancer closes its connection to the app too, and another client is
    served meanwhile.

    nginx is given the harder client, one that keeps sending until every buffer is full both ways:
    send_timeout ends it all the same. HAProxy's tcp-ut ends a client that stopped reading while the
    app pushes to it (the way to the app clear); the harder one, which HAProxy then polls on neither
    side, ends at its timeout tunnel (the next test). Without the bounds nginx held it for its 60-s
    send_timeout, and HAProxy for timeout tunnel (3600 s), with megabytes queued to it.
    """
    limit = int(variables.get(f"{lb}_lb_send_timeout", 30))
    out = probe("never-reads", lb_url, limit + 15, app_target(variables, numprocs), *(["pushes"] if lb == "haproxy" else []),
                timeout=limit + 90)
    assert out["queued"], out  # the load balancer had the echoes queued to the client, unsent
    assert out["echo"] == "while one client never reads", out
    assert out["cut_after"] is not None, out  # still established limit + 15 s after its sends stalled
    # The window closed up to a few seconds before the sends stalled (the probe waits 3 s per send).
    assert limit - 8 <= out["cut_after"] <= limit + 3, (limit, out)
    assert out["app_closed_after"] is not None and out["app_closed_after"] <= 2, out
    if lb == "haproxy":
        assert out["session_gone_after"] is not None and out["session_gone_after"] <= out["cut_after"] + 2, out


@pytest.mark.once("stuck_tunnel")
def test_a_client_that_fills_haproxys_buffers_both_ways_ends_at_timeout_tunnel_derived_from_the_pings(host, probe, lb, lb_url, variables, numprocs):
    """A client that sends until HAProxy's buffers are full both ways and never reads: HAProxy then
    polls neither side, so the kernel dropping its socket (tcp-ut) does not end the session, nor
    HAProxy's connection to the app. timeout tunnel does: derived from the app's pings (2 x interval
    + timeout + 10 s), it ends it as soon as the app has given up on the client. Here the load
    balancer is converged as if the app pinged every 3 s with a 3-s timeout (19 s): the session is
    gone about 19 s after the client's sends stalled, before tcp-ut's 30 s, and HAProxy's
    connection to the app within timeout server of that. Before, timeout tunnel was 3600 s whatever
    the app did, and the session and the connection to the app stayed that long.
    """
    assert lb == "haproxy", lb
    config = config_path(lb)
    try:
        pings = json.dumps({"echo_app_ping_interval": 3, "echo_app_ping_timeout": 3})
        result = converge_again(host, SITE, pings, tags="haproxy_lb")
        assert result.returncode == 0, result.stdout[-3000:]
        assert "timeout tunnel 19s" in host.file(config).content_string
        out = probe("never-reads", lb_url, 60, app_target(variables, numprocs), timeout=200)
        report = json.dumps(out)
        assert out["queued"] and out["echo"] == "while one client never reads", report
        # HAProxy's last byte moved up to 3 s before the probe saw its sends stall.
        assert out["session_gone_after"] is not None and 19 - 5 <= out["session_gone_after"] <= 19 + 2, report
        # With the session gone, HAProxy's connections stay only to flush what they hold: the
        # client's until the kernel drops it (tcp-ut, 30 s after its window closed), the app's for
        # at most timeout server. Measured on Debian 13: the session gone 16.2 s after the stall,
        # the client's socket 27.5 s after it, the connection to the app 29.9 s after the session.
        send_timeout = int(variables.get("haproxy_lb_send_timeout", 30))
        assert out["cut_after"] is not None and out["cut_after"] <= send_timeout + 3, report
        assert out["app_closed_after"] is not None, report
        timeout_server = int(variables.get("haproxy_lb_timeout_server", 30))
        assert out["cut_after"] + out["app_closed_after"] <= out["session_gone_after"] + timeout_server + 5, report
    finally:
        result = converge_again(host, SITE, tags="haproxy_lb")
        assert result.returncode == 0, result.stdout[-3000:]
    assert "timeout tunnel 3600s" in host.file(config).content_string  # the scenario's app does not ping


def test_invalid_directive_fails_validation_and_the_old_config_keeps_serving(host, probe, lb, lb_url):
    before = host.file(config_path(lb)).sha256sum
    extra = "nginx_lb_extra_server_directives" if lb == "nginx" else "haproxy_lb_extra_frontend_directives"
    result = converge_again(host, SITE, json.dumps({extra: "wsfleet_no_such_directive on;"}), tags=f"{lb}_lb")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "wsfleet_no_such_directive" in output, output[-3000:]
    assert host.file(config_path(lb)).sha256sum == before
    assert probe("echo", lb_url, "still serving")["replies"][0] == "still serving"


def nginx_workers(host) -> int:
    """nginx's serving workers (not those a reload left finishing their connections)."""
    return host.check_output("ps -eo args").splitlines().count("nginx: worker process")


def test_reload_keeps_open_websockets_open_and_echoing(host, probe, lb, lb_url):
    folder = f"/tmp/hold-{uuid.uuid4().hex[:8]}"
    host.run(f"mkdir -p {folder}")
    host.run(f"setsid nohup {probe.command('hold', lb_url, folder)} > {folder}/out 2>&1 &")
    deadline = time.monotonic() + 20
    while not host.file(f"{folder}/ready").exists and time.monotonic() < deadline:
        time.sleep(0.2)
    assert host.file(f"{folder}/ready").exists, host.file(f"{folder}/out").content_string
    # A real config change: the status page moves, so the LB reloads; nginx also goes from
    # worker_processes auto (one per CPU) to 1 (nginx_lb_worker_processes).
    change = {"nginx_lb_stub_status_port": 8091, "nginx_lb_worker_processes": 1} if lb == "nginx" else {"haproxy_lb_stats_port": 8494}
    if lb == "nginx":
        assert nginx_workers(host) == int(host.check_output("nproc"))
    result = converge_again(host, SITE, json.dumps(change), tags=f"{lb}_lb")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"RUNNING HANDLER [wsfleet.fleet.{lb}_lb : Reload {lb}]" in result.stdout
    assert host.socket(f"tcp://127.0.0.1:{list(change.values())[0]}").is_listening
    if lb == "nginx":
        assert nginx_workers(host) == 1
    host.run(f"touch {folder}/go")
    deadline = time.monotonic() + 20
    while not host.file(f"{folder}/result").exists and time.monotonic() < deadline:
        time.sleep(0.2)
    outcome = json.loads(host.file(f"{folder}/result").content_string)
    assert outcome["ok"], outcome


def test_kill_9_of_one_process_new_connections_keep_succeeding(host, probe, numprocs, lb_url):
    wait_all_backends_up(host, probe, numprocs, lb_url)
    pid = host.run("supervisorctl pid echo:echo_01").stdout.strip()
    host.run(f"kill -9 {pid}")
    out = probe("connects", lb_url, 100)
    assert out == {"ok": 100, "failed": 0, "errors": []}, f"{out}\n{service_log(host)}"


def running_pids(host) -> list[str]:
    return re.findall(r"RUNNING +pid (\d+)", host.run("supervisorctl status echo:").stdout)


@pytest.mark.once("app_change")
def test_an_app_change_through_site_yml_restarts_one_process_at_a_time_under_load(host, probe, numprocs, lb_url, tls):
    """site.yml with a changed app setting (echo_app_log_level) while 40 clients reconnect.

    It used to restart every process at once: through nginx, 1000 clients got 1001 and 1072 of their
    reconnects failed with 502, since no process listened for a moment. Now the processes restart one
    at a time (supervisord_restart_mode: rolling): every process is new, its clients are told 1012
    "service restart", and every reconnect succeeds. Then the scenario's own settings come back
    (a second rolling restart). /healthz, polled every 0.2 s through the load balancer, answers 200
    throughout.
    """
    wait_all_backends_up(host, probe, numprocs, lb_url)
    deadline = time.monotonic() + 30  # a process restarted by an earlier test is STARTING for startsecs
    while len(before := running_pids(host)) != numprocs:
        assert time.monotonic() < deadline, host.run("supervisorctl status").stdout
        time.sleep(0.5)
    target = f"wss://127.0.0.1:8080/ --cafile {CAFILE}" if tls else "ws://127.0.0.1:8080/"
    load = Load(host, target, "--connections 40 --ramp-rate 200 --rate 2 --duration 900 --reconnect --progress")
    load.wait_open(40)
    health = Watch(host, probe, "watch-health", lb_url, 60)
    try:
        changed = converge_again(host, SITE, "echo_app_log_level=WARNING")
        time.sleep(2)  # the last restarted process's clients reconnect
    finally:
        report = load.stop()
    samples = health.result(timeout=90)
    assert len(samples) >= 50 and all(status == 200 for _, status in samples), samples  # some process always answered
    assert changed.returncode == 0, changed.stdout[-4000:] + changed.stderr[-2000:]
    after = running_pids(host)
    assert len(after) == len(before) == numprocs and not set(before) & set(after), (before, after)
    text = json.dumps(report)
    closes = report["closes"]["by_code"]
    assert closes.get("1012", 0) >= 1 and set(closes) == {"1012"}, text  # told "service restart", nothing else
    assert report["handshakes"]["failed"] == 0 and not report["errors"], text  # no reconnect failed
    assert report["handshakes"]["ok"] >= 40 + closes["1012"], text
    restored = converge_again(host, SITE)
    assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
    wait_all_backends_up(host, probe, numprocs, lb_url)


@pytest.mark.once("play_vars")
def test_zz_program_and_socket_dir_set_as_play_vars_reach_the_load_balancer(host, probe, lb, lb_url, numprocs, variables, tmp_path):
    """Play vars never show in hostvars: the load balancer learns the program's name and socket
    directory from what the supervisord role published, so the server list and the app agree."""
    if not variables.get("test_play_vars"):
        pytest.skip("lb_haproxy sets the program name and socket directory as play vars")
    playbook = tmp_path / "play_vars.yml"
    playbook.write_text(json.dumps([{
        "name": "site.yml with the program named by play vars",
        "ansible.builtin.import_playbook": str(SITE),
        "vars": {"supervisord_program_name": "chat", "supervisord_socket_dir": "/run/chat"},
    }]))
    try:
        result = converge_again(host, playbook)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert "/run/chat/chat_00.sock" in host.file(config_path(lb)).content_string
        deadline = time.monotonic() + 30
        while True:  # HAProxy's health checks take the new servers up within seconds
            spread = probe("spread", lb_url, 4 * numprocs)["processes"]
            if sorted(name.split("/")[1] for name in spread) == [f"chat_{i:02d}" for i in range(numprocs)]:
                break
            assert time.monotonic() < deadline, (spread, service_log(host))
            time.sleep(1)
    finally:
        host.run("supervisorctl stop 'chat:*'; rm -f /etc/supervisor/conf.d/chat.conf /etc/tmpfiles.d/wsfleet-chat.conf; "
                 "supervisorctl update; rm -rf /run/chat")
        restored = converge_again(host, SITE)
        assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
    wait_all_backends_up(host, probe, numprocs, lb_url)


@pytest.mark.once("lb_switch")
def test_zz_switching_the_load_balancer_kind_retires_the_other_and_back(host, probe, lb, lb_url, numprocs, tls, variables):
    """wsfleet_lb changed on a host. Before: nginx -> HAProxy failed with HAProxy's raw "cannot bind
    socket" after 3 changes, HAProxy -> nginx with "Starting nginx: nginx failed!", and both stayed
    enabled at boot. Now the other wsfleet load balancer is stopped and disabled (its config left
    for a switch back) just before the new one starts; both directions. nginx's exporter (the
    scenario turns it on) went on reporting nginx_up 0 from HAProxy's host, active and enabled: now
    it is retired with nginx, and serves again after the switch back."""
    other = "haproxy" if lb == "nginx" else "nginx"
    exporter = host.service("prometheus-nginx-exporter") if lb == "nginx" and variables.get("nginx_lb_exporter") else None
    if exporter:
        assert exporter.is_running and exporter.is_enabled, "the scenario must run nginx's exporter"
    try:
        switched = converge_again(host, SITE, json.dumps({"wsfleet_lb": other, f"{other}_lb_tls": False}))
        assert switched.returncode == 0, switched.stdout[-4000:] + switched.stderr[-2000:]
        assert host.service(other).is_running and host.service(other).is_enabled
        assert not host.service(lb).is_running and not host.service(lb).is_enabled
        assert host.file(config_path(lb)).exists  # left in place
        assert probe("echo", "127.0.0.1:8080", "through the other")["replies"][0] == "through the other"
        if exporter:
            assert not exporter.is_running and not exporter.is_enabled, host.run("journalctl -u prometheus-nginx-exporter -n 15 --no-pager").stdout
            assert not host.socket("tcp://127.0.0.1:9113").is_listening
    finally:
        back = converge_again(host, SITE)
        assert back.returncode == 0, back.stdout[-4000:] + back.stderr[-2000:]
    assert host.service(lb).is_running and host.service(lb).is_enabled
    assert not host.service(other).is_running and not host.service(other).is_enabled
    wait_all_backends_up(host, probe, numprocs, lb_url)
    if exporter:
        assert exporter.is_running and exporter.is_enabled, host.run("journalctl -u prometheus-nginx-exporter -n 15 --no-pager").stdout
        deadline = time.monotonic() + 20
        while (scraped := host.run("curl -s http://127.0.0.1:9113/metrics")).stdout.count("nginx_up 1") == 0:
            assert time.monotonic() < deadline, scraped.stdout[-2000:] + scraped.stderr
            time.sleep(0.5)


def test_zz_a_port_held_by_another_program_is_refused_before_any_change(host, lb):
    """Before: the config was written and then the reload or start failed with a raw bind error."""
    owned = "/etc/nginx /etc/haproxy /etc/wsfleet-echo /etc/supervisor"
    before = host.run(f"find {owned} -type f -exec md5sum {{}} + | sort").stdout
    listener = host.run("nohup python3 -c 'import socket, time; s = socket.socket(); s.bind((\"0.0.0.0\", 8099)); s.listen(); "
                        "time.sleep(120)' >/dev/null 2>&1 & echo $!").stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while not host.socket("tcp://0.0.0.0:8099").is_listening:
            assert time.monotonic() < deadline, "the test's listener did not start"
            time.sleep(0.2)
        result = converge_again(host, SITE, f"{lb}_lb_port=8099")
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode != 0 and f"{lb}_lb_port 8099 is already taken on" in output, output[-3000:]
        assert re.search(r"changed=0\s", result.stdout) and not re.search(r"changed=[1-9]", result.stdout), result.stdout[-3000:]
    finally:
        host.run(f"kill {listener}")
    assert host.run(f"find {owned} -type f -exec md5sum {{}} + | sort").stdout == before


# Started on the host: waits until the load balancer's new config names the port, then takes it.
GRAB_PORT_WHEN_NAMED = """
import socket, sys, time
config, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + 120
while f":{port}" not in open(config).read():
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.05)
s = socket.socket()
s.bind(("0.0.0.0", port))
s.listen()
time.sleep(120)
"""


@pytest.mark.once("reload_retry")
def test_zz_a_reload_that_fails_is_reported_and_retried_by_the_next_run(host, probe, lb, lb_url):
    """Another program takes a port of the new config between the preflight and the reload (here:
    as soon as the new file names it). Before: the reload command exited 0, the old config kept
    serving, the run was green and so was the next one (changed=0), the new port never served.
    Now the run fails saying the old config still serves, and the next run reloads (changed)."""
    var, port = ("nginx_lb_stub_status_port", 8097) if lb == "nginx" else ("haproxy_lb_stats_port", 8497)
    marker = f"/etc/{lb}/wsfleet/reload-pending"
    grabber = host.run(f"nohup python3 -c {shlex.quote(GRAB_PORT_WHEN_NAMED)} {config_path(lb)} {port} >/dev/null 2>&1 & echo $!").stdout.strip()
    try:
        failed = converge_again(host, SITE, json.dumps({var: port}), tags=f"{lb}_lb")
        output = " ".join((failed.stdout + failed.stderr).split())
        assert failed.returncode != 0 and "started no worker from the new" in output, output[-4000:]
        assert f":{port}" in host.file(config_path(lb)).content_string and host.file(marker).exists
        assert probe("echo", lb_url, "old config serving")["replies"][0] == "old config serving"
    finally:
        host.run(f"kill {grabber}")
    deadline = time.monotonic() + 10
    while host.socket(f"tcp://0.0.0.0:{port}").is_listening:
        assert time.monotonic() < deadline, "the test's listener did not stop"
        time.sleep(0.2)
    retried = converge_again(host, SITE, json.dumps({var: port}), tags=f"{lb}_lb")
    assert retried.returncode == 0, retried.stdout[-4000:] + retried.stderr[-2000:]
    assert f"RUNNING HANDLER [wsfleet.fleet.{lb}_lb : Reload {lb}]" in retried.stdout
    assert re.search(r"changed=[1-9]", retried.stdout), retried.stdout[-3000:]
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening and not host.file(marker).exists
    # The status page stays on the test's port: this is the module's last test (a converge saved).
