"""Bad input fails with a message naming the variable, before anything on the host changes.

Each case runs the real role with ansible-playbook against this machine (local connection) and
expects the play to stop in its checks: a failed play whose recap shows no change.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from local_play import ANSIBLE_PLAYBOOK, SCRATCH, ansible_env

ROOT = Path(__file__).resolve().parent.parent


def run_role(tmp_path: Path, role: str, *extra: str, os: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # A load balancer role reads what the app hosts published (this machine is both): the echo_app and
    # supervisord roles publish it in their checks, as site.yml's first play does.
    publish = ("  pre_tasks:\n    - ansible.builtin.include_role: {name: wsfleet.fleet.echo_app, tasks_from: publish.yml}\n"
               "    - ansible.builtin.include_role: {name: wsfleet.fleet.supervisord, tasks_from: publish.yml}\n"
               if role.endswith("_lb") else "")
    return run_playbook(
        tmp_path,
        f"- hosts: all\n  connection: local\n  gather_facts: true\n  gather_subset: [min, hardware]\n{publish}"
        f"  roles:\n    - role: wsfleet.fleet.{role}\n",
        *extra,
        os=os,
    )


# What the roles write on a host, and the accounts they make: a run that stops in its checks leaves
# every one of them as it was, the defaults' (this machine may hold a deployment of its own: `make
# deploy`) and the tests' scratch paths (local_play.SCRATCH) alike.
OWNED = ["/etc/supervisor", "/etc/nginx", "/etc/haproxy", "/etc/wsfleet-echo", "/opt/wsfleet-echo", "/etc/wsfleet-instance",
         "/etc/default/wsfleet-instance", "/etc/tmpfiles.d", "/etc/systemd/system", "/usr/local/sbin/wsfleet-instance", "/run/wsfleet",
         "/run/wsfleet-echo-metrics", "/etc/default/prometheus-nginx-exporter",
         SCRATCH["echo_app_root"], SCRATCH["echo_app_config_dir"], SCRATCH["supervisord_socket_dir"]]


def snapshot(*roots: Path | str) -> dict[str, tuple]:
    """Each path under roots with its type, mode, owner, size and modification time, and the host's
    accounts and groups: what a write, a chmod, a chown or a user change would alter."""
    found: dict[str, tuple] = {}
    for root in map(Path, roots):
        paths = [root, *root.rglob("*")] if root.is_dir() and not root.is_symlink() else [root]
        for path in paths:
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            found[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)
    for database in ("/etc/passwd", "/etc/group"):
        found[database] = (Path(database).read_text(),)
    return found


# This machine in both groups, with the scratch names, paths and ports (local_play.SCRATCH) as the
# inventory's: a case's -e value and a role parameter still win over them.
INVENTORY = ("all:\n  vars: " + json.dumps(SCRATCH) + "\n  hosts: {localhost: {ansible_connection: local}}\n"
             "  children:\n    lb: {hosts: {localhost: }}\n    app: {hosts: {localhost: }}\n")


@functools.cache
def gathered_facts() -> Path:
    """This machine's facts, gathered once per pytest process into a jsonfile fact cache (the subsets
    the preflight play gathers: min, hardware, network), as an operator's fact cache holds them.
    Each case runs on a copy with gathering=smart: gathering them took 1.9 of a case's 4 seconds
    (hardware reads every mount), the same facts each time, and the cases are about the checks."""
    where = Path(tempfile.mkdtemp(prefix="wsfleet-facts-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    (where / "hosts.yml").write_text(INVENTORY)
    (where / "gather.yml").write_text("- hosts: all\n  gather_facts: true\n  gather_subset: [min, hardware, network]\n  tasks: []\n")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(where / "hosts.yml"), str(where / "gather.yml")],
                            cwd=ROOT, env=ansible_env(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(where / "cache")),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and any((where / "cache").iterdir()), result.stdout[-3000:] + result.stderr[-3000:]
    return where / "cache"


def claim_os(facts: Path, os: dict[str, str]) -> None:
    """Makes this machine's cached facts say it runs another system (os: distribution, os_family,
    ...): what the checks read of a host that runs it."""
    for path in facts.iterdir():
        cached = json.loads(path.read_text())
        payload = json.loads(cached["__payload__"])
        payload.update({f"ansible_{name}": value for name, value in os.items()})
        cached["__payload__"] = json.dumps(payload)
        path.write_text(json.dumps(cached))


def run_playbook(tmp_path: Path, text: str, *extra: str, os: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(text)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY)
    facts = tmp_path / "facts"  # the run's own copy: what the roles publish there stays in this case
    shutil.copytree(gathered_facts(), facts, dirs_exist_ok=True)
    if os:
        claim_os(facts, os)
    args = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook)]
    for value in extra:
        args += [value] if value.startswith("--") else ["-e", value]
    env = ansible_env(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(facts), ANSIBLE_GATHERING="smart")
    before = snapshot(*OWNED, tmp_path)
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    after = snapshot(*OWNED, tmp_path)
    # A test's controller-side wheel cache fills on the controller, not the host; the fact cache is the controller's too.
    controller = (str(tmp_path / "wheels"), str(facts))
    result.changed_paths = sorted(path for path in before.keys() | after.keys()
                                  if before.get(path) != after.get(path) and not path.startswith(controller) and path != str(tmp_path))
    return result


def fake_python(tmp_path: Path, python: str, machine: str) -> str:
    """A stand-in for the target's /usr/bin/python3 that reports another version or architecture."""
    script = tmp_path / "python3"
    script.write_text(f"#!/bin/sh\necho '{{\"python\": \"{python}\", \"machine\": \"{machine}\", \"glibc\": \"2.36\"}}'\n")
    script.chmod(0o755)
    return str(script)


