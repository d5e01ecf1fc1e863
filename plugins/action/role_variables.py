# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Report variables with a role's prefix that the role does not know (typos), and refuse values of its
numeric and boolean options that do not convert, and of its string options outside their choices, with
a message naming the variable and what fits: on the controller."""

from __future__ import annotations

import difflib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("prefix", "known", "options", "strict"))
    # What each argument-spec type accepts, said the way a user sets it.
    _CONVERTS = {
        "int": (check_type_int, "a whole number"),
        "float": (check_type_float, "a number"),
        "bool": (check_type_bool, "true or false (yes/no, 1/0 and on/off too)"),
    }

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec={
            "prefix": {"type": "str", "required": True},
            "known": {"type": "list", "elements": "str"},
            "options": {"type": "dict"},
            "strict": {"type": "bool", "default": False},
        })
        options = args["options"] or {}
        prefix, known = args["prefix"], set(args["known"] if args["known"] is not None else options)
        if not prefix or not known:
            raise AnsibleActionFail("role_variables: prefix and known (or options) must not be empty")
        # Before the argument spec is checked: its own message for "often" as a number names
        # ansible-core's internal string class. This one names the variable, the value and what fits.
        wrong = []
        for name, spec in sorted(options.items()):
            spec = spec or {}
            check = self._CONVERTS.get(spec.get("type", ""))
            choices = spec.get("choices") if spec.get("type", "str") == "str" else None
            if (check is None and not choices) or name not in task_vars:
                continue
            value = self._templar.template(task_vars[name])
            if choices and str(value) not in [str(choice) for choice in choices]:
                wrong.append(f"{name} must be one of {', '.join(map(str, choices))} (got {str(value)!r})")
                continue
            try:
                if check is not None:
                    check[0](value)
            except (TypeError, ValueError):
                wrong.append(f"{name} must be {check[1]} (got {str(value)!r})")
        if wrong:
            result.update(failed=True, changed=False, unknown=[], msg="; ".join(wrong) + ".")
            return result
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
