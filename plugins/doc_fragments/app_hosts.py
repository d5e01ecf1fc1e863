# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""The options of the filters that read what the app hosts published (backend_endpoints, app_silence)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  _input:
    description: Names of the app hosts (e.g. C(groups['app'])).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) of the play.
    type: dict
    required: true
"""