def assert_stopped_without_change(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"
    assert "changed=0" in output, output[-3000:]
    assert not result.changed_paths, result.changed_paths  # every owned path and account as it was


def test_a_value_outside_the_choices_names_the_variable(tmp_path: Path) -> None:
    result = run_role(tmp_path, "echo_app", "echo_app_compression=gzip")
    assert_stopped_without_change(result, "echo_app_compression", "gzip", "deflate")


def test_a_python_too_old_for_the_pinned_websockets_is_refused(tmp_path: Path) -> None:
    result = run_role(tmp_path, "echo_app", f"__echo_app_python={fake_python(tmp_path, '3.9', 'x86_64')}")
    assert_stopped_without_change(result, "runs Python 3.9", "need CPython >= 3.11", "websockets==")


def test_a_platform_without_obtainable_wheels_fails_early(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    result = run_role(
        tmp_path, "echo_app", f"__echo_app_python={fake_python(tmp_path, '3.11', 'riscv64')}", f"echo_app_wheel_cache={cache}"
    )
    assert_stopped_without_change(result, "could not obtain wheels for 3.11 on riscv64", "echo_app_pip_download_args")


@pytest.mark.parametrize(
    ("role", "extra", "needles"),
    [
        ("supervisord", "supervisord_numprocs=0", ["supervisord_numprocs 1..100"]),
        ("supervisord", "supervisord_listen=udp", ["supervisord_listen", "udp"]),
        ("supervisord", "supervisord_stopwaitsecs=5", ["supervisord_stopwaitsecs (5) must be greater than"]),
        ("nginx_lb", "nginx_lb_balance=fastest", ["nginx_lb_balance", "fastest"]),
        ("haproxy_lb", "haproxy_lb_timeout_tunnel=30", ["haproxy_lb_timeout_tunnel (30 s) above the app's ping interval"]),
        # The app's longest silence, 2 x 20 + 20 s, from what echo_app published (before: interval + timeout, 40 s).
        ("nginx_lb", "nginx_lb_proxy_timeout=50", ["nginx_lb_proxy_timeout (50 s) above the app's ping interval, twice", "(60 s on the hosts of app"]),
        # Beyond Linux's default fs.nr_open (1048576 files per process): no host allows it unraised.
        ("nginx_lb", "wsfleet_target_connections=600000", ["nginx_lb_target_connections (600000", "needs 1201024 open files"]),
        ("haproxy_lb", "wsfleet_target_connections=600000", ["haproxy_lb_target_connections (600000", "needs 1201088 open files"]),
        ("supervisord", "supervisord_restart_mode=serial", ["supervisord_restart_mode", "serial", "rolling"]),
        ("supervisord", "supervisord_restart_pause=-1", ["supervisord_restart_pause >= 0 (got -1)"]),
        ("nginx_lb", "nginx_lb_client_header_timeout=0", ["nginx_lb_client_header_timeout", ">= 1"]),
        ("haproxy_lb", "haproxy_lb_timeout_http_request=0", ["haproxy_lb_timeout_http_request >= 1"]),
        ("nginx_lb", "nginx_lb_send_timeout=0", ["nginx_lb_send_timeout >= 1"]),
        ("nginx_lb", "nginx_lb_worker_processes=0", ["nginx_lb_worker_processes auto or 1-1024 (got '0')"]),
        ("nginx_lb", '{"nginx_lb_worker_processes": "2\\n"}', ["nginx_lb_worker_processes auto or 1-1024"]),
        ("haproxy_lb", "haproxy_lb_send_timeout=-1", ["haproxy_lb_send_timeout >= 0"]),
        # A log target with a space would add a word to HAProxy's log line (a second facility, a level).
        ("haproxy_lb", '{"haproxy_lb_log": "/dev/log local1"}', ["haproxy_lb_log must be auto, none, stdout", '"/dev/log local1"']),
        ("haproxy_lb", '{"haproxy_lb_log": "/dev/log\\n    user root"}', ["haproxy_lb_log must be auto, none, stdout"]),
        # A value that ends up in the config file: no spaces or newlines (a newline would add a directive).
        ("nginx_lb", '{"nginx_lb_tls_ciphers": ["HIGH;\\n    include /etc/passwd"]}', ["nginx_lb_tls_ciphers must be a list of OpenSSL cipher names"]),
        ("haproxy_lb", '{"haproxy_lb_tls_ciphers": ["HIGH ALL"]}', ["haproxy_lb_tls_ciphers must be a list of OpenSSL cipher names"]),
        ("nginx_lb", '{"nginx_lb_default_site": true, "nginx_lb_port": 80}', ["nginx_lb_default_site only with nginx_lb_port other than 80"]),
        ("haproxy_lb", '{"haproxy_lb_stats_password": "two words"}', ["haproxy_lb_stats_password printable characters without spaces"]),
        ("supervisord", "supervisord_restart_signal=KILL", ["supervisord_restart_signal", "KILL", "USR1"]),
        ("haproxy_lb", '{"haproxy_lb_stats_user": "admin user"}', ["haproxy_lb_stats_user must be letters, digits"]),
        ("supervisord", "supervisord_connections_per_process=1100000", ["supervisord_connections_per_process (1100000)", "needs 1101024"]),
        # System directories are never taken over (owner, group, mode, and a tmpfiles.d entry for every boot).
        ("supervisord", "supervisord_socket_dir=/tmp", ["supervisord_socket_dir='/tmp' is a top-level directory"]),
        ("supervisord", "supervisord_socket_dir=/var/run", ["supervisord_socket_dir='/var/run' is a system directory"]),
        ("supervisord", "supervisord_socket_dir=/run/user", ["supervisord_socket_dir='/run/user' is a system directory"]),
        ("supervisord", "supervisord_socket_dir=/run/wsfleet/../lock", ["supervisord_socket_dir='/run/wsfleet/../lock' must be an absolute path"]),
        ("supervisord", '{"supervisord_socket_dir": "/run/ws fleet"}', ["supervisord_socket_dir='/run/ws fleet' must be an absolute path of letters"]),
        # A newline would add lines to the program file: [program:evil] with user=root.
        ("supervisord", '{"supervisord_program_env": {"A": "1\\"\\n[program:evil]\\ncommand=/bin/sh\\nuser=root"}}',
         ["supervisord_program_env.A must not contain control characters"]),
        ("supervisord", '{"supervisord_program_command": "/bin/true\\nuser=root"}', ["supervisord_program_command must not contain control characters"]),
        # What supervisord itself reads in a command: a comment, a quote it splits on, an expansion.
        ("supervisord", '{"supervisord_program_command": "/bin/true ; user=root"}', ['supervisord_program_command ("/bin/true ; user=root") must not hold']),
        ("supervisord", '{"supervisord_program_command": "/bin/true # x"}', ["supervisord_program_command", "drops the rest as a comment"]),
        ("supervisord", '{"supervisord_program_command": "/bin/echo \\"x"}', ["supervisord_program_command", "a quote or a backslash"]),
        ("supervisord", '{"supervisord_program_command": "/bin/echo 100%"}', ["supervisord_program_command", "%(process_num)02d"]),
        ("echo_app", '{"echo_app_command": "wsfleet-echo\\nrm -rf /srv"}', ["echo_app_command must be one line"]),
        ("supervisord", '{"supervisord_bind_address": "0.0.0.0\\tx", "supervisord_listen": "tcp"}', ["supervisord_bind_address must not contain control characters"]),
        # Directories of the app: never a system one.
        ("echo_app", "echo_app_root=/usr/local", ["echo_app_root='/usr/local' is a system directory"]),
        ("echo_app", "echo_app_config_dir=/etc", ["echo_app_config_dir='/etc' is a top-level directory"]),
        ("echo_app", "echo_app_config_dir=/etc/nginx", ["echo_app_config_dir='/etc/nginx' is a system directory"]),
        ("echo_app", f"echo_app_config_dir={SCRATCH['echo_app_root']}/etc",
         [f"echo_app_config_dir ({SCRATCH['echo_app_root']}/etc) and echo_app_root ({SCRATCH['echo_app_root']}) must not contain each other"]),
        # Accounts: never root, never one the role did not create (the user module would rewrite its shell and home).
        ("echo_app", "echo_app_user=root", [f"echo_app_user=root / echo_app_group={SCRATCH['echo_app_group']}: the app never runs as root"]),
        ("echo_app", "echo_app_group=root", ["echo_app_group=root: the app never runs as root"]),
        ("echo_app", "echo_app_user=nobody", ["echo_app_user=nobody is an existing account", "echo_app_user_create=false"]),
        ("echo_app", "echo_app_group=daemon", ["echo_app_group=daemon is an existing account or group"]),
        ("echo_app", '{"echo_app_user_create": false, "echo_app_user": "wsfleet-nobody-here"}', ["echo_app_user_create is false", "must already exist"]),
        ("supervisord", "supervisord_program_user=root", ["supervisord_program_user 'root' has uid 0"]),
        # Every account and group name has the form of one (INJECTIONS below tries each character on echo_app_group).
        ("echo_app", '{"echo_app_user": "app user"}', ['echo_app_user must be a user or group name', '(got "app user")']),
        ("supervisord", '{"supervisord_program_user": "nobody\\nuser=root"}', ["supervisord_program_user must be a user or group name"]),
        ("supervisord", '{"supervisord_socket_group": "sock 0700"}', ["supervisord_socket_group must be a user or group name"]),
        ("nginx_lb", '{"nginx_lb_socket_group": "www;"}', ["nginx_lb_socket_group must be a user or group name"]),
        ("haproxy_lb", '{"haproxy_lb_socket_group": "sock\\n    user root"}', ["haproxy_lb_socket_group must be a user or group name"]),
        ("supervisord", "supervisord_socket_group=root", ["supervisord_socket_group=root is an existing group", "gid 0"]),
        ("supervisord", "supervisord_socket_group=daemon", ["supervisord_socket_group=daemon is an existing group", "primary group of: daemon"]),
        # Typos: refused under wsfleet_strict_variables, naming the closest variable (a warning without it: below).
        ("supervisord", '{"supervisord_numproc": 3, "wsfleet_strict_variables": true}',
         ["supervisord_numproc is not a variable of this role (did you mean supervisord_numprocs?)", "wsfleet_strict_variables is true"]),
        ("haproxy_lb", '{"haproxy_lb_timout_tunnel": 30, "wsfleet_strict_variables": "yes"}', ["did you mean haproxy_lb_timeout_tunnel?"]),
        ("nginx_lb", '{"nginx_lb_prot": 8443, "wsfleet_strict_variables": true}', ["did you mean nginx_lb_port?"]),
        ("echo_app", '{"echo_app_max_sise": 10, "wsfleet_strict_variables": true}', ["did you mean echo_app_max_size?"]),
        # The fleet's own variables (roles/wsfleet, a dependency of every role): a typo there changed nothing before.
        ("supervisord", '{"wsfleet_target_connection": 50000, "wsfleet_strict_variables": true}',
         ["wsfleet_target_connection is not a variable of this role (did you mean wsfleet_target_connections?)"]),
        # Origins as browsers send them: a scheme, no path; a blank one would have allowed every origin.
        ("echo_app", '{"echo_app_origins": ["example.com"]}', ['echo_app_origins has "example.com": each must be an origin']),
        ("echo_app", '{"echo_app_origins": ["https://chat.example/"]}', ['echo_app_origins has "https://chat.example/"']),
        ("echo_app", '{"echo_app_origins": ["https://ok.example", " "]}', ['echo_app_origins has " "']),
        ("echo_app", '{"echo_app_origins": ["https://Chat.Example", "wss://x.example", "https://a.example,https://b.example"]}',
         ['"https://Chat.Example", "wss://x.example", "https://a.example,https://b.example"']),
        # Only the rules that fail are named (before: one message listing every rule of the role).
        ("echo_app", "echo_app_backlog=0", ["Invalid echo_app settings: echo_app_backlog must be >= 1 (got 0)."]),
        ("echo_app", '{"echo_app_close_timeout": 0, "echo_app_env": {"1X": "a"}}',
         ['echo_app_close_timeout must be > 0 (got 0); echo_app_env keys must be environment variable names, letters, digits and _ not starting with a digit (got "1X").']),
        # TLS material is parsed before anything is written.
        ("haproxy_lb", '{"haproxy_lb_tls": true, "haproxy_lb_tls_certificate": "not a certificate", "haproxy_lb_tls_key": "not a key"}',
         ["haproxy_lb_tls_certificate holds no PEM certificate"]),
        ("nginx_lb", '{"nginx_lb_tls": true, "nginx_lb_tls_certificate_file": "/nonexistent/tls.crt", "nginx_lb_tls_key_file": "/nonexistent/tls.key"}',
         ["nginx_lb_tls_certificate_file=/nonexistent/tls.crt is not a file on the controller"]),
        # A boolean typed on the command line is a string: taken as the boolean, not as a bare conditional.
        ("haproxy_lb", "haproxy_lb_tls=true", ["haproxy_lb_tls is true: give the certificate"]),
        ("nginx_lb", "nginx_lb_tls=yes", ["nginx_lb_tls is true: give the certificate"]),
        # What goes into a config line: an address or a network, and nothing after it (a newline least).
        ("haproxy_lb", '{"haproxy_lb_process_header_sources": ["10.0.0.0/8 bind :9999"]}', ["haproxy_lb_process_header_sources has"]),
        ("nginx_lb", '{"nginx_lb_process_header_sources": ["10.0.0.0/8; 0.0.0.0/0"]}', ["nginx_lb_process_header_sources has"]),
        ("nginx_lb", '{"nginx_lb_process_header_sources": ["10.0.0.0/8\\n"]}', ["nginx_lb_process_header_sources has"]),
        ("haproxy_lb", '{"haproxy_lb_stats_user": "admin\\n"}', ["haproxy_lb_stats_user must be letters"]),
        ("supervisord", '{"supervisord_program_name": "echo\\n"}', ["supervisord_program_name"]),
        # Metrics listeners: an address of the host and nothing else on the config line.
        ("echo_app", '{"echo_app_metrics_address": "0.0.0.0:9410"}', ["echo_app_metrics_address must be an IPv4 or IPv6 address", '"0.0.0.0:9410"']),
        ("echo_app", "echo_app_metrics_port=0", ["echo_app_metrics_port must be 1-65535 (got 0)"]),
        ("haproxy_lb", '{"haproxy_lb_stats_address": "127.0.0.1\\n    bind :80"}', ["haproxy_lb_stats_address must be an IPv4 or IPv6 address"]),
        ("nginx_lb", '{"nginx_lb_stub_status_address": "localhost"}', ["nginx_lb_stub_status_address must be an IPv4 or IPv6 address", '"localhost"']),
        ("nginx_lb", '{"nginx_lb_exporter": true, "nginx_lb_stub_status_port": 0}', ["nginx_lb_exporter only with nginx_lb_stub_status_port above 0"]),
    ],
)
def test_bad_role_settings_fail_before_any_change(tmp_path: Path, role: str, extra: str, needles: list[str]) -> None:
    args = ["echo_app_close_timeout=10", extra] if role == "supervisord" else [extra]
    if role in ("nginx_lb", "haproxy_lb"):
        args.append("supervisord_numprocs=2")
    result = run_role(tmp_path, role, *args)
    assert_stopped_without_change(result, *needles)


# What a value written into a load balancer's config as it is could do: end the directive and start
# another (a newline, a ';', a brace), open a quoted string, or comment out the rest of the line. Each
# field refuses each of them by name, before any change (nginx -t and haproxy -c would accept most).
INJECTIONS = {"newline": "x\n    return 200 pwned", "semicolon": "x; return 200 pwned", "brace": "x { return 200; }",
              "quote": 'x" return "200', "hash": "x # return"}


@pytest.mark.parametrize("kind", INJECTIONS)
@pytest.mark.parametrize(
    ("role", "field", "needle"),
    [
        ("nginx_lb", "nginx_lb_server_name", "nginx_lb_server_name must be host names separated by single spaces"),
        ("nginx_lb", "nginx_lb_bind_address", "nginx_lb_bind_address must be empty (every address of the host) or one IPv4"),
        ("haproxy_lb", "haproxy_lb_bind_address", "haproxy_lb_bind_address must be empty (every address of the host) or one IPv4"),
        # An account or group name: in tmpfiles.d lines, supervisord's user=, HAProxy's group (the other names: below).
        ("echo_app", "echo_app_group", "echo_app_group must be a user or group name"),
    ],
)
def test_a_value_that_would_add_config_is_refused_before_any_change(tmp_path: Path, role: str, field: str, needle: str, kind: str) -> None:
    result = run_role(tmp_path, role, json.dumps({field: INJECTIONS[kind]}))
    assert_stopped_without_change(result, needle, json.dumps(INJECTIONS[kind])[1:-1])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["echo_app_ping_interval=often"], "echo_app_ping_interval must be a number (got 'often')"),
        (["supervisord_restart_pause=soon"], "supervisord_restart_pause must be a whole number (got 'soon')"),
        (["wsfleet_lb=haproxy", "haproxy_lb_tls=maybe"], "haproxy_lb_tls must be true or false (yes/no, 1/0 and on/off too) (got 'maybe')"),
        (["nginx_lb_port=eighty"], "nginx_lb_port must be a whole number (got 'eighty')"),
        # Choices too: the fleet's load balancer kind (roles/wsfleet), and a role's option.
        (["wsfleet_lb=apache"], "wsfleet_lb must be one of nginx, haproxy (got 'apache')"),
        (["wsfleet_target_connections=many"], "wsfleet_target_connections must be a whole number (got 'many')"),
        (["wsfleet_lb_port=eighty"], "wsfleet_lb_port must be a whole number (got 'eighty')"),
        (["nginx_lb_balance=fastest"], "nginx_lb_balance must be one of least_conn, round_robin, ip_hash, random_two_least_conn (got 'fastest')"),
        # The rest of the argument spec (here a list given a mapping), in the same task (role_variables).
        (['{"echo_app_origins": {"a": 1}}'], "argument 'echo_app_origins' is of type dict and we were unable to convert to list"),
    ],
)
def test_a_value_that_is_not_of_its_type_is_named_with_what_fits(tmp_path: Path, extra: list[str], needle: str) -> None:
    """Through the preflight play (site.yml's first), a value that does not convert to its option's
    type is named with what fits, before anything else is checked. Ansible's own check of the
    argument spec said "<class '...._AnsibleTaggedStr'> cannot be converted to a float" and printed
    the whole spec."""
    result = run_playbook(tmp_path, "- ansible.builtin.import_playbook: wsfleet.fleet.preflight\n", *extra, "--check")
    assert_stopped_without_change(result, needle)
    output = result.stdout + result.stderr
    assert "_AnsibleTagged" not in output and "argument_spec_data" not in output, output[-3000:]


