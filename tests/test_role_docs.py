"""scripts/role-docs.py: role READMEs generated from meta/argument_specs.yml, and never stale."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("role_docs", ROOT / "scripts/role-docs.py")
assert SPEC and SPEC.loader
role_docs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(role_docs)

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())


def test_every_role_readme_is_current() -> None:
    stale = [str(path.relative_to(ROOT)) for path in role_docs.stale()]
    assert not stale, f"stale role READMEs (run `make docs`): {stale}"


def test_every_role_gets_a_readme() -> None:
    assert sorted(path.parent.name for path in role_docs.generate()) == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_every_option_with_its_default(role: str) -> None:
    options = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    readme = (ROOT / "roles" / role / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", readme, re.M)}
    assert list(rows) == list(options)
    for name, option in options.items():
        if "default" in option:
            assert role_docs.value(option["default"]) in rows[name], name
    assert f"role: wsfleet.fleet.{role}\n" in readme
    assert "](../../README.md)" in readme


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C(numprocs) and O(a=b)", "`numprocs` and `a=b`"),
        ("V(none), E(HOME), RV(_value), M(ansible.builtin.pip)", "`none`, `HOME`, `_value`, `ansible.builtin.pip`"),
        ("I(this) B(that)", "*this* **that**"),
        ("U(https://example.org) L(the guide, https://example.org/guide)", "<https://example.org> [the guide](https://example.org/guide)"),
        ("max(vCPUs, ceil(O(a) / O(b)))", "max(vCPUs, ceil(`a` / `b`))"),
        ("C(`x`)", "`` `x` ``"),
        ("no markup (here)", "no markup (here)"),
    ],
)
def test_markup_becomes_markdown(text: str, expected: str) -> None:
    assert role_docs.markdown(text) == expected


def test_paragraphs_join_folded_lines() -> None:
    assert role_docs.paragraphs(None) == []
    assert role_docs.paragraphs("one\n  line") == ["one line"]
    assert role_docs.paragraphs(["first C(x)", "second\nline"]) == ["first `x`", "second line"]


def test_table_rows() -> None:
    options = {
        "r_name": {"type": "str", "default": "echo", "description": "Name; C(a|b)."},
        "r_mode": {"type": "str", "default": "unix", "choices": ["unix", "tcp"], "description": ["One.", "Two."]},
        "r_list": {"type": "list", "elements": "str", "default": [], "description": "A list."},
        "r_count": {"type": "int", "description": "Defaults to the vCPUs."},
        "r_must": {"type": "bool", "required": True, "description": "Say yes."},
    }
    assert role_docs.variables_table(options) == [
        "| Name | Type | Default | Choices | Description |",
        "| --- | --- | --- | --- | --- |",
        '| `r_name` | str | `"echo"` |  | Name; `a\\|b`. |',
        '| `r_mode` | str | `"unix"` | `"unix"`, `"tcp"` | One.<br>Two. |',
        "| `r_list` | list of str | `[]` |  | A list. |",
        "| `r_count` | int |  |  | Defaults to the vCPUs. |",
        "| `r_must` | bool |  |  | **Required.** Say yes. |",
    ]


def test_example_is_site_cut_down_to_the_role() -> None:
    site = [
        {"name": "App", "hosts": "app", "roles": [{"role": "wsfleet.fleet.a"}, "wsfleet.fleet.b"]},
        {"name": "Other", "hosts": "x", "roles": [{"role": "wsfleet.fleet.x", "when": "no"}]},
        {
            "name": "LB",
            "hosts": "lb",
            "pre_tasks": [{"name": "check"}],
            "roles": [{"role": "wsfleet.fleet.n", "when": "one"}, {"role": "wsfleet.fleet.h", "when": "other"}],
        },
    ]
    assert role_docs.example_plays("a", site) == [{"name": "App", "hosts": "app", "roles": ["wsfleet.fleet.a"]}]
    assert role_docs.example_plays("b", site) == [{"name": "App", "hosts": "app", "roles": ["wsfleet.fleet.a", "wsfleet.fleet.b"]}]
    assert role_docs.example_plays("h", site) == [
        {"name": "App", "hosts": "app", "roles": ["wsfleet.fleet.a", "wsfleet.fleet.b"]},
        {"name": "LB", "hosts": "lb", "roles": ["wsfleet.fleet.h"]},
    ]
    # A role site.yml does not run gets a play of its own.
    assert role_docs.example_plays("z", site) == [{"name": "Run wsfleet.fleet.z", "hosts": "all", "roles": ["wsfleet.fleet.z"]}]


def test_example_counts_roles_imported_by_tasks() -> None:
    """site.yml imports the app roles as tasks (rolespec_validate: false): the examples of the roles
    after them still start with them, as with `roles:`; a conditional import is left out."""
    site = [
        {"name": "App", "hosts": "app", "tasks": [
            {"name": "a", "ansible.builtin.import_role": {"name": "wsfleet.fleet.a", "rolespec_validate": False}},
            {"name": "w", "ansible.builtin.import_role": {"name": "wsfleet.fleet.wsfleet"}},
            {"name": "c", "ansible.builtin.import_role": {"name": "wsfleet.fleet.c"}, "when": "maybe"},
            {"name": "b", "ansible.builtin.import_role": {"name": "wsfleet.fleet.b", "rolespec_validate": False}},
        ]},
        {"name": "LB", "hosts": "lb", "roles": ["wsfleet.fleet.wsfleet"], "tasks": [
            {"name": "lb", "ansible.builtin.include_role": {"name": "wsfleet.fleet.{{ wsfleet_lb }}_lb"}},
        ]},
    ]
    assert role_docs.example_plays("b", site) == [{"name": "App", "hosts": "app", "roles": ["wsfleet.fleet.a", "wsfleet.fleet.b"]}]
    assert role_docs.example_plays("nginx_lb", site) == [
        {"name": "App", "hosts": "app", "roles": ["wsfleet.fleet.a", "wsfleet.fleet.b"]},
        {"name": "LB", "hosts": "lb", "roles": ["wsfleet.fleet.nginx_lb"]},
    ]


def _fake_collection(root: Path) -> Path:
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks/site.yml").write_text("- name: All\n  hosts: all\n  roles:\n    - role: wsfleet.fleet.demo\n")
    meta = root / "roles/demo/meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: Demo things\n    description:\n      - Long C(text).\n"
        "    options:\n      demo_x:\n        type: int\n        default: 3\n        description: X.\n"
    )
    (root / "roles/no_specs").mkdir()
    return root / "roles/demo/README.md"


def test_render_and_stale_on_a_fake_collection(tmp_path: Path) -> None:
    readme = _fake_collection(tmp_path)
    assert role_docs.stale(tmp_path) == [readme]
    text = role_docs.generate(tmp_path)[readme]
    assert text.startswith("# wsfleet.fleet.demo\n\n<!-- Generated by scripts/role-docs.py")
    assert "\nDemo things.\n\nLong `text`.\n\n## Variables\n" in text
    assert "| `demo_x` | int | `3` |  | X. |" in text
    assert "```yaml\n---\n- name: All\n  hosts: all\n  become: true\n  roles:\n    - role: wsfleet.fleet.demo\n```" in text
    readme.write_text(text)
    assert role_docs.stale(tmp_path) == []
    readme.write_text(text.replace("X.", "Y."))
    assert role_docs.stale(tmp_path) == [readme]


def test_check_mode_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = _fake_collection(tmp_path)
    monkeypatch.setattr(role_docs, "ROOT", tmp_path)
    assert role_docs.main(["--check"]) == 1
    assert not readme.exists()
    assert role_docs.main([]) == 0
    assert readme.is_file()
    assert role_docs.main(["--check"]) == 0


def test_example_playbooks_pass_syntax_check(tmp_path: Path) -> None:
    playbooks = []
    for role in ROLES:
        readme = (ROOT / "roles" / role / "README.md").read_text()
        block = re.search(r"^```yaml\n(.*?)^```$", readme, re.M | re.S)
        assert block, f"{role}: no example playbook"
        playbook = tmp_path / f"{role}.yml"
        playbook.write_text(block.group(1))
        playbooks.append(str(playbook))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", "-i", "localhost,", *playbooks],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
