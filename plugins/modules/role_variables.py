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
  - With O(options) (the role's argument specification), a value of an option of type C(int), C(float)
    or C(bool) that does not convert fails first, with a message naming the variable, the value and
    what fits (C(echo_app_ping_interval must be a number (got 'often'))). ansible-core's own check of
    the argument specification names its internal string class there instead. So does a value of a
    string option outside its C(choices) (C(wsfleet_lb must be one of nginx, haproxy (got 'apache'))),
    where ansible-core's check prints the whole argument specification with it.
  - Then, with O(options), the values are checked against the whole specification as
    M(ansible.builtin.validate_argument_spec) checks them (lists and their elements, dicts,
    required options); a failure lists the errors (RV(argument_errors)), without the specification.
  - Runs on the controller only, from the variables Ansible already holds; it does not contact the host.
options:
  prefix:
    description: Names starting with it are checked, e.g. C(supervisord_).
    type: str
    required: true
  known:
    description:
      - The names the role knows (its options, and any fact it publishes itself).
      - Defaults to the names in O(options).
    type: list
    elements: str
  options:
    description: The options of the role's argument specification (C(argument_specs.main.options)).
    type: dict
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
    options: "{{ (lookup('ansible.builtin.file', role_path ~ '/meta/argument_specs.yml') | from_yaml).argument_specs.main.options }}"
    strict: "{{ wsfleet_strict_variables | default(false) }}"
"""

RETURN = r"""
unknown:
  description: The unknown names, sorted.
  type: list
  elements: str
  returned: always
  sample: [supervisord_numproc]
argument_errors:
  description: What the argument specification refused, one message each.
  type: list
  elements: str
  returned: failed
  sample: ["Elements value for option 'echo_app_origins' is of type <class 'int'> and we were unable to convert to str"]
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "prefix": {"type": "str", "required": True},
            "known": {"type": "list", "elements": "str"},
            "options": {"type": "dict"},
            "strict": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    module.fail_json(msg="wsfleet.fleet.role_variables runs on the controller as an action; it was run as a module")


if __name__ == "__main__":
    main()
