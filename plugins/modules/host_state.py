#!/usr/bin/python
# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""What a role's checks need to know about a host, looked up in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_state
short_description: What a role's checks need to know about a host, in one call
version_added: 0.1.0
description:
  - Looks up, in one module run, what the wsfleet roles check before their first change - the
    host's accounts and groups, paths and what directories hold, a Python interpreter's version and
    platform, OS packages, the open-file limit a process can get, services, whether a port is taken,
    and config files' content. Each lookup was a task of its own (C(getent), C(stat), C(find),
    C(command), C(service_facts), C(wait_for), C(slurp)), each a module run on the host; a run with
    nothing to change spent most of its time on them.
  - It only reads - nothing on the host changes, in check mode or not - and each lookup is made only
    when its option is given.
options:
  accounts:
    description: Return the passwd and group databases (C(getent passwd), C(getent group)).
    type: bool
    default: false
  paths:
    description: Paths to look at (not followed when a link); a directory's entries are listed.
    type: list
    elements: path
    default: []
  globs:
    description: Shell patterns (C(*), C(?), C([...])) whose matching paths are returned, sorted.
    type: list
    elements: str
    default: []
  checksums:
    description:
      - Directories whose regular files are returned with their SHA-1, mode, owner and group (a
        directory that does not exist returns none).
    type: list
    elements: path
    default: []
  python:
    description: A Python interpreter whose version, machine and glibc version are returned.
    type: path
  packages:
    description: OS package names whose dpkg status is returned.
    type: list
    elements: str
    default: []
  open_files:
    description:
      - An open-file count; returns whether a process started by root can have it as both its soft
        and hard RLIMIT_NOFILE, and the hard limit it inherits now.
    type: int
  services:
    description: Service names (C(nginx), not C(nginx.service)) whose state is returned.
    type: list
    elements: str
    default: []
  port:
    description: A TCP port, and the address to try it on; returns whether something accepts connections there.
    type: dict
    suboptions:
      host:
        description: Address to connect to.
        type: str
        default: 127.0.0.1
      port:
        description: Port.
        type: int
        required: true
  read:
    description: Text files whose content is returned (empty when missing).
    type: list
    elements: path
    default: []
  supervisor:
    description:
      - supervisord's config file (Debian's is C(/etc/supervisor/supervisord.conf)). Returns the state
        of every process that supervisord runs, asked over the control socket the file names
        (C([unix_http_server] file)) with supervisord's XML-RPC C(supervisor.getAllProcessInfo) - what
        C(supervisorctl status) shows, without starting supervisorctl. None when the file or the socket
        is missing or supervisord does not answer.
    type: path
author:
  - wsfleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Look at the host
  wsfleet.fleet.host_state:
    accounts: true
    paths: [/opt/wsfleet-echo, /etc/wsfleet-echo]
    python: /usr/bin/python3
    packages: [python3-venv]
    open_files: 10240
  register: __echo_app_host
"""

RETURN = r"""
passwd:
  description: With O(accounts), each user's fields after the name, as C(ansible.builtin.getent) gives them.
  type: dict
  returned: when accounts
  sample: {wsfleet: ["x", "998", "998", "wsfleet echo app (wsfleet.fleet.echo_app)", "/opt/wsfleet-echo", "/usr/sbin/nologin"]}
group:
  description: With O(accounts), each group's fields after the name (password, gid, members).
  type: dict
  returned: when accounts
  sample: {wsfleet: ["x", "998", ""]}
paths:
  description:
    - Each path of O(paths) - exists, isdir, isreg, islnk, and when it exists uid, gid, pw_name,
      gr_name, mode (an octal string) and, for a directory, entries (names, sorted).
  type: dict
  returned: always
  sample: {/opt/wsfleet-echo: {exists: true, isdir: true, isreg: false, islnk: false, mode: "0755", entries: [bin, venv]}}
globs:
  description: Each pattern of O(globs) and the paths it matches, sorted (none when nothing matches).
  type: dict
  returned: always
  sample: {"/opt/wsfleet-echo/venv/lib/python3.11/site-packages/*.dist-info": [/opt/wsfleet-echo/venv/lib/python3.11/site-packages/websockets-15.0.1.dist-info]}
