"""The container runs systemd as PID 1 and Ansible reaches it."""

import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")


def test_systemd_is_pid_1(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_systemd_reached_a_running_state(host):
    state = host.run("systemctl is-system-running --wait").stdout.strip()
    assert state in ("running", "degraded"), host.run("systemctl --failed --no-pager").stdout


def test_debian_release_is_the_requested_one(host):
    wanted = os.environ.get("WSFLEET_DEBIAN", "12")
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.split(".")[0] == wanted
