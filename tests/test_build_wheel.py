"""roles/echo_app/files/build_wheel.py: the app wheel is built without writing into its source."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("build_wheel", ROOT / "roles" / "echo_app" / "files" / "build_wheel.py")
build_wheel = importlib.util.module_from_spec(SPEC)
sys.modules["build_wheel"] = build_wheel
SPEC.loader.exec_module(build_wheel)
TINYAPP = ROOT / "extensions" / "molecule" / "resources" / "tinyapp"


def snapshot(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(tree.rglob("*"))}


def read_only_copy(tmp_path: Path) -> Path:
    """tinyapp as it sits in a collection installed by root and run by someone else: nothing writable.

    Root ignores the modes; the tests compare a snapshot of every file, which shows any write anyway.
    """
    source = tmp_path / "collection" / "tinyapp"
    shutil.copytree(TINYAPP, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    for path in [source, *source.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return source


@pytest.fixture()
def source(tmp_path: Path):
    tree = read_only_copy(tmp_path)
    yield tree
    for path in [tree, *tree.rglob("*")]:  # let pytest remove it
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_builds_from_a_read_only_source_and_leaves_it_untouched(source: Path, tmp_path: Path):
    before = snapshot(source)
    dest = tmp_path / "cache" / "app" / "key"
    build_wheel.build(str(source), str(dest), [])
    assert [p.name for p in dest.iterdir()][0].endswith(".whl"), list(dest.iterdir())
    assert snapshot(source) == before  # no build/, no *.egg-info, nothing changed
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".build-")]  # no leftovers


def test_a_second_build_of_the_same_key_keeps_the_first(source: Path, tmp_path: Path):
    dest = tmp_path / "cache" / "app" / "key"
    build_wheel.build(str(source), str(dest), [])
    first = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    build_wheel.build(str(source), str(dest), [])  # as a concurrent run that finished second
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == first
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".build-")]


def test_pip_arguments_reach_the_build(source: Path, tmp_path: Path):
    """With --no-index and an empty wheelhouse the build backend cannot be found: the arguments are used."""
    empty = tmp_path / "wheelhouse"
    empty.mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        build_wheel.build(str(source), str(tmp_path / "cache" / "app" / "key"), ["--no-index", "--find-links", str(empty)])
    assert not (tmp_path / "cache" / "app" / "key").exists()


def test_what_is_left_out_matches_the_cache_key():
    ignore = build_wheel._ignore("/src")
    assert ignore("/src", ["build", "dist", ".git", "pkg", "x.egg-info", "__pycache__"]) == {"build", "dist", ".git", "x.egg-info", "__pycache__"}
    assert ignore("/src/pkg", ["build", "dist", ".hidden", "mod.py"]) == {".hidden"}  # build/ below the top is code



def test_a_process_that_may_not_write_the_source_builds_from_it(source: Path, tmp_path: Path):
    """What the tests above cannot show as root, who writes anywhere: the build as a process that
    file modes bind (root without the capabilities that bypass them, as an unprivileged controller
    account is bound), so the copy it builds in must be writable although the source is not."""
    before = snapshot(source)
    dest = tmp_path / "cache" / "app" / "key"
    built = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", sys.executable,
                            ROOT / "roles/echo_app/files/build_wheel.py", source, dest], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert [p.name for p in dest.iterdir()][0].endswith(".whl")
    assert snapshot(source) == before
