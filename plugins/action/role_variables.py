# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Report variables with a role's prefix that the role does not know: typos, on the controller."""

from __future__ import annotations

import difflib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("prefix", "known", "strict"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec={
            "prefix": {"type": "str", "required": True},
            "known": {"type": "list", "elements": "str", "required": True},
            "strict": {"type": "bool", "default": False},
        })
        prefix, known = args["prefix"], set(args["known"])
        if not prefix or not known:
            raise AnsibleActionFail("role_variables: prefix and known must not be empty")
        unknown = sorted(name for name in task_vars if name.startswith(prefix) and name not in known)
        lines = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            lines.append(f"{name} is not a variable of this role (did you mean {close[0]}?)" if close
                         else f"{name} is not a variable of this role; its variables are in its README")
        result.update(changed=False, unknown=unknown)
        if lines and boolean(args["strict"]):
            result.update(failed=True, msg="; ".join(lines) + " (wsfleet_strict_variables is true)")
        elif lines:
            result["warnings"] = [line + ", so it changes nothing." for line in lines]
        return result