checksums:
  description: For each directory of O(checksums), its regular files by name - checksum, mode, pw_name, gr_name.
  type: dict
  returned: always
python:
  description: With O(python), C(python) (X.Y), C(machine) and C(glibc) (empty when not glibc); the module fails when the interpreter does not run.
  type: dict
  returned: when python
packages:
  description: Each package of O(packages) and its dpkg status (C(installed), C(not-installed), C(config-files), ...; C(unknown) when dpkg does not know it).
  type: dict
  returned: always
open_files:
  description: With O(open_files) - wanted, hard (the limit inherited now), ok.
  type: dict
  returned: when open_files
services:
  description: Each service of O(services) - C(running), C(stopped), or C(missing) when no unit or init script has that name.
  type: dict
  returned: always
enabled:
  description:
    - Each service of O(services) and whether it starts at boot - a systemd unit whose state is
      C(enabled), or an init script linked from C(/etc/rc[2-5].d) by a start link.
  type: dict
  returned: always
port_taken:
  description: With O(port), whether something accepted a connection on it.
  type: bool
  returned: when port
read:
  description: Each file of O(read) and its content (empty when missing or unreadable).
  type: dict
  returned: always
processes:
  description:
    - With O(supervisor), each process supervisord runs (C(group:name), or C(name) for a program alone
      in its group) and its state (C(RUNNING), C(STOPPED), ...).
  type: dict
  returned: when supervisor
  sample: {"echo:echo_00": RUNNING, "echo:echo_01": RUNNING, wsfleet-echo-metrics: RUNNING}
