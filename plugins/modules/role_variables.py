#!/usr/bin/python
# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Documentation of the role_variables action; it runs on the controller, never as a module."""

from __future__ import annotations

DOCUMENTATION = r"""
module: role_variables
short_description: Warn about (or refuse) variables with a role's prefix that the role does not know
version_added: 0.1.0
description:
  - Every variable visible to the host whose name starts with O(prefix) and that is not in O(known)
    is reported, with the closest known name when there is one (for C(supervisord_numproc), it names
    C(supervisord_numprocs)). Such a variable, a typo most of the time, would otherwise be ignored
    without a word.
  - A warning each, or with O(strict) a failure naming them all. The wsfleet roles pass their own
    argument specification as O(known) and the fleet-wide C(wsfleet_strict_variables) as O(strict).
  - Runs on the controller only, from the variables Ansible already holds; it does not contact the host.
options:
  prefix:
    description: Names starting with it are checked, e.g. C(supervisord_).
    type: str
    required: true
  known:
    description: The names the role knows (its options, and any fact it publishes itself).
    type: list
    elements: str
    required: true
  strict:
    description: Fail instead of warning.
    type: bool
    default: false
author:
  - wsfleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Report unknown supervisord_ variables
  wsfleet.fleet.role_variables:
    prefix: supervisord_
    known: "{{ (lookup('ansible.builtin.file', role_path ~ '/meta/argument_specs.yml') | from_yaml).argument_specs.main.options.keys() | list }}"
    strict: "{{ wsfleet_strict_variables | default(false) }}"
"""

RETURN = r"""
unknown:
  description: The unknown names, sorted.
  type: list
  elements: str
  returned: always
  sample: [supervisord_numproc]
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "prefix": {"type": "str", "required": True},
            "known": {"type": "list", "elements": "str", "required": True},
            "strict": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    module.fail_json(msg="wsfleet.fleet.role_variables runs on the controller as an action; it was run as a module")


if __name__ == "__main__":
    main()
