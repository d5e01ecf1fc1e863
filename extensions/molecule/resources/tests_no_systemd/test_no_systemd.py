"""site.yml on a host without systemd (no_systemd): services run by their init.d scripts, no syslog daemon.

As on the machines `make deploy` runs on. HAProxy's log needs a /dev/log that nothing provides there:
the haproxy_lb role installs rsyslog, and the log reaches /var/log/haproxy.log.
"""

from __future__ import annotations

import os
import time
import uuid

import testinfra.utils.ansible_runner

if "MOLECULE_INVENTORY_FILE" in os.environ:
    testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")


def test_pid_1_is_not_systemd(host):
    assert host.file("/proc/1/comm").content_string.strip() != "systemd"
    assert not host.file("/run/systemd/system").exists


def test_every_process_runs_under_supervisord(host, variables):
    status = host.run("supervisorctl status").stdout
    assert status.count("RUNNING") == int(variables["supervisord_numprocs"]) + 1, status
    # The metrics exporter too: its directory on /run was made by the role, not by systemd-tmpfiles.
    assert "wsfleet-echo-metrics" in status and host.file("/run/wsfleet-echo-metrics").is_directory, status


def test_haproxy_echoes_through_every_process(probe, variables):
    count = int(variables["supervisord_numprocs"])
    out = probe("spread", "127.0.0.1:8080", 2 * count)
    assert out["echoed"] == 2 * count, out
    assert len(out["processes"]) == count, out


def test_haproxy_logs_each_request_to_a_file_through_rsyslog(host):
    """Without a syslog daemon HAProxy's `log /dev/log` went nowhere: no file, no journal, nothing."""
    assert host.file("/dev/log").is_socket
    mark = f"/wsfleet-log-{uuid.uuid4().hex[:8]}"
    host.run(f"curl -s -o /dev/null http://127.0.0.1:8080{mark}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and mark not in host.file("/var/log/haproxy.log").content_string:
        time.sleep(0.5)
    log = host.run("tail -n 5 /var/log/haproxy.log").stdout
    assert mark in log, log
