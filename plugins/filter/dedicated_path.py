# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Why a path may not be a directory that a wsfleet role creates and owns, or an empty string."""

from __future__ import annotations

import posixpath
import re
from typing import Any

DOCUMENTATION = r"""
name: dedicated_path
short_description: Why a path may not be a directory that a wsfleet role creates and owns
version_added: 0.1.0
description:
  - The roles create their directories and set their owner, group and mode. Given a system
    directory (C(/tmp), C(/etc), C(/run), ...) they would take it over, so each role's preflight
    refuses such a path before any change, with this filter's message.
  - Refused are paths that are not absolute and normal (no C(//), C(.), C(..), trailing C(/)),
    that hold characters other than letters, digits and C(._-), that sit directly under C(/), that
    are one of a fixed list of system directories, or that lie under C(/proc), C(/sys) or C(/dev).
  - Whether an existing directory is the role's own is checked on the host by the role itself.
positional: variable
options:
  _input:
    description: The path.
    type: str
    required: true
  variable:
    description: The variable's name, for the message.
    type: str
    required: true
"""

EXAMPLES = r"""
- ansible.builtin.assert:
    that: (supervisord_socket_dir | wsfleet.fleet.dedicated_path('supervisord_socket_dir')) == ''
    fail_msg: "{{ supervisord_socket_dir | wsfleet.fleet.dedicated_path('supervisord_socket_dir') }}"
"""

RETURN = r"""
_value:
  description: Empty when the path may be a role's own directory, else why not (names the variable).
  type: str
"""

# Directories a distribution or another service owns: never a role's own, whatever their depth.
SYSTEM_DIRECTORIES = frozenset({
    "/etc/default", "/etc/nginx", "/etc/haproxy", "/etc/supervisor", "/etc/ssl", "/etc/systemd", "/etc/tmpfiles.d",
    "/opt/local", "/run/lock", "/run/systemd", "/run/user", "/run/sshd", "/run/haproxy", "/run/nginx", "/run/supervisor",
    "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin",
    "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/sbin", "/usr/share", "/usr/src",
    "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt",
    "/var/run", "/var/spool", "/var/tmp", "/var/www", "/var/log/supervisor", "/var/lib/haproxy",
})
VIRTUAL_ROOTS = ("/proc", "/sys", "/dev")
COMPONENT = re.compile(r"[A-Za-z0-9_.-]+")


def dedicated_path(path: Any, variable: str) -> str:
    text = str(path)
    shown = repr(text)
    allowed = "an absolute path of letters, digits and ._- that is not a system directory, e.g. /run/wsfleet or /opt/wsfleet-echo"
    if not text.startswith("/") or posixpath.normpath(text) != text or text.startswith("//"):
        return f"{variable}={shown} must be {allowed} (written without //, ., .. or a trailing /)."
    parts = [part for part in text.split("/") if part]
    if not all(COMPONENT.fullmatch(part) for part in parts):
        return f"{variable}={shown} must be {allowed}."
    if len(parts) < 2:
        return f"{variable}={shown} is a top-level directory; the role would take it over (owner, group, mode). It must be {allowed}."
    if text in SYSTEM_DIRECTORIES or any(text.startswith(root + "/") for root in VIRTUAL_ROOTS):
        return f"{variable}={shown} is a system directory; the role would take it over (owner, group, mode). It must be {allowed}."
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"dedicated_path": dedicated_path}
