# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Whether a virtualenv's distributions already satisfy a list of pinned requirements."""

from __future__ import annotations

DOCUMENTATION = r"""
name: requirements_installed
short_description: Whether a virtualenv already holds every pinned requirement
version_added: 0.1.0
description:
  - True when every requirement is a single C(==) pin (no extras, markers or URL) and a distribution
    of that name and version is installed, as the C(*.dist-info) directory names of the virtualenv's
    C(site-packages) say. Names are compared as PEP 503 normalizes them, versions as PEP 440 compares
    them (with C(packaging), as pip does). False otherwise - only pip can tell what it would do.
  - The C(wsfleet.fleet.echo_app) role runs pip only when this is false.
positional: dist_infos
options:
  _input:
    description: Requirements, e.g. C(websockets==16.0).
    type: list
    elements: str
    required: true
  dist_infos:
    description: Names of the C(*.dist-info) directories, e.g. C(websockets-16.0.dist-info).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Install only when something is missing
  ansible.builtin.pip:
    name: "{{ requirements }}"
  when: not requirements | wsfleet.fleet.requirements_installed(dist_infos)
"""

RETURN = r"""
_value:
  description: Whether pip would install nothing.
  type: bool
"""

from collections.abc import Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

try:  # a dependency of ansible-core itself, so always there on a controller that runs it
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError as error:  # pragma: no cover (ansible-test's import sanity test has no packaging)
    PACKAGING_IMPORT_ERROR: ImportError | None = error
else:
    PACKAGING_IMPORT_ERROR = None


def requirements_installed(requirements: Iterable[str], dist_infos: Iterable[str]) -> bool:
    """True when every requirement pins one version (name==version, no extras or markers) and a
    distribution of that name and version is installed (its <name>-<version>.dist-info is there)."""
    if PACKAGING_IMPORT_ERROR is not None:
        raise AnsibleFilterError(f"requirements_installed needs the Python library packaging: {PACKAGING_IMPORT_ERROR}")
    installed = {}
    for dist_info in dist_infos:
        name, separator, version = str(dist_info).removesuffix(".dist-info").partition("-")
        if not separator:
            continue
        try:
            installed[canonicalize_name(name)] = Version(version)
        except InvalidVersion:
            continue
    for text in requirements:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement:
            return False
        specifiers = list(requirement.specifier)
        if requirement.extras or requirement.marker or requirement.url or len(specifiers) != 1 or specifiers[0].operator != "==":
            return False  # not a single pin: only pip can tell
        try:
            pinned = Version(specifiers[0].version)
        except InvalidVersion:
            return False  # a wildcard (==1.*)
        if installed.get(canonicalize_name(requirement.name)) != pinned:
            return False
    return True


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"requirements_installed": requirements_installed}
