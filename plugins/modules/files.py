#!/usr/bin/python
# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Bring a role's files and directories to their stated content, owner, group and mode in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: files
short_description: A role's files and directories, compared and repaired in one call
version_added: 0.1.0
description:
  - Each entry of O(files) states one path - a file with its content, a directory, or nothing
    (C(absent)) - and the owner, group and mode it must have. The module compares every entry on the
    host and changes only what differs - content (written to a temporary file beside the path, checked
    with O(files[].validate) when given, then moved into place atomically), owner, group, mode - so a
    re-run that finds everything in place costs one module run, however many files a role manages,
    and every hand edit is still repaired.
  - The content is rendered on the controller, e.g. with the C(ansible.builtin.template) lookup;
    the module sees only text.
  - Check mode reports what would change without changing it; diff mode shows each changed file's
    content and each changed attribute.
  - A path that is a directory where a file is stated, or anything but a directory where a directory
    is stated, fails without a change to it - the module does not take over what it did not make.
    Every entry is checked so before the first change, and so is a path stated twice.
    A symbolic link where a file is stated is replaced by the file, as C(ansible.builtin.template)
    does.
options:
  files:
    description: The paths, in order. Missing parent directories are created (root's, mode 0755).
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description: C(file) with O(files[].content), C(directory), or C(absent) (a directory is removed with what it holds).
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The file's whole content (C(state=file) only).
        type: str
      owner:
        description: User name; unchanged when not given.
        type: str
      group:
        description: Group name; unchanged when not given.
        type: str
      mode:
        description:
          - Octal mode as a string, e.g. C('0640') or C('2750').
          - When not given, an existing path keeps its mode, and a new file gets C(0644).
        type: str
      secret:
        description:
          - The content is a secret (a private key) - it is masked in the module's result and its
            diff shows no content - so the task need not be C(no_log), which would hide a validation
            failure's message with it.
        type: bool
        default: false
      force:
        description:
          - With C(false), a file that exists keeps its content (its owner, group and mode are still
            set); the content is written only when the file is missing.
        type: bool
        default: true
      validate:
        description:
          - A command run on the new content before it replaces the file, C(%s) standing for the
            temporary file's path; a non-zero exit fails the task and leaves the file as it was.
        type: str
author:
  - wsfleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the app's files
  wsfleet.fleet.files:
    files:
      - path: /etc/wsfleet-echo/app.env
        content: "{{ lookup('ansible.builtin.template', 'app.env.j2') }}"
        owner: root
        group: wsfleet
        mode: "0640"
      - path: /run/wsfleet-echo-metrics
        state: directory
        owner: wsfleet
        group: wsfleet
        mode: "0750"
      - path: /etc/tmpfiles.d/old.conf
        state: absent
  notify: wsfleet app changed
"""

RETURN = r"""
changed_paths:
  description: The paths that were (in check mode, would be) changed, in the order given.
  type: list
  elements: str
  returned: always
  sample: [/etc/wsfleet-echo/app.env]
"""

import os
import re
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

MODE = re.compile(r"^0?[0-7]{3,4}$")


def _attributes(entry: dict) -> dict:
    return {
        "path": entry["path"],
        "owner": entry.get("owner"),
        "group": entry.get("group"),
        "mode": entry.get("mode"),
        "attributes": None,
        "secontext": [None, None, None, None],  # keep the current SELinux context
    }


def _check_entry(module: AnsibleModule, index: int, entry: dict, seen: set) -> None:
    where = "files[%d] (%s)" % (index, entry.get("path"))
    if not os.path.isabs(entry["path"]):
        module.fail_json(msg="%s: path must be absolute" % where)
    if entry["state"] == "file" and entry.get("content") is None:
        module.fail_json(msg="%s: a file needs content" % where)
    if entry["state"] != "file" and (entry.get("content") is not None or entry.get("validate")):
        module.fail_json(msg="%s: content and validate are for state=file only" % where)
    if entry.get("mode") is not None and not MODE.match(entry["mode"]):
        module.fail_json(msg="%s: mode must be an octal string such as '0640' (got %r)" % (where, entry["mode"]))
    if entry.get("validate") and "%s" not in entry["validate"]:
        module.fail_json(msg="%s: validate must contain %%s, the new content's path" % where)
    # What is there and of another kind is not this module's to replace.
    path = entry["path"]
    if entry["state"] == "file" and os.path.lexists(path) and not os.path.islink(path) \
            and not stat.S_ISREG(os.lstat(path).st_mode):
        module.fail_json(msg="%s exists and is not a regular file; it was left as it is" % path)
    if entry["state"] == "directory" and os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        module.fail_json(msg="%s exists and is not a directory; it was left as it is" % path)
    if path in seen:
        module.fail_json(msg="%s: the path is stated twice" % where)
    seen.add(path)


def _absent(module: AnsibleModule, path: str) -> bool:
    if not os.path.lexists(path):
        return False
    if not module.check_mode:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return True


def _directory(module: AnsibleModule, entry: dict, diff: dict) -> bool:
    path = entry["path"]
    changed = False
    if not os.path.lexists(path):  # what exists is a directory: _check_entry refused anything else
        changed = True
        diff["before"]["state"], diff["after"]["state"] = "absent", "directory"
        if module.check_mode:
            return True
        os.makedirs(path)
    return module.set_fs_attributes_if_different(_attributes(entry), changed, diff)


def _file(module: AnsibleModule, entry: dict, diff: dict) -> bool:
    path = entry["path"]
    new = to_bytes(entry["content"], errors="surrogate_or_strict")
    # None: no file; a link counts as a file to replace. Anything else that exists is a regular file
    # (_check_entry refused the rest).
    link = os.path.islink(path)
    old = None
    if link:
        old = b""
    elif os.path.lexists(path):
        with open(path, "rb") as handle:
            old = handle.read()
    if old == new or (old is not None and not link and not entry["force"]):
        return module.set_fs_attributes_if_different(_attributes(entry), False, diff)

    if entry["secret"]:
        diff["before"] = {"content": "(secret)" if old is not None else "(none)"}
        diff["after"] = {"content": "(secret, changed)"}
    else:
        diff["before"] = to_text(old or b"", errors="surrogate_or_replace")
        diff["after"] = to_text(new, errors="surrogate_or_replace")
    if module.check_mode:
        return True
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    handle, tmp = tempfile.mkstemp(prefix=".wsfleet-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(new)
            out.flush()
            os.fsync(out.fileno())
        if entry.get("validate"):
            rc, out_text, err_text = module.run_command(entry["validate"] % tmp)
            if rc != 0:
                module.fail_json(
                    msg="%s: the new content failed validation (%s), the file was left as it was"
                    % (path, entry["validate"] % tmp),
                    rc=rc, stdout=out_text, stderr=err_text,
                )
        # A new file gets the stated attributes before it appears; an existing one keeps its own until
        # they are set below (atomic_move copies them onto the new content).
        if old is None:
            os.chmod(tmp, 0o644)
            module.set_fs_attributes_if_different(dict(_attributes(entry), path=tmp), False)
        module.atomic_move(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    module.set_fs_attributes_if_different(_attributes(entry), True)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
                    "content": {"type": "str"},
                    "owner": {"type": "str"},
                    "group": {"type": "str"},
                    "mode": {"type": "str"},
                    "secret": {"type": "bool", "default": False},
                    "force": {"type": "bool", "default": True},
                    "validate": {"type": "str"},
                },
            },
        },
        supports_check_mode=True,
    )
    entries = module.params["files"]
    for entry in entries:
        if entry["secret"] and entry.get("content"):
            module.no_log_values.add(entry["content"])
    # Every entry is checked before the first change.
    seen: set = set()
    for index, entry in enumerate(entries):
        _check_entry(module, index, entry, seen)

    changed_paths = []
    diffs = []
    for entry in entries:
        diff = {"before": {}, "after": {}, "before_header": entry["path"], "after_header": entry["path"]}
        try:
            if entry["state"] == "absent":
                changed = _absent(module, entry["path"])
                if changed:
                    diff["before"], diff["after"] = {"state": "present"}, {"state": "absent"}
            elif entry["state"] == "directory":
                changed = _directory(module, entry, diff)
            else:
                changed = _file(module, entry, diff)
        except OSError as exc:
            module.fail_json(msg="%s: %s" % (entry["path"], to_native(exc)), changed_paths=changed_paths)
        if changed:
            changed_paths.append(entry["path"])
            diffs.append(diff)

    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=diffs)


if __name__ == "__main__":
    main()