def test_a_metrics_port_among_the_processes_ports_is_refused(tmp_path: Path) -> None:
    """The exporter's port (echo_app's) and the processes' ports (supervisord's) are checked together,
    through the fact the echo_app role publishes, before anything changes: without the check the
    exporter would fail to bind after the app was deployed."""
    result = run_playbook(
        tmp_path, "- ansible.builtin.import_playbook: wsfleet.fleet.preflight\n",
        "supervisord_listen=tcp", "supervisord_port_base=9400", "supervisord_numprocs=20", "echo_app_metrics_port=9410", "--check")
    assert_stopped_without_change(result, "echo_app_metrics_port 9410 is one of the app's ports, supervisord_port_base 9400 to 9419")


def test_a_role_parameter_the_preflight_play_did_not_see_is_checked_by_the_role(tmp_path: Path) -> None:
    """After the preflight play (site.yml's first), a role skips the checks that play already passed
    on the host, but only for the same values: a role parameter, which the preflight play never sees,
    makes the role run its checks again. (A flag "checked" instead of the values would let this one
    through to the configuration.) Check mode: nothing on this machine changes even if it did."""
    result = run_playbook(
        tmp_path,
        "- ansible.builtin.import_playbook: wsfleet.fleet.preflight\n"
        "- name: The role with a parameter\n  hosts: lb\n  gather_facts: false\n"
        "  roles:\n    - role: wsfleet.fleet.haproxy_lb\n      haproxy_lb_timeout_tunnel: 30\n",
        "wsfleet_lb=haproxy", "wsfleet_target_connections=1000", "supervisord_numprocs=2", "--check",
    )
    output = result.stdout + result.stderr
    message = "haproxy_lb_timeout_tunnel (30 s) above the app's ping interval"
    assert message in output and "PLAY [The role with a parameter]" in output, output[-3000:]
    assert output.index("PLAY [The role with a parameter]") < output.index(message), output[-3000:]
    assert_stopped_without_change(result, message)


