# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""The pip download tags that select the wheels a target host can install (packaging's rules)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: wheel_download_tags
short_description: The pip download tags that select the wheels a target host can install
version_added: 0.1.0
description:
  - For a target (its CPython version, machine and glibc, as the C(wsfleet.fleet.echo_app) role reads
    them from the host), the C(--platform), C(--abi), C(--python-version) and C(--implementation)
    values of C(pip download --only-binary=:all:) that admit exactly the wheels that host can install -
    C(manylinux_2_N) for every glibc 2.N from 2.5 up to the host's, their legacy aliases (manylinux1,
    2010, 2014), C(linux_<machine>) and C(any); the CPython ABI, C(abi3) and C(none).
options:
  _input:
    description: The target, a dict with C(python) (C(3.11)), C(machine) (C(x86_64)) and C(glibc) (C(2.36)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Download a target's wheels
  ansible.builtin.command:
    argv: "{{ ['pip', 'download', '--only-binary=:all:'] + (target | wsfleet.fleet.wheel_download_tags) + ['websockets==16.0'] }}"
"""

RETURN = r"""
_value:
  description: pip arguments, C(--name=value) each.
  type: list
  elements: str
"""

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# PEP 600's names for the glibc versions older tags were defined by (PEP 513, 571, 599).
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_OLDEST_GLIBC_MINOR = 5


def _version(text: str, what: str, parts: int) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in str(text).split("."))
    except ValueError:
        numbers = ()
    if len(numbers) != parts:
        raise AnsibleFilterError(f"wheel_download_tags: {what} {text!r} is not a version like {'.'.join(['3', '11', '0'][:parts])}")
    return numbers


def wheel_download_tags(target: Mapping[str, Any]) -> list[str]:
    if not isinstance(target, Mapping):
        raise AnsibleFilterError(f"wheel_download_tags: expects a dict with python, machine and glibc, got {type(target).__name__}")
    major, minor = _version(target.get("python", ""), "python", 2)
    glibc_major, glibc_minor = _version(target.get("glibc", ""), "glibc", 2)
    machine = str(target.get("machine") or "")
    if glibc_major != 2 or not machine.replace("_", "").isalnum():
        raise AnsibleFilterError(f"wheel_download_tags: no manylinux tags for glibc {target.get('glibc')!r} on {machine!r}")
    platforms = []
    for glibc in range(glibc_minor, _OLDEST_GLIBC_MINOR - 1, -1):  # newest first, as pip's own order
        platforms.append(f"manylinux_2_{glibc}_{machine}")
        if (2, glibc) in _LEGACY_MANYLINUX:
            platforms.append(f"{_LEGACY_MANYLINUX[(2, glibc)]}_{machine}")
    platforms += [f"linux_{machine}", "any"]
    return ([f"--platform={platform}" for platform in platforms]
            + [f"--python-version={major}.{minor}", "--implementation=cp", f"--abi=cp{major}{minor}", "--abi=abi3", "--abi=none"])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"wheel_download_tags": wheel_download_tags}
