"""No block of task lines is written in two roles (scripts/role-twins.py): what they share lives in
the fleet role (roles/wsfleet) and they call it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("role_twins", ROOT / "scripts" / "role-twins.py")
role_twins = importlib.util.module_from_spec(spec)
spec.loader.exec_module(role_twins)


def test_no_role_repeats_another_roles_tasks() -> None:
    found = role_twins.twins(ROOT, 6)
    assert not found, "\n\n".join(", ".join(f"{p}:{n}" for p, n in places) + "\n" + block for block, places in found.items())


def write(root: Path, role: str, text: str) -> None:
    path = root / "roles" / role / "tasks" / "main.yml"
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_a_copied_block_is_found_with_the_role_names_normalized(tmp_path: Path) -> None:
    block = ("- name: Check the port\n  ansible.builtin.assert:\n    that:\n      - {r}_port | int >= 1\n"
             "      - {r}_port | int <= 65535\n    fail_msg: {r}_port 1-65535\n")
    write(tmp_path, "nginx_lb", "---\n" + block.format(r="nginx_lb"))
    write(tmp_path, "haproxy_lb", "---\n# a comment\n" + block.format(r="haproxy_lb").replace("\n    that", "  # why\n    that"))
    write(tmp_path, "wsfleet", "---\n" + block.format(r="wsfleet"))  # the shared role is not one of them
    found = role_twins.twins(tmp_path, 6)
    assert list(found.values()) == [[("roles/haproxy_lb/tasks/main.yml", 3), ("roles/nginx_lb/tasks/main.yml", 2)]]
    assert role_twins.twins(tmp_path, 7) == {}


def test_a_call_of_shared_tasks_is_not_a_copy(tmp_path: Path) -> None:
    call = ("- name: Check the TLS files\n  ansible.builtin.import_role:\n    name: wsfleet.fleet.wsfleet\n"
            "    tasks_from: tls.yml\n  vars:\n    __wsfleet_tls_prefix: {r}\n")
    write(tmp_path, "nginx_lb", "---\n" + call.format(r="nginx_lb"))
    write(tmp_path, "haproxy_lb", "---\n" + call.format(r="haproxy_lb"))
    assert role_twins.twins(tmp_path, 6) == {}