def test_an_existing_directory_the_role_did_not_make_is_refused(tmp_path: Path) -> None:
    """A directory that already holds other files (the operator's) is not taken over: not the
    socket directory (owned by someone else), not the app's root or config directory."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine\n")
    before = theirs.stat()
    result = run_role(tmp_path, "supervisord", "echo_app_close_timeout=10", f"supervisord_socket_dir={theirs}")
    assert_stopped_without_change(result, f"supervisord_socket_dir={theirs} already exists", "owned by root:root")
    result = run_role(tmp_path, "echo_app", f"echo_app_root={theirs}")
    assert_stopped_without_change(result, f"echo_app_root={theirs} already holds notes.txt")
    result = run_role(tmp_path, "echo_app", f"echo_app_config_dir={theirs / 'notes.txt'}")
    assert_stopped_without_change(result, f"echo_app_config_dir={theirs / 'notes.txt'} is not a directory")
    after = theirs.stat()
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    assert (theirs / "notes.txt").read_text() == "mine\n"


def test_a_typo_warns_naming_the_closest_variable(tmp_path: Path) -> None:
    """Without wsfleet_strict_variables the run goes on (here it stops at a real error just after),
    and the typo is a warning that names the variable meant."""
    result = run_role(tmp_path, "supervisord", "echo_app_close_timeout=10", "supervisord_numproc=3", "supervisord_numprocs=0")
    assert_stopped_without_change(result, "supervisord_numprocs 1..100")
    output = " ".join((result.stdout + result.stderr).split())
    assert "[WARNING]: supervisord_numproc is not a variable of this role (did you mean supervisord_numprocs?), so it changes nothing." in output, output[-3000:]


def certificate_and_key(tmp_path: Path, name: str, passphrase: bytes | None = None) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM files), made with the controller's cryptography."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return cert_path, key_path


@pytest.mark.parametrize("lb", ["nginx_lb", "haproxy_lb"])
def test_a_key_of_another_certificate_or_with_a_passphrase_is_refused_before_any_write(tmp_path: Path, lb: str) -> None:
    """Before, such material replaced the live files and only the config check refused it: the next
    restart of a running TLS load balancer would have failed."""
    cert_a, _ = certificate_and_key(tmp_path, "a.example")
    _, key_b = certificate_and_key(tmp_path, "b.example")
    result = run_role(tmp_path, lb, "supervisord_numprocs=2",
                      f'{{"{lb}_tls": true, "{lb}_tls_certificate_file": "{cert_a}", "{lb}_tls_key_file": "{key_b}"}}')
    assert_stopped_without_change(result, f"{lb}_tls_key_file is not the key of the first certificate in {lb}_tls_certificate_file (CN=a.example)")
    cert_c, key_c = certificate_and_key(tmp_path, "c.example", passphrase=b"secret")
    result = run_role(tmp_path, lb, "supervisord_numprocs=2",
                      f'{{"{lb}_tls": true, "{lb}_tls_certificate": {json.dumps(cert_c.read_text())}, "{lb}_tls_key": {json.dumps(key_c.read_text())}}}')
    assert_stopped_without_change(result, f"{lb}_tls_key is encrypted")
    assert "BEGIN ENCRYPTED PRIVATE KEY" not in result.stdout + result.stderr  # the key is never shown


# With these (and the scratch names of the inventory) the preflight passes on this machine: sized below its
# cap of 20000 open files per process.
PASSES_HERE = ("echo_app_close_timeout=10", "wsfleet_target_connections=4000")


def test_no_typo_is_reported_when_there_is_none(tmp_path: Path) -> None:
    """Every role's typo check reads its own options: the fleet role's check, run again after the other
    roles' checks (site.yml runs it in each play), finds none of the fleet's variables unknown."""
    result = run_playbook(
        tmp_path,
        f"- ansible.builtin.import_playbook: {ROOT}/playbooks/preflight.yml\n"
        "- hosts: all\n  connection: local\n  gather_facts: false\n  roles:\n    - role: wsfleet.fleet.wsfleet\n",
        *PASSES_HERE,
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0 and "PLAY RECAP" in output, output[-3000:]
    last_play = output[output.rindex("PLAY ["):]
    assert "wsfleet.fleet.wsfleet : Report variables this role does not know" in last_play, last_play[-3000:]
    assert "is not a variable of this role" not in output, output[-3000:]
    assert result.changed_paths == [], result.changed_paths


UBUNTU = {"os_family": "Debian", "distribution": "Ubuntu", "distribution_version": "24.04", "distribution_major_version": "24"}
ROCKY = {"os_family": "RedHat", "distribution": "Rocky", "distribution_version": "9.4", "distribution_major_version": "9"}
PREFLIGHT = "- ansible.builtin.import_playbook: wsfleet.fleet.preflight\n"


def debian(version: str) -> dict[str, str]:
    return {"os_family": "Debian", "distribution": "Debian", "distribution_version": f"{version}.1", "distribution_major_version": version}


@pytest.mark.parametrize("entry", ["preflight", "supervisord", "nginx_lb"])
def test_an_operating_system_the_roles_are_not_tested_on_is_refused(tmp_path: Path, entry: str) -> None:
    """A Debian derivative the roles were never run on (its facts say Ubuntu 24.04): refused before any
    change, through site.yml's first play and through a role used alone, naming the host, what it
    runs, what the roles are tested on and the opt-in. Before, the run went on into apt."""
    result = (run_playbook(tmp_path, PREFLIGHT, *PASSES_HERE, os=UBUNTU) if entry == "preflight"
              else run_role(tmp_path, entry, *PASSES_HERE, os=UBUNTU))
    assert_stopped_without_change(result, "localhost runs Ubuntu 24.04 (os_family Debian): the wsfleet roles are tested on Debian 12 and 13 only",
                                  "Set wsfleet_allow_untested_os: true to run them on this Debian-family system anyway (with a warning).")


def test_another_family_is_refused_even_with_the_opt_in(tmp_path: Path) -> None:
    result = run_playbook(tmp_path, PREFLIGHT, *PASSES_HERE, "wsfleet_allow_untested_os=true", os=ROCKY)
    assert_stopped_without_change(result, "localhost runs Rocky 9.4 (os_family RedHat): the wsfleet roles are tested on Debian 12 and 13 only",
                                  "wsfleet_allow_untested_os cannot let it through: the roles install and look up packages with apt and dpkg")


@pytest.mark.parametrize(("os", "opt_in", "warned"), [(UBUNTU, True, True), (debian("12"), False, False), (debian("13"), False, False)],
                         ids=["ubuntu-opted-in", "debian12", "debian13"])
def test_a_tested_system_or_an_opted_in_derivative_passes_the_preflight(tmp_path: Path, os: dict[str, str], opt_in: bool, warned: bool) -> None:
    """The whole preflight passes (changing nothing); an opted-in derivative with a warning that says
    what it runs and why the run goes on, a tested Debian without one."""
    result = run_playbook(tmp_path, PREFLIGHT, *PASSES_HERE, *(["wsfleet_allow_untested_os=true"] if opt_in else []), os=os)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0 and "PLAY RECAP" in output, output[-3000:]
    warning = ("[WARNING]: localhost runs Ubuntu 24.04 (os_family Debian), not Debian 12 and 13, which the wsfleet roles are tested on: "
               "going on because wsfleet_allow_untested_os is true.")
    assert (warning in output) is warned, output[-3000:]
    assert "which the wsfleet roles are tested on" not in output or warned, output[-3000:]
    assert result.changed_paths == [], result.changed_paths
