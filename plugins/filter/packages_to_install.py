# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Which of a role's OS packages a look at the host found not installed."""

from __future__ import annotations

DOCUMENTATION = r"""
name: packages_to_install
short_description: The OS packages a look at the host found not installed
version_added: 0.1.0
description:
  - A role names its OS packages; the checks' one look at the host (C(wsfleet.fleet.host_state), its
    C(packages)) found each one's dpkg status. This filter keeps the ones whose status is not
    C(installed) (C(not-installed), C(config-files), C(half-installed), C(unknown), ...), in the order
    given. Empty when every one is installed - C(apt), which loads its whole package cache, is then
    not run.
  - A package the look did not include counts as not installed.
  - The one definition of "an OS package is missing" - the fleet role's C(tasks/os_packages.yml) and
    any role that decides from it whether to include its install tasks use this filter.
positional: found
options:
  _input:
    description: The package names.
    type: list
    elements: str
    required: true
  found:
    description: What the look found - the C(packages) that C(wsfleet.fleet.host_state) returned (name to dpkg status).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Install the OS packages
  ansible.builtin.apt:
    name: "{{ packages }}"
  when: packages | wsfleet.fleet.packages_to_install(look.packages) | length > 0
"""

RETURN = r"""
_value:
  description: The packages that are not installed, in the order given.
  type: list
  elements: str
"""

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError


def packages_to_install(packages: Sequence[str], found: Mapping[str, Any]) -> list[str]:
    if isinstance(packages, (str, Mapping)) or not isinstance(packages, Sequence) or not isinstance(found, Mapping):
        raise AnsibleFilterError("packages_to_install: expects a list of package names and host_state's packages")
    return [name for name in packages if found.get(name) != "installed"]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"packages_to_install": packages_to_install}
