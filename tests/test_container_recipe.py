"""The containers' recipe (systemd as PID 1 without --privileged) is one: the benches and the bake
tests take it from extensions/molecule/resources/systemd_container.py, and every molecule platform,
which molecule's YAML cannot import, states exactly the same."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MOLECULE = ROOT / "extensions" / "molecule"
sys.path.insert(0, str(MOLECULE / "resources"))
import systemd_container  # noqa: E402


def platforms() -> list[tuple[str, dict]]:
    """Every molecule platform that boots systemd (no_systemd's runs a plain process, on purpose)."""
    found = []
    for path in [MOLECULE / "config.yml", *sorted(MOLECULE.glob("*/molecule.yml"))]:
        for platform in (yaml.safe_load(path.read_text()) or {}).get("platforms") or []:
            if platform.get("command", "").endswith("/systemd"):
                found.append((f"{path.relative_to(MOLECULE)}:{platform['name']}", platform))
    return found


@pytest.mark.parametrize(("where", "platform"), platforms(), ids=[where for where, _ in platforms()])
def test_every_molecule_platform_states_the_recipe(where: str, platform: dict) -> None:
    assert platform["command"] == systemd_container.COMMAND, where
    assert platform.get("capabilities") == systemd_container.CAPABILITIES, where
    assert platform.get("security_opts") == systemd_container.SECURITY_OPTS, where
    assert platform.get("cgroupns_mode") == systemd_container.CGROUPNS_MODE, where
    assert platform.get("volumes") == systemd_container.VOLUMES, where
    assert platform.get("tmpfs") == systemd_container.TMPFS, where
    assert not platform.get("privileged"), where


def test_the_python_users_take_it_from_the_module() -> None:
    """No second copy of the recipe in the benches or the bake tests."""
    for path in (ROOT / "bench" / "run.py", ROOT / "bench" / "provision" / "run.py", MOLECULE / "resources" / "tests_bake" / "test_bake.py"):
        text = path.read_text()
        assert "systemd_container.docker_run_options()" in text, path
        assert "seccomp=unconfined" not in text and '"SYS_ADMIN"' not in text, path


def test_docker_run_options() -> None:
    assert systemd_container.docker_run_options() == [
        "--cap-add=SYS_ADMIN", "--security-opt=seccomp=unconfined", "--security-opt=apparmor=unconfined",
        "--cgroupns=host", "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs=/run", "--tmpfs=/run/lock"]


def test_molecule_create_starts_every_systemd_platform_with_the_recipe() -> None:
    """Molecule's create stage is resources/instances.py (config.yml): what it runs for a platform
    that boots systemd holds every option of the recipe, and the command last."""
    import instances

    for where, platform in platforms():
        args = instances.create_args(platform)
        assert set(systemd_container.docker_run_options()) <= set(args), where
        assert args[-1] == systemd_container.COMMAND and args[-2] == platform["image"], where
        assert args[args.index("--name") + 1] == platform["name"], where


def test_molecule_create_refuses_a_platform_option_it_does_not_know() -> None:
    import instances

    with pytest.raises(SystemExit, match="privileged not handled"):
        instances.create([{"name": "x", "image": "y", "pre_build_image": True, "privileged": True}])