"""

import configparser
import glob
import grp
import hashlib
import http.client
import os
import pwd
import resource
import socket
import stat
import xmlrpc.client

from ansible.module_utils.basic import AnsibleModule

PROBE = (
    "import json, platform, sys;"
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2],"
    " 'machine': platform.machine(), 'glibc': platform.libc_ver()[1]}))"
)


def _getent(module: AnsibleModule, database: str) -> dict:
    rc, out, err = module.run_command(["getent", database])
    if rc != 0:
        module.fail_json(msg=f"getent {database} failed: {err.strip()}")
    records = {}
    for line in out.splitlines():
        fields = line.split(":")
        records.setdefault(fields[0], fields[1:])
    return records


def _name(lookup, ident: int) -> str:
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def _owner_and_mode(st: os.stat_result) -> dict:
    return {
        "pw_name": _name(pwd.getpwuid, st.st_uid),
        "gr_name": _name(grp.getgrgid, st.st_gid),
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
    }


def _path(path: str) -> dict:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False, "isdir": False, "isreg": False, "islnk": False}
    found = {
        "exists": True,
        "isdir": stat.S_ISDIR(st.st_mode),
        "isreg": stat.S_ISREG(st.st_mode),
        "islnk": stat.S_ISLNK(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        **_owner_and_mode(st),
    }
    if found["isdir"]:
        found["entries"] = sorted(os.listdir(path))
    return found


def _checksums(module: AnsibleModule, directory: str) -> dict:
    files = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return files
    except NotADirectoryError:
        module.fail_json(msg=f"{directory} is not a directory (its files were to be checksummed)")
    for name in sorted(names):
        path = os.path.join(directory, name)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            continue
        digest = hashlib.sha1()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files[name] = {"checksum": digest.hexdigest(), **_owner_and_mode(st)}
    return files


def _python(module: AnsibleModule, interpreter: str) -> dict:
    # An interpreter that does not exist fails the module in run_command, naming it.
    rc, out, err = module.run_command([interpreter, "-c", PROBE])
    if rc != 0:
        module.fail_json(msg=f"Could not run {interpreter} on this host to read its Python version: {(err or out).strip() or f'exit {rc}'}")
    return module.from_json(out)


def _packages(module: AnsibleModule, names: list) -> dict:
    found = {name: "unknown" for name in names}
    if not names:
        return found
    dpkg_query = module.get_bin_path("dpkg-query")
    if dpkg_query is None:
        module.fail_json(msg="dpkg-query is not on this host: the wsfleet roles install OS packages with dpkg and apt (Debian 12 or later).")
    # Exits 1 when one of the names is unknown to dpkg; the others are still listed.
    _rc, out, _err = module.run_command([dpkg_query, "--show", "--showformat=${Package} ${db:Status-Status}\n", *names])
    for line in out.splitlines():
        name, _space, status = line.partition(" ")
        if name in found and status:
            found[name] = status
    return found


def _open_files(module: AnsibleModule, wanted: int) -> dict:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # What the daemons' start does: set both limits in a new process (sh's ulimit -n sets both). It
    # fails when the number is above fs.nr_open, or above the hard limit without CAP_SYS_RESOURCE.
    rc, _out, _err = module.run_command(["sh", "-c", f"ulimit -n {int(wanted)}"])
    return {"wanted": wanted, "hard": "unlimited" if hard == resource.RLIM_INFINITY else hard, "ok": rc == 0}


def _services(module: AnsibleModule, names: list) -> tuple[dict, dict]:
    states, enabled = {}, {}
    systemd = os.path.isdir("/run/systemd/system")
    for name in names:
        if systemd:
            _rc, out, _err = module.run_command(["systemctl", "show", "--property=LoadState,SubState,UnitFileState", f"{name}.service"])
            props = dict(line.partition("=")[::2] for line in out.splitlines())
            if props.get("LoadState") in ("loaded", "masked") or props.get("SubState") == "running":
                states[name] = "running" if props.get("SubState") == "running" else "stopped"
                enabled[name] = props.get("UnitFileState") == "enabled"
                continue
        script = f"/etc/init.d/{name}"
        if not os.path.exists(script):
            states[name], enabled[name] = "missing", False
            continue
        rc, _out, _err = module.run_command([script, "status"])
        states[name] = "running" if rc == 0 else "stopped"
        enabled[name] = bool(glob.glob(f"/etc/rc[2345].d/S[0-9][0-9]{glob.escape(name)}"))
    return states, enabled


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: supervisord's control socket."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    # The connection goes to the socket's path: the URL's host is not used.
    def make_connection(self, host):  # pylint: disable=unused-argument
        return _UnixHTTPConnection(self._path)


def _processes(conf: str) -> dict:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=False)
    try:
        parser.read(conf)
        path = parser.get("unix_http_server", "file")
    except (configparser.Error, OSError):
        return {}
    proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_UnixTransport(path))
    try:
        infos = proxy.supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error, http.client.HTTPException):
        return {}
    return {(i["name"] if i["group"] == i["name"] else f"{i['group']}:{i['name']}"): i["statename"] for i in infos}


def _port_taken(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "accounts": {"type": "bool", "default": False},
            "paths": {"type": "list", "elements": "path", "default": []},
            "globs": {"type": "list", "elements": "str", "default": []},
            "checksums": {"type": "list", "elements": "path", "default": []},
            "python": {"type": "path"},
            "packages": {"type": "list", "elements": "str", "default": []},
            "open_files": {"type": "int"},
            "services": {"type": "list", "elements": "str", "default": []},
            "port": {
                "type": "dict",
                "options": {"host": {"type": "str", "default": "127.0.0.1"}, "port": {"type": "int", "required": True}},
            },
            "read": {"type": "list", "elements": "path", "default": []},
            "supervisor": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    result = {
        "changed": False,
        "paths": {path: _path(path) for path in params["paths"]},
        "globs": {pattern: sorted(glob.glob(pattern)) for pattern in params["globs"]},
        "checksums": {directory: _checksums(module, directory) for directory in params["checksums"]},
        "packages": _packages(module, params["packages"]),
        "read": {path: _read(path) for path in params["read"]},
    }
    result["services"], result["enabled"] = _services(module, params["services"])
    if params["accounts"]:
        result["passwd"] = _getent(module, "passwd")
        result["group"] = _getent(module, "group")
    if params["python"]:
        result["python"] = _python(module, params["python"])
    if params["open_files"] is not None:
        result["open_files"] = _open_files(module, params["open_files"])
    if params["port"]:
        result["port_taken"] = _port_taken(params["port"]["host"], params["port"]["port"])
    if params["supervisor"]:
        result["processes"] = _processes(params["supervisor"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
