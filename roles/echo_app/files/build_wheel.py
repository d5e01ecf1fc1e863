# Copyright (c) wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Build the app wheel on the controller without writing into the package directory.

    build_wheel.py SOURCE DEST [PIP_ARGS...]

The package directory (maybe inside a read-only, installed collection) is copied to a temporary
directory first, leaving out what the wheel's cache key leaves out (hidden files and directories,
__pycache__, *.egg-info everywhere; build/ and dist/ at the top), and `pip wheel --no-deps` builds
there, so build/ and *.egg-info land in the copy. PIP_ARGS (echo_app_pip_download_args) apply to
the build too: with `--no-index --find-links DIR` the build backend (setuptools) comes from DIR, so
an offline controller needs nothing else. The wheel is built into a fresh directory beside DEST
that is then renamed to DEST: another run that built the same key first keeps its copy.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile

TOP_LEVEL_OUTPUTS = {"build", "dist"}


def _ignore(source: str):
    """shutil.copytree's ignore callable: the same files the wheel's cache key leaves out."""
    top = os.path.abspath(source)

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n.startswith(".") or n == "__pycache__" or n.endswith(".egg-info")}
        if os.path.abspath(directory) == top:
            skipped |= TOP_LEVEL_OUTPUTS & set(names)
        return skipped

    return ignore


def build(source: str, dest: str, pip_args: list[str]) -> None:
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    out = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        with tempfile.TemporaryDirectory(prefix="wsfleet-app-") as scratch:
            tree = os.path.join(scratch, "src")
            shutil.copytree(source, tree, ignore=_ignore(source))
            # copytree keeps modes: from a read-only install the copy would be read-only too, and the
            # build could not write its *.egg-info and build/ into it.
            for directory, _subdirs, _files in os.walk(tree):
                os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR)
            command = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps",
                       "--wheel-dir", out, *pip_args, tree]
            subprocess.run(command, check=True)
        try:
            os.rename(out, dest)
        except OSError:
            # Another run put its build of the same key in place first: keep it if it holds a wheel.
            if not os.path.isdir(dest) or not any(name.endswith(".whl") for name in os.listdir(dest)):
                raise
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build(argv[0], argv[1], argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
