"""scripts/molecule-matrix.py: which runs make test does, and that runs never share a name or network."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("molecule_matrix", ROOT / "scripts" / "molecule-matrix.py")
matrix_module = importlib.util.module_from_spec(SPEC)
sys.modules["molecule_matrix"] = matrix_module
SPEC.loader.exec_module(matrix_module)


def test_every_scenario_runs_on_both_releases_and_bake_with_both_kinds():
    scenarios = {p.parent.name for p in (ROOT / "extensions" / "molecule").glob("*/molecule.yml")}
    runs = matrix_module.matrix(["12", "13"])
    both = matrix_module.BOTH_RELEASES_IN_ONE
    assert {(r.scenario, r.debian) for r in runs if r.scenario not in both} == {
        (s, d) for s in scenarios - both for d in ("12", "13")}
    # user_path's platforms run Debian 12 and 13 themselves: one run.
    assert [r.name for r in runs if r.scenario in both] == ["user_path-d12+13"]
    assert {(r.debian, r.lb) for r in runs if r.scenario == "bake"} == {(d, lb) for d in ("12", "13") for lb in ("nginx", "haproxy")}
    # The fleet scenario has a load balancer of each kind: one run per release.
    assert sorted(r.name for r in runs if r.scenario == "fleet") == ["fleet-d12", "fleet-d13"]


def test_runs_have_their_own_names_working_directories_and_networks():
    runs = matrix_module.matrix(["12", "13"])
    envs = [r.env() for r in runs]
    assert len({r.name for r in runs}) == len(runs)
    assert len({e["MOLECULE_EPHEMERAL_DIRECTORY"] for e in envs}) == len(runs)
    nets = [e["WSFLEET_BAKE_NET"] for e in envs if "WSFLEET_BAKE_NET" in e]
    assert len(nets) == len(set(nets)) == 4, nets


def test_only_fleet_bake_and_the_ssh_scenario_install_from_the_bare_image():
    for run in matrix_module.matrix(["12", "13"]):
        bare = run.env().get("WSFLEET_IMAGE_VARIANT", "") == ""
        assert bare == (run.scenario in ("fleet", "bake", "lb_haproxy_tcp")), run.name


def test_stage_lines_are_recognised():
    lines = [
        "INFO     [fleet > converge] Executing\n",
        "INFO     [fleet > converge] Executed: Successful\n",
        "TASK [wsfleet.fleet.echo_app : Install] ****\n",
        "INFO     [fleet > discovery] scenario test matrix: destroy, syntax\n",
    ]
    found = [m.groups() for m in map(matrix_module.ACTION.match, lines) if m]
    assert found == [("fleet", "converge", "Executing"), ("fleet", "converge", "Executed: Successful")]


def load_molecule_conftest():
    spec = importlib.util.spec_from_file_location("molecule_conftest", ROOT / "extensions" / "molecule" / "resources" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tests_run_once_in_runs_that_exist_and_keep_both_releases_and_both_kinds():
    """A test marked once(...) still runs somewhere: in runs of the matrix, on Debian 12 and 13 (but
    for ONE_RELEASE, tests of what the controller does), where the scenario has one load balancer
    behind nginx and behind HAProxy, and where an app scenario's test runs twice, on Unix sockets
    and on TCP ports."""
    conftest = load_molecule_conftest()
    once_in = conftest.ONCE_IN
    runs = {r.name: r for r in matrix_module.matrix(["12", "13"])}
    resources = ROOT / "extensions" / "molecule" / "resources"
    used = {m for path in resources.glob("tests*/test_*.py") for m in re.findall(r'@pytest\.mark\.once\("(\w+)"\)', path.read_text())}
    assert used == set(once_in), (used, set(once_in))
    assert conftest.ONE_RELEASE <= set(once_in)
    for group, names in once_in.items():
        assert set(names) <= set(runs), (group, names)
        scenarios = {runs[name].scenario for name in names}
        if scenarios == {"fleet"}:  # one run has both kinds and is the only scenario with a fleet
            continue
        if group in conftest.ONE_RELEASE:
            assert len(names) == 1, group
            continue
        assert {runs[name].debian for name in names} == {"12", "13"}, group
        if scenarios <= {"app_unix", "app_tcp", "app_custom"}:
            assert "app_tcp" in scenarios and scenarios & {"app_unix", "app_custom"}, group
            continue
        kinds = {"nginx" if s == "lb_nginx" else "haproxy" for s in scenarios}
        expected = {conftest.ONE_KIND[group]} if group in conftest.ONE_KIND else {"nginx", "haproxy"}
        assert scenarios <= {"lb_nginx", "lb_haproxy", "lb_haproxy_tcp"} and kinds == expected, group


def test_every_run_mode_keeps_what_one_kind_has_to_the_scenarios_with_that_kind(monkeypatch):
    """WSFLEET_TEST_EVERY_RUN=1 runs the once(...) tests in every run, but a test of what only HAProxy
    has (ONE_KIND) only in the HAProxy scenarios: on lb_nginx it failed, asserting HAProxy."""
    conftest = load_molecule_conftest()
    monkeypatch.setenv("WSFLEET_TEST_EVERY_RUN", "1")
    for scenario, expected in (("lb_nginx", False), ("lb_haproxy", True), ("lb_haproxy_tcp", True)):
        monkeypatch.setenv("MOLECULE_SCENARIO_NAME", scenario)
        assert conftest.runs_here("stuck_tunnel") is expected, scenario
        assert conftest.runs_here("app_change") is True, scenario
    monkeypatch.delenv("WSFLEET_TEST_EVERY_RUN")
    monkeypatch.setenv("MOLECULE_SCENARIO_NAME", "lb_nginx")
    monkeypatch.setenv("WSFLEET_DEBIAN", "12")
    assert conftest.runs_here("app_change") is True  # lb_nginx-d12 is named
    assert conftest.runs_here("tls_off") is False  # lb_nginx-d13 is


def test_one_run_uses_the_oldest_supported_ansible_core_with_containers_of_its_own(monkeypatch):
    """The oldest release meta/runtime.yml accepts gets a whole molecule run: one, named for that release,
    from its own virtualenv (first on PATH), its containers apart from the same scenario's main run."""
    monkeypatch.setenv("WSFLEET_NAME_SUFFIX", "-tc")
    runs = matrix_module.matrix(["12", "13"])
    oldest = [r for r in runs if r.core]
    assert [r.name for r in oldest] == ["app_unix-d12-core2.19"]
    twin = next(r for r in runs if (r.scenario, r.debian, r.core) == ("app_unix", "12", None))
    env, twin_env = oldest[0].env(), twin.env()
    assert env["PATH"].split(":")[0] == str(ROOT / ".venv-core2.19" / "bin")
    assert twin_env["PATH"].split(":")[0] == str(ROOT / ".venv" / "bin")
    assert env["PATH"].split(":", 1)[1] == twin_env["PATH"].split(":", 1)[1]
    assert (twin_env["WSFLEET_NAME_SUFFIX"], env["WSFLEET_NAME_SUFFIX"]) == ("-tc", "-tc-core219")
    # What the verify stage checks the converge ran (resources/tests: the release of ansible-playbook).
    assert (twin_env["WSFLEET_ANSIBLE_CORE"], env["WSFLEET_ANSIBLE_CORE"]) == ("2.21", "2.19")
    # The venv holds that release, and runtime.yml's lower bound is that release.
    pins = (ROOT / "requirements-2.19.in").read_text()
    assert re.search(r"^ansible-core==2\.19\.\d+$", pins, re.M), pins
    assert 'requires_ansible: ">=2.19.0"' in (ROOT / "meta" / "runtime.yml").read_text()
    # Without Debian 12 in the matrix there is no such run (its release is 12).
    assert not [r for r in matrix_module.matrix(["13"]) if r.core]
