"""The operator's path, exactly as README.md writes it (the user_path scenario).

The controller is a host of its own (Debian 13 and its Python): the unprivileged account `operator`,
which may not sudo and reaches no package index (its pip reads only a wheelhouse, as an offline
controller's would), makes its own virtualenv with Ansible in it; root installs the collection from
the tarball built from this tree into /usr/share/ansible/collections and removes every write bit.
The inventory is the README's "Use it on your hosts" example, taken from README.md by the test; the
only changes are the ones the README asks a reader to make: the host names and the backend addresses
become the containers' addresses (each must be found, so a README that renamed them fails here). The
hosts are reached over SSH as `deploy`, who may sudo (ssh_access.yml), with the account's default
key. Then the README's commands run as written: the converge, twice (the second must change
nothing), and the try-it lines (curl, websockets' own client).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from testinfra.utils.ansible_runner import AnsibleRunner

RESOURCES = Path(__file__).resolve().parent.parent
ROOT = RESOURCES.parent.parent.parent
README = ROOT / "README.md"
ACCOUNT, HOME = "operator", "/home/operator"
COLLECTIONS = "/usr/share/ansible/collections"  # in Ansible's default collections path
WHEELHOUSE = "/srv/wheelhouse"
RUNNER = AnsibleRunner.get_runner(os.environ["MOLECULE_INVENTORY_FILE"])
CONTROLLER = RUNNER.get_hosts("controller")[0]


def readme_blocks() -> tuple[str, str]:
    """The README's example inventory and its "Deploy, then try it" commands: the first yaml and sh
    blocks after the heading "## Use it on your hosts"."""
    text = README.read_text()
    section = text[text.index("\n## Use it on your hosts\n"):]
    inventory = re.search(r"^```yaml\n(.*?)^```$", section, re.S | re.M)
    commands = re.search(r"^```sh\n(.*?)^```$", section[inventory.end():], re.S | re.M)
    return inventory.group(1), commands.group(1)


def substitute(text: str, hosts: dict[str, dict], every: bool = True) -> str:
    """The README's host names and backend addresses replaced by the containers' addresses (each one
    must be in the inventory: a README that renamed them fails here, not silently elsewhere)."""
    for names in hosts.values():
        for key in ("readme_name", "readme_address"):
            if key in names:
                assert names[key] in text or not every, f"README.md no longer has {names[key]}: update the user_path scenario"
                text = text.replace(names[key], names["address"])
    return text


def on_controller(script: str, user: str = ACCOUNT, timeout: int = 900) -> subprocess.CompletedProcess:
    """A shell script on the controller host, as the operator (a login shell: its own PATH and HOME) or as root."""
    if user == ACCOUNT:
        command = ["docker", "exec", "-u", ACCOUNT, "-w", HOME, "-e", f"HOME={HOME}", CONTROLLER, "bash", "-lc", script]
    else:
        command = ["docker", "exec", CONTROLLER, "bash", "-c", script]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def pinned(name: str) -> str:
    """name==version as the controller virtualenv of `make test` pins it (requirements.txt)."""
    line = re.search(rf"^{re.escape(name)}==\S+$", (ROOT / "requirements.txt").read_text(), re.M)
    return line.group(0)


def download_tags(target: dict) -> list[str]:
    """pip's platform arguments for a host, from the collection's own filter (the role uses it too)."""
    spec = importlib.util.spec_from_file_location("wheel_download_tags", ROOT / "plugins/filter/wheel_download_tags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.wheel_download_tags(target)


def platform_of(container: str) -> dict:
    probe = ("import json, os, platform, sys; print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
             "'machine': os.uname().machine, 'glibc': platform.libc_ver()[1]}))")
    return json.loads(subprocess.run(["docker", "exec", container, "python3", "-c", probe],
                                     capture_output=True, text=True, check=True).stdout)


def recap_changed(output: str) -> int:
    return sum(int(n) for n in re.findall(r"\bchanged=(\d+)", output))


def installed_tree() -> str:
    """Every file of the installed collection with its checksum and mode."""
    listed = on_controller(f"cd {COLLECTIONS} && find . -printf '%p %m\\n' | sort && find . -type f -exec sha256sum {{}} + | sort",
                           user="root")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


@pytest.fixture(scope="module")
def fleet() -> dict[str, dict]:
    """Each host's README names and address, from molecule's inventory (the scenario's host_vars)."""
    return {name: RUNNER.get_variables(name) for name in RUNNER.get_hosts("lb") + RUNNER.get_hosts("app")}


@pytest.fixture(scope="module")
def controller(fleet):
    """The operator's machine set up as an operator would: a wheelhouse instead of a package index,
    Ansible in the account's own virtualenv, the collection installed by root and made read-only, the
    scenario's key as the account's default SSH key, the hosts' keys in known_hosts, the README's
    inventory in ~/hosts.yml. Returns the README's commands, with the hosts' addresses."""
    with tempfile.TemporaryDirectory(prefix="wsfleet-user-path-") as scratch:
        # The wheelhouse, made here (containers reach no package index): Ansible and websockets'
        # client for the controller, the app's build backend, the app's dependencies (the role's
        # pins) for each host's platform.
        wheelhouse = Path(scratch) / "wheelhouse"
        pins = yaml.safe_load((ROOT / "roles/echo_app/vars/main.yml").read_text())["__echo_app_pins"][0]["requirements"]
        downloads = [(platform_of(CONTROLLER), [pinned("ansible-core"), pinned("ansible"), pinned("websockets")])]
        downloads += [(platform_of(name), pins) for name in fleet]
        for target, requirements in downloads:
            fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--dest", wheelhouse,
                                      *download_tags(target), *requirements], capture_output=True, text=True, timeout=600)
            assert fetched.returncode == 0, fetched.stderr
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--dest", wheelhouse, "setuptools>=68", "wheel"],
                                 capture_output=True, text=True, timeout=600)
        assert fetched.returncode == 0, fetched.stderr
        built = subprocess.run([Path(sys.executable).parent / "ansible-galaxy", "collection", "build", "--output-path",
                                Path(scratch) / "dist", ROOT], capture_output=True, text=True, timeout=300)
        assert built.returncode == 0, built.stdout + built.stderr
        tarball = next((Path(scratch) / "dist").glob("wsfleet-fleet-*.tar.gz"))
        key = Path(next(iter(fleet.values()))["ansible_ssh_private_key_file"])
        for source, dest in ((wheelhouse, WHEELHOUSE), (tarball, f"/srv/{tarball.name}"), (key, f"{HOME}/id_ed25519")):
            subprocess.run(["docker", "cp", source, f"{CONTROLLER}:{dest}"], check=True, capture_output=True)
        inventory, commands = readme_blocks()
        hosts = substitute(inventory, fleet)

    # What root does on the operator's machine: the wheelhouse readable, the key handed over.
    done = on_controller(f"chmod -R a+rX {WHEELHOUSE} && install -d -o {ACCOUNT} -m 0700 {HOME}/.ssh"
                         f" && install -o {ACCOUNT} -m 0600 {HOME}/id_ed25519 {HOME}/.ssh/id_ed25519 && rm {HOME}/id_ed25519",
                         user="root")
    assert done.returncode == 0, done.stderr
    # The account's pip knows only the wheelhouse; it makes its own virtualenv with Ansible and
    # websockets (the try-it client); it trusts the hosts' keys; it keeps the README's inventory.
    setup = "\n".join([
        "set -euo pipefail",
        "mkdir -p ~/.config/pip",
        f"printf '[global]\\nno-index = true\\nfind-links = {WHEELHOUSE}\\n' > ~/.config/pip/pip.conf",
        "python3 -m venv ~/venv",
        f"~/venv/bin/pip install -q {pinned('ansible-core')} {pinned('ansible')} {pinned('websockets')}",
        "echo 'export PATH=\"$HOME/venv/bin:$PATH\"' >> ~/.profile",
        f"ssh-keyscan -T 10 {' '.join(v['address'] for v in fleet.values())} > ~/.ssh/known_hosts 2>/dev/null",
        "cat > ~/hosts.yml <<'INVENTORY'",
        hosts.rstrip("\n"),
        "INVENTORY",
    ])
    done = on_controller(setup)
    assert done.returncode == 0, done.stdout + done.stderr
    assert on_controller("sudo -n true").returncode != 0, "the operator must not be able to become root on the controller"
    # Root installs the collection as the README's Install says, into a system directory, and
    # makes it read-only (a copy left by an earlier verify of the same containers goes first).
    done = on_controller(f"rm -rf {COLLECTIONS}/ansible_collections/wsfleet"
                         f" && {HOME}/venv/bin/ansible-galaxy collection install -p {COLLECTIONS} /srv/{tarball.name}"
                         f" && chmod -R a-w {COLLECTIONS}", user="root")
    assert done.returncode == 0, done.stdout + done.stderr
    return substitute(commands, fleet, every=False)


