"""wsfleet.fleet.files, the module the roles write their files with: real ansible-playbook runs on
this machine (local connection), every path under the test's own directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from local_play import run_play


def run(tmp_path: Path, entries: list[dict], *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """One task with the given entries; returns the run and the task's result."""
    tasks = "    - wsfleet.fleet.files:\n        files: " + json.dumps(entries) + "\n      register: out\n"
    return run_play(tmp_path, tasks, "out", *args)


def mode(path: Path) -> str:
    return "%04o" % stat.S_IMODE(path.lstat().st_mode)


def test_writes_then_finds_everything_in_place_then_repairs_each_drift(tmp_path: Path) -> None:
    conf, tree, gone = tmp_path / "etc" / "app.conf", tmp_path / "run" / "app", tmp_path / "old.conf"
    gone.write_text("left by an older version\n")
    entries = [
        {"path": str(conf), "content": "a = 1\n", "owner": "root", "group": "root", "mode": "0640"},
        {"path": str(tree), "state": "directory", "mode": "2750"},
        {"path": str(gone), "state": "absent"},
    ]
    proc, out = run(tmp_path, entries)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert out["changed_paths"] == [str(conf), str(tree), str(gone)]
    assert conf.read_text() == "a = 1\n" and mode(conf) == "0640"
    assert tree.is_dir() and mode(tree) == "2750" and not gone.exists()

    proc, out = run(tmp_path, entries)
    assert proc.returncode == 0 and out["changed"] is False and out["changed_paths"] == [], proc.stdout[-2000:]

    # A hand edit, a chmod, a path given back: --check reports each and changes none.
    conf.write_text("a = 2\n")
    conf.chmod(0o666)
    os.chmod(tree, 0o777)
    gone.write_text("back\n")
    proc, out = run(tmp_path, entries, "--check", "--diff")
    assert proc.returncode == 0 and out["changed_paths"] == [str(conf), str(tree), str(gone)], proc.stdout[-2000:]
    assert "-a = 2" in proc.stdout and "+a = 1" in proc.stdout, proc.stdout[-2000:]
    assert conf.read_text() == "a = 2\n" and mode(conf) == "0666" and mode(tree) == "0777" and gone.exists()

    proc, out = run(tmp_path, entries)
    assert proc.returncode == 0 and out["changed_paths"] == [str(conf), str(tree), str(gone)], proc.stdout[-2000:]
    assert conf.read_text() == "a = 1\n" and mode(conf) == "0640" and mode(tree) == "2750" and not gone.exists()
    proc, out = run(tmp_path, entries)
    assert proc.returncode == 0 and out["changed_paths"] == [], proc.stdout[-2000:]

    # Only the mode differs: only the mode changes (the content is not rewritten).
    conf.chmod(0o600)
    inode = conf.stat().st_ino
    proc, out = run(tmp_path, entries)
    assert out["changed_paths"] == [str(conf)] and mode(conf) == "0640" and conf.stat().st_ino == inode


def test_content_that_fails_validation_never_replaces_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("good\n")
    entry = {"path": str(conf), "content": "bad\n", "mode": "0644", "validate": "grep -q good %s"}
    proc, _ = run(tmp_path, [entry])
    assert proc.returncode != 0
    assert "the new content failed validation" in proc.stdout and str(conf) in proc.stdout, proc.stdout[-2000:]
    assert conf.read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".wsfleet-")) == []  # no temporary file left
    proc, out = run(tmp_path, [dict(entry, content="still good\n")])
    assert proc.returncode == 0 and out["changed_paths"] == [str(conf)] and conf.read_text() == "still good\n"


def test_what_it_did_not_make_is_left_alone(tmp_path: Path) -> None:
    """A directory where a file is stated, a file where a directory is stated: a failure naming the
    path, and both stay as they are. Entries are checked before the first change."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine\n")
    first = tmp_path / "first.conf"
    proc, _ = run(tmp_path, [{"path": str(first), "content": "x\n"}, {"path": str(theirs), "content": "y\n"}])
    assert proc.returncode != 0 and f"{theirs} exists and is not a regular file" in proc.stdout, proc.stdout[-2000:]
    assert (theirs / "notes.txt").read_text() == "mine\n"
    proc, _ = run(tmp_path, [{"path": str(theirs / "notes.txt"), "state": "directory"}])
    assert proc.returncode != 0 and "is not a directory" in proc.stdout, proc.stdout[-2000:]
    assert (theirs / "notes.txt").read_text() == "mine\n"
    proc, _ = run(tmp_path, [{"path": "relative.conf", "content": "x\n"}])
    assert proc.returncode != 0 and "path must be absolute" in proc.stdout, proc.stdout[-2000:]
    proc, _ = run(tmp_path, [{"path": str(first), "content": "x\n", "mode": "640"}, {"path": str(first), "content": "x\n", "mode": "rw"}])
    assert proc.returncode != 0 and "mode must be an octal string" in proc.stdout, proc.stdout[-2000:]
    assert not first.exists()  # the bad second entry stopped the run before the first was written
    proc, _ = run(tmp_path, [{"path": str(first), "content": "x\n"}, {"path": str(first), "state": "absent"}])
    assert proc.returncode != 0 and "the path is stated twice" in proc.stdout, proc.stdout[-2000:]
    assert not first.exists()


def test_force_false_keeps_an_existing_files_content(tmp_path: Path) -> None:
    settings = tmp_path / "instance"
    entry = {"path": str(settings), "content": "DEFAULT=1\n", "force": False, "mode": "0644"}
    proc, out = run(tmp_path, [entry])
    assert out["changed_paths"] == [str(settings)] and settings.read_text() == "DEFAULT=1\n"
    settings.write_text("OPERATOR=2\n")
    settings.chmod(0o600)
    proc, out = run(tmp_path, [entry])
    assert settings.read_text() == "OPERATOR=2\n" and mode(settings) == "0644" and out["changed_paths"] == [str(settings)]


def test_a_secret_is_written_but_never_shown(tmp_path: Path) -> None:
    key = tmp_path / "tls.key"
    secret = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-0123456789\n-----END PRIVATE KEY-----\n"
    entry = {"path": str(key), "content": secret, "secret": True, "mode": "0600"}
    proc, out = run(tmp_path, [entry], "--diff", "-v")
    assert proc.returncode == 0 and key.read_text() == secret and mode(key) == "0600"
    assert "not-a-real-key" not in proc.stdout + proc.stderr + json.dumps(out), proc.stdout[-2000:]
    key.write_text("edited\n")
    proc, out = run(tmp_path, [entry], "--diff", "-v")
    assert out["changed_paths"] == [str(key)] and key.read_text() == secret
    assert "not-a-real-key" not in proc.stdout + proc.stderr + json.dumps(out) and "edited" not in proc.stdout, proc.stdout[-2000:]
