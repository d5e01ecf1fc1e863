"""Collection metadata and role interfaces that need no containers."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir()) if (ROOT / "roles").is_dir() else []


def _pinned(requirements: Path, name: str) -> str:
    for line in requirements.read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in {requirements.name}")


def test_galaxy_names_the_collection() -> None:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("wsfleet", "fleet")
    assert (ROOT / "collections/ansible_collections/wsfleet/fleet").resolve() == ROOT


def test_pinned_ansible_core_is_inside_requires_ansible() -> None:
    runtime = yaml.safe_load((ROOT / "meta/runtime.yml").read_text())
    spec = SpecifierSet(runtime["requires_ansible"])
    for requirements in ("requirements.in", "requirements.txt"):
        assert _pinned(ROOT / requirements, "ansible-core") in spec


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_mirror_defaults(role: str) -> None:
    """Every default has a spec entry with the same default, and every optional spec entry a default."""
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text()) or {}
    specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    public = {k: v for k, v in defaults.items() if not k.startswith("__")}
    assert sorted(public) == sorted(k for k, o in options.items() if not o.get("required")), role
    for name, value in public.items():
        assert name.startswith(f"{role}_"), f"{name} is not prefixed with {role}_"
        if isinstance(value, str) and "{{" in value:
            continue  # computed at run time; the spec documents it in its description
        assert options[name].get("default") == value, f"{role}: {name} default differs from argument_specs"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_variable_is_in_the_readme(role: str) -> None:
    readme = (ROOT / "README.md").read_text()
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text()) or {}
    missing = [name for name in defaults if not name.startswith("__") and f"`{name}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_the_tarball_ships_the_app_inside_the_echo_app_role_and_nothing_outside_the_collection_folders(tmp_path: Path) -> None:
    """The echo_app role builds the bundled app from its own files/ (an installed collection may only
    rely on meta, plugins, roles and playbooks); its tests and benchmarks stay out of the tarball."""
    built = subprocess.run([Path(sys.executable).parent / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, ROOT],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    with tarfile.open(next(tmp_path.glob("*.tar.gz"))) as tarball:
        names = tarball.getnames()
    app = "roles/echo_app/files/app"
    assert {f"{app}/pyproject.toml", f"{app}/src/wsfleet_echo/server.py"} <= set(names)
    assert not [n for n in names if n.startswith(("app/", f"{app}/tests", f"{app}/bench")) or n == "app" or ".egg-info" in n]
    defaults = yaml.safe_load((ROOT / "roles/echo_app/vars/main.yml").read_text())
    assert defaults["__echo_app_bundled_source"] == "{{ role_path }}/files/app"
