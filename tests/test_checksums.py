"""The lookup that checksums controller files for echo_app (app wheel key, cached wheels)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "lookup"))
from checksums import checksums  # noqa: E402

PRUNE = ["build", "dist", r"(.*/)?(\..+|__pycache__|.+\.egg-info)"]  # what echo_app passes


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    files = {
        "pyproject.toml": "[project]\n",
        "src/pkg/__init__.py": "x = 1\n",
        "src/pkg/.hidden-file": "kept: only hidden directories are pruned\n",
        "src/pkg/__pycache__/m.pyc": "cache",
        "src/pkg.egg-info/PKG-INFO": "build output",
        "src/build/kept.txt": "build/ is pruned at the top only",
        "build/lib/x.py": "build output",
        "dist/p.whl": "build output",
        ".git/HEAD": "ref",
        ".venv/bin/python": "venv",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    os.symlink("pyproject.toml", tmp_path / "link.toml")
    return tmp_path


def test_directory_lists_regular_files_with_sha1_and_prunes(tree: Path) -> None:
    found = checksums(str(tree), [], PRUNE)
    rel = [os.path.relpath(f["path"], tree) for f in found]
    assert rel == ["pyproject.toml", "src/build/kept.txt", "src/pkg/.hidden-file", "src/pkg/__init__.py"]
    for f in found:
        assert f["checksum"] == hashlib.sha1(Path(f["path"]).read_bytes()).hexdigest()  # noqa: S324


def test_patterns_and_single_file(tree: Path) -> None:
    assert [os.path.basename(f["path"]) for f in checksums(str(tree / "dist"), ["*.whl"], [])] == ["p.whl"]
    assert checksums(str(tree / "pyproject.toml"), ["*.whl"], []) == []
    one = checksums(str(tree / "pyproject.toml"), [], [])
    assert one == [{"path": str(tree / "pyproject.toml"), "checksum": hashlib.sha1(b"[project]\n").hexdigest()}]  # noqa: S324


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(AnsibleLookupError, match=str(tmp_path / "nope")):
        checksums(str(tmp_path / "nope"), [], [])


def test_same_checksum_as_the_stat_module_through_ansible(tree: Path) -> None:
    """Loaded by its collection name by a real ansible run; agrees with stat's checksum."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    playbook = tree / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.stat: {{path: "{tree}/src/pkg/__init__.py", get_checksum: true}}
      register: st
    - ansible.builtin.set_fact:
        looked: "{{{{ query('wsfleet.fleet.checksums', '{tree}/src', prune=['.*__pycache__', '.*egg-info']) }}}}"
    - ansible.builtin.assert:
        that:
          - looked | length == 3
          - (looked | selectattr('path', 'eq', st.stat.path) | first).checksum == st.stat.checksum
""")
    run = subprocess.run([str(Path(os.path.abspath(sys.executable)).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", f"ansible_python_interpreter={os.path.abspath(sys.executable)}", str(playbook)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"localhost\s+: ok=3\s+changed=0\s+unreachable=0\s+failed=0", run.stdout), run.stdout[-3000:]
