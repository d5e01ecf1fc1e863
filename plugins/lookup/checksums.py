# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""SHA-1 of files on the controller, read in the controller's own process."""

from __future__ import annotations

DOCUMENTATION = r"""
name: checksums
short_description: SHA-1 of files on the controller, without starting a module
version_added: 0.1.0
description:
  - One C({path, checksum}) per regular file, C(checksum) being the SHA-1 in hex (the value
    C(ansible.builtin.stat) and C(ansible.builtin.find) call C(checksum)), for the file a term names
    or for every regular file under a directory a term names, in sorted order.
  - It does what a C(find) or C(stat) task delegated to localhost does, in the controller's own
    process. Each such task costs about half a second here (a worker and a Python interpreter
    started for one module run); the C(wsfleet.fleet.echo_app) role ran three of them on every run.
  - Symbolic links are not followed and not listed. A term that does not exist is an error naming it.
options:
  _terms:
    description: Paths on the controller, files or directories.
    type: list
    elements: path
    required: true
  patterns:
    description: Shell globs; only files whose name matches one are listed. All files when empty.
    type: list
    elements: str
    default: []
  prune:
    description:
      - Regular expressions; a directory whose path relative to the term (C(build), C(src/.cache))
        matches one (C(re.fullmatch)) is not entered.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Key a package directory by its content, leaving out caches and build outputs
  ansible.builtin.set_fact:
    key: "{{ query('wsfleet.fleet.checksums', 'app', prune=['build', 'dist', '(.*/)?(\\..+|__pycache__)']) | to_json | hash('sha1') }}"
"""

RETURN = r"""
_raw:
  description: One dictionary per file.
  type: list
  elements: dict
  contains:
    path:
      description: The file's path (the term, or the term joined with the path below it).
      type: str
    checksum:
      description: SHA-1 of the file's content, hex.
      type: str
"""

import fnmatch
import hashlib
import os
import re
import stat

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def sha1(path: str) -> str:
    digest = hashlib.sha1()  # noqa: S324 (what stat and find report as checksum, for comparison)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(term: str, patterns: list[str], prune: list[str]) -> list[dict[str, str]]:
    """The files of one term, sorted by path."""
    try:
        st = os.lstat(term)
    except OSError as e:
        raise AnsibleLookupError(f"checksums: {term}: {e.strerror}") from e
    wanted = (lambda name: any(fnmatch.fnmatch(name, p) for p in patterns)) if patterns else (lambda name: True)
    if stat.S_ISREG(st.st_mode):
        return [{"path": term, "checksum": sha1(term)}] if wanted(os.path.basename(term)) else []
    if not stat.S_ISDIR(st.st_mode):
        raise AnsibleLookupError(f"checksums: {term} is neither a regular file nor a directory")
    pruned = [re.compile(p) for p in prune]
    found = []
    for root, dirs, files in os.walk(term, onerror=None, followlinks=False):
        rel = os.path.relpath(root, term)
        dirs[:] = [d for d in dirs if not any(p.fullmatch(os.path.normpath(os.path.join(rel, d))) for p in pruned)]
        for name in files:
            path = os.path.join(root, name)
            if wanted(name) and stat.S_ISREG(os.lstat(path).st_mode):
                found.append({"path": path, "checksum": sha1(path)})
    return sorted(found, key=lambda f: f["path"])


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        patterns = self.get_option("patterns")
        prune = self.get_option("prune")
        return [f for term in terms for f in checksums(str(term), patterns, prune)]
