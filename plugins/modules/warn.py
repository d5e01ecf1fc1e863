#!/usr/bin/python
# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Documentation of the warn action; it runs on the controller, never as a module."""

from __future__ import annotations

DOCUMENTATION = r"""
module: warn
short_description: Show a message as a warning and go on
version_added: 0.1.0
description:
  - The message appears among the run's warnings (C([WARNING]) in the output), where M(ansible.builtin.debug)
    would print it as one more task result. The task never fails and never changes anything.
  - The wsfleet roles use it when C(wsfleet_allow_untested_os) lets them run on a Debian derivative
    they are not tested on.
  - Runs on the controller only; it does not contact the host.
options:
  msg:
    description: The warning.
    type: str
    required: true
author:
  - wsfleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Warn that the host is not one the roles are tested on
  wsfleet.fleet.warn:
    msg: "{{ inventory_hostname }} runs {{ ansible_facts['distribution'] }}, not Debian 12 or 13"
  when: ansible_facts['distribution'] != 'Debian'
"""

RETURN = r"""
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"msg": {"type": "str", "required": True}}, supports_check_mode=True)
    module.fail_json(msg="wsfleet.fleet.warn runs on the controller as an action; it was run as a module")


if __name__ == "__main__":
    main()
