# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Read a fact a wsfleet role published on a host (supervisord_endpoint_settings, echo_app_keepalive)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def published_fact(host_vars: Mapping[str, Any], name: str) -> Any:
    """The fact as set in this run (a host variable), else as a fact cache kept it from an earlier
    run (under ansible_facts: the collection runs with inject_facts_as_vars off); None when neither."""
    value = host_vars.get(name) if name in host_vars else None
    if value is None and "ansible_facts" in host_vars:
        value = (host_vars.get("ansible_facts") or {}).get(name)
    return value