def test_the_readme_path_converges_as_written_then_changes_nothing_and_answers(controller):
    """The README's converge, as the operator, on fresh hosts: it succeeds; the second run changes
    nothing; the installed collection is left as installed; the app wheel was built in the account's
    own cache (the role's default, under its home); the try-it commands answer."""
    commands = [line.split("#")[0].strip() for line in controller.splitlines() if line.strip()]
    converge = next(c for c in commands if c.startswith("ansible-playbook "))
    before = installed_tree()
    for attempt, expect_changes in (("first", True), ("second", False)):
        result = on_controller(converge)
        assert result.returncode == 0, f"{attempt} run:\n" + result.stdout[-6000:] + result.stderr[-3000:]
        assert (recap_changed(result.stdout) > 0) == expect_changes, f"{attempt} run:\n" + result.stdout[-6000:]
    assert installed_tree() == before
    assert on_controller("ls ~/.cache/wsfleet/wheels/app/*/*.whl").returncode == 0, "no app wheel in the account's cache"

    curl = next(c for c in commands if c.startswith("curl "))
    answered = on_controller(curl, timeout=30)
    assert answered.returncode == 0 and answered.stdout.startswith("HTTP/1.1 200"), answered.stdout + answered.stderr
    # websockets' client closes when its input ends: what a person types is a line, then a pause.
    client = next(c for c in commands if " -m websockets " in c)
    echoed = on_controller(f"(echo 'hello fleet'; sleep 3) | {client}", timeout=30)
    assert "< hello fleet" in echoed.stdout, echoed.stdout + echoed.stderr


def test_every_process_of_every_app_host_runs_and_the_load_balancer_lists_them(controller, fleet):
    """What the README's inventory asks for: app hosts with one process per vCPU unless it says how
    many, on TCP at each host's backend address, and the load balancer's server list holding each."""
    inventory = yaml.safe_load(on_controller("cat ~/hosts.yml").stdout)
    apps = inventory["all"]["children"]["app"]["hosts"]
    lb = next(name for name, v in fleet.items() if v["readme_name"].startswith("lb"))
    listed = subprocess.run(["docker", "exec", lb, "nginx", "-T"], capture_output=True, text=True).stdout
    for name, variables in fleet.items():
        if name == lb:
            continue
        status = subprocess.run(["docker", "exec", name, "supervisorctl", "status"], capture_output=True, text=True).stdout
        running = re.findall(r"^echo:echo_\d+\s+RUNNING", status, re.M)
        cpus = int(subprocess.run(["docker", "exec", name, "nproc"], capture_output=True, text=True).stdout)
        want = (apps[variables["address"]] or {}).get("supervisord_numprocs", cpus)
        assert len(running) == want, status
        servers = re.findall(rf"server {re.escape(variables['address'])}:(\d+)", listed)
        assert len(set(servers)) == want, listed
