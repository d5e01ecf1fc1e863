"""wsfleet.fleet.dirs_to_make: which of a role's directories the look at the host found otherwise."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wsfleet.fleet.plugins.filter.dirs_to_make import dirs_to_make

ROOT = {"path": "/opt/app", "owner": "root", "group": "root", "mode": "0755"}
CONFIG = {"path": "/etc/app", "owner": "root", "group": "app", "mode": "0750"}
AS_STATED = {
    "/opt/app": {"exists": True, "isdir": True, "isreg": False, "islnk": False, "pw_name": "root", "gr_name": "root", "mode": "0755"},
    "/etc/app": {"exists": True, "isdir": True, "isreg": False, "islnk": False, "pw_name": "root", "gr_name": "app", "mode": "0750"},
}


def test_none_when_every_directory_is_as_stated() -> None:
    assert dirs_to_make([ROOT, CONFIG], AS_STATED) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"exists": False, "isdir": False}, "missing"),
        ({"isdir": False, "isreg": True}, "a file"),
        ({"isdir": False, "islnk": True}, "a link"),
        ({"pw_name": "nobody"}, "owner"),
        ({"gr_name": "root"}, "group"),
        ({"mode": "0777"}, "mode"),
    ],
)
def test_a_directory_found_otherwise_is_made(change, why) -> None:
    found = {**AS_STATED, "/etc/app": {**AS_STATED["/etc/app"], **change}}
    assert dirs_to_make([ROOT, CONFIG], found) == [{**CONFIG, "state": "directory"}], why


def test_a_path_the_look_did_not_include_is_made() -> None:
    assert dirs_to_make([ROOT, CONFIG], {"/opt/app": AS_STATED["/opt/app"]}) == [{**CONFIG, "state": "directory"}]


def test_a_directory_without_its_mode_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="lacks mode"):
        dirs_to_make([{"path": "/opt/app", "owner": "root", "group": "root"}], AS_STATED)
