"""docs/autoscaling.md's Packer example: its HCL parses (python-hcl2), and the collection it installs
with `galaxy_file`/`collections_path` is what the local `bake.yml` imports.

Packer itself is not installed here; the test runs the two commands its ansible provisioner runs
(`ansible-galaxy collection install -r <galaxy_file> -p <collections_path>`, then `ansible-playbook`
with `extra_arguments` and `ansible_env_vars`), offline: the git URL of requirements.yml is replaced
by the collection built from this tree into a tarball (`type: file`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/autoscaling.md"
BIN = Path(sys.executable).parent


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    return value


def _template() -> dict:
    (hcl,) = _blocks("hcl")
    return _unquote(hcl2.loads(hcl))


def _provisioner() -> dict:
    (build,) = _template()["build"]
    (entry,) = [p for p in build["provisioner"] if "ansible" in p]
    return entry["ansible"]


def _yaml_block(marker: str) -> str:
    (block,) = [b for b in _blocks("yaml") if marker in b]
    return block


def test_hcl_parses() -> None:
    template = _template()
    assert {"packer", "source", "build"} <= set(template)
    (build,) = template["build"]
    assert build["sources"] == ["source.amazon-ebs.wsfleet"]
    assert "amazon-ebs" in template["source"][0]


def test_provisioner_uses_an_installed_collection() -> None:
    provisioner = _provisioner()
    assert provisioner["playbook_file"] == "${path.root}/bake.yml"
    assert provisioner["galaxy_file"] == "${path.root}/requirements.yml"
    env = dict(var.split("=", 1) for var in provisioner["ansible_env_vars"])
    # collections_path only reaches ansible-galaxy (-p); ansible-playbook needs the same directory.
    assert env["ANSIBLE_COLLECTIONS_PATH"] == provisioner["collections_path"]
    assert not any("playbooks/" in str(v) for v in provisioner.values()), "points into a git tree"


def test_requirements_and_wrapper_playbook() -> None:
    requirements_text = _yaml_block("collections:")
    # Packer installs collections only when the file has a top-level `collections:` line.
    assert re.search(r"(?m)^collections:", requirements_text)
    requirements = yaml.safe_load(requirements_text)
    assert requirements["collections"][0] == {
        "name": "https://github.com/wsfleet/ansible-collection-fleet.git",
        "type": "git",
        "version": "main",
    }
    (play,) = yaml.safe_load(_yaml_block("import_playbook"))
    assert play["ansible.builtin.import_playbook"] == "wsfleet.fleet.bake"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)


def test_packer_steps_with_the_installed_collection(tmp_path: Path) -> None:
    """What the provisioner runs, in a directory without ansible.cfg, against the built tarball."""
    provisioner = _provisioner()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    root = str(tmp_path)
    for var in provisioner["ansible_env_vars"]:
        name, value = var.split("=", 1)
        env[name] = value.replace("${path.root}", root)

    built = _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", root, str(ROOT)], tmp_path, env)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = tmp_path.glob("wsfleet-fleet-*.tar.gz")

    requirements = yaml.safe_load(_yaml_block("collections:"))
    requirements["collections"] = [{"name": f"./{tarball.name}", "type": "file"}]
    galaxy_file = Path(provisioner["galaxy_file"].replace("${path.root}", root))
    galaxy_file.write_text("---\n" + yaml.safe_dump(requirements))
    playbook_file = Path(provisioner["playbook_file"].replace("${path.root}", root))
    playbook_file.write_text(_yaml_block("import_playbook"))
    collections = provisioner["collections_path"].replace("${path.root}", root)

    installed = _run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "-r", str(galaxy_file), "-p", collections],
        tmp_path,
        env,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (Path(collections) / "ansible_collections/wsfleet/fleet/playbooks/bake.yml").is_file()

    # Packer's inventory names the build VM `default`.
    inventory = tmp_path / "inventory"
    inventory.write_text("default ansible_host=192.0.2.10\n")
    extra = [str(a) for a in provisioner["extra_arguments"]]
    checked = _run(
        [str(BIN / "ansible-playbook"), *extra, "-i", str(inventory), str(playbook_file), "--syntax-check"],
        tmp_path,
        env,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = _run(
        [str(BIN / "ansible-playbook"), *extra, "-i", str(inventory), str(playbook_file), "--list-hosts"],
        tmp_path,
        env,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert re.search(r"hosts \(1\):\s+default", listed.stdout), listed.stdout


@pytest.mark.parametrize("broken", ['build {\n  sources = ["a"\n}\n', 'source "x" {\n  a = \n}\n'])
def test_python_hcl2_rejects_broken_hcl(broken: str) -> None:
    """The parse above means something: python-hcl2 raises on HCL that Packer would refuse."""
    with pytest.raises(Exception):  # lark raises several exception types
        hcl2.loads(broken)
