"""The changelog follows antsibull-changelog: fragments lint clean, and CHANGELOG.md is what
`antsibull-changelog generate` makes of changelogs/changelog.yaml (never edited by hand).

Offline: antsibull-changelog's lint and generate read only the files here; generate runs in a
temporary copy so the working tree is never written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CHANGELOGS = ROOT / "changelogs"

def _antsibull_changelog(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "antsibull_changelog", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_fragments_lint_clean() -> None:
    """`antsibull-changelog lint`: every fragment in changelogs/fragments/ parses and uses known sections."""
    result = _antsibull_changelog("lint", cwd=ROOT)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_changelog_yaml_lints_clean() -> None:
    result = _antsibull_changelog("lint-changelog-yaml", str(CHANGELOGS / "changelog.yaml"), cwd=ROOT)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_changelog_md_is_generated_and_current(tmp_path: Path) -> None:
    """CHANGELOG.md equals a fresh `antsibull-changelog generate` from changelogs/ (run in a copy)."""
    shutil.copy(ROOT / "galaxy.yml", tmp_path / "galaxy.yml")
    (tmp_path / "changelogs").mkdir()
    for name in ("config.yaml", "changelog.yaml"):
        shutil.copy(CHANGELOGS / name, tmp_path / "changelogs" / name)
    result = _antsibull_changelog("generate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    fresh = (tmp_path / "CHANGELOG.md").read_text()
    assert (ROOT / "CHANGELOG.md").read_text() == fresh, (
        "CHANGELOG.md is stale or was edited by hand: add a fragment to changelogs/fragments/ "
        "instead, and regenerate with `antsibull-changelog generate` after a release"
    )


def test_galaxy_version_is_not_behind_the_last_release() -> None:
    """galaxy.yml's version is the latest release in changelogs/changelog.yaml, or a later one."""
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    changes = yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text())
    releases = sorted((Version(v) for v in changes.get("releases") or {}), reverse=True)
    assert releases, "changelogs/changelog.yaml holds no release"
    assert Version(galaxy["version"]) >= releases[0]


def test_fragments_directory_is_kept() -> None:
    assert (CHANGELOGS / "fragments" / ".keep").is_file()
