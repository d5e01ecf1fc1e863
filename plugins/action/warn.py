# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Show a message as an Ansible warning and go on: ansible-core has no task that warns."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("msg",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec={"msg": {"type": "str", "required": True}})
        result.update(changed=False, warnings=[args["msg"]])
        return result
