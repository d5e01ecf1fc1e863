# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Report variables with a role's prefix that the role does not know (typos), refuse values of its
numeric and boolean options that do not convert, and of its string options outside their choices, with
a message naming the variable and what fits, then check the values against the whole argument spec as
ansible.builtin.validate_argument_spec does: on the controller, in one task."""

from __future__ import annotations

import difflib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


def _plain(value):
    """The value in plain Python types: the validator's messages name a value's class, and
    ansible-core's tagged containers would show there as its internal _AnsibleTaggedDict."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


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
        templated: dict = {}  # each option's value, templated once for both checks

        def value_of(name: str):
            if name not in templated:
                templated[name] = self._templar.template(task_vars[name])
            return templated[name]

        wrong = []
        for name, spec in sorted(options.items()):
            spec = spec or {}
            check = self._CONVERTS.get(spec.get("type", ""))
            choices = spec.get("choices") if spec.get("type", "str") == "str" else None
            if (check is None and not choices) or name not in task_vars:
                continue
            value = value_of(name)
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
            return result
        if lines:
            result["warnings"] = [line + ", so it changes nothing." for line in lines]
        # The rest of the spec (lists and their elements, dicts, required options), as
        # validate_argument_spec checks it, without its dump of the whole spec into the output. A task
        # of its own cost each role's checks a worker on every host, 7 per host in a run of site.yml.
        values = _plain({name: value_of(name) for name in options if name in task_vars})
        errors = ArgumentSpecValidator(options).validate(values, validate_role_argument_spec=True).error_messages
        if errors:
            result.update(failed=True, argument_errors=errors, msg="Validation of arguments failed:\n" + "\n".join(errors))
        return result
