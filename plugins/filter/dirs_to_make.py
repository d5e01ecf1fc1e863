# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Which of a role's directories a look at the host found missing or otherwise."""

from __future__ import annotations

DOCUMENTATION = r"""
name: dirs_to_make
short_description: The directories a look at the host found missing, or with another owner, group or mode
version_added: 0.1.0
description:
  - A role states its directories (path, owner, group, mode); the checks' one look at the host
    (C(wsfleet.fleet.host_state), its C(paths)) found each as it was. This filter keeps the ones that
    were not a directory with that owner, group and mode, each with C(state=directory), ready for
    C(wsfleet.fleet.files). Empty when every one is as stated - the task that makes them is skipped,
    and a run with nothing to change does not ask the host again.
  - A path the look did not include counts as missing.
positional: found
options:
  _input:
    description: The directories - dicts with C(path), C(owner), C(group) and C(mode) (an octal string, as C(0755)).
    type: list
    elements: dict
    required: true
  found:
    description: What the look found - the C(paths) that C(wsfleet.fleet.host_state) returned.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Create the directories
  wsfleet.fleet.files:
    files: "{{ dirs | wsfleet.fleet.dirs_to_make(look.paths) }}"
  when: dirs | wsfleet.fleet.dirs_to_make(look.paths) | length > 0
"""

RETURN = r"""
_value:
  description: The directories to make or repair, in the order given, each with C(state=directory).
  type: list
  elements: dict
"""

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

_STATED = ("path", "owner", "group", "mode")


def dirs_to_make(dirs: Sequence[Mapping[str, Any]], found: Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(dirs, (str, Mapping)) or not isinstance(dirs, Sequence) or not isinstance(found, Mapping):
        raise AnsibleFilterError("dirs_to_make: expects a list of directories and host_state's paths")
    wanted = []
    for stated in dirs:
        missing = [key for key in _STATED if not isinstance(stated, Mapping) or stated.get(key) in (None, "")]
        if missing:
            raise AnsibleFilterError(f"dirs_to_make: {stated!r} lacks {', '.join(missing)}")
        look = found.get(stated["path"]) or {}
        as_found = (look.get("isdir"), look.get("pw_name"), look.get("gr_name"), look.get("mode"))
        if as_found != (True, str(stated["owner"]), str(stated["group"]), str(stated["mode"])):
            wanted.append({**stated, "state": "directory"})
    return wanted


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"dirs_to_make": dirs_to_make}
