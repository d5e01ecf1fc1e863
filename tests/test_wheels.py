"""Wheel rules of the echo_app role: which wheels a target can install, and whether pip has work to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))
from requirements_installed import FilterModule as InstalledFilters  # noqa: E402
from requirements_installed import requirements_installed  # noqa: E402
from wheel_download_tags import FilterModule as TagsFilters  # noqa: E402
from wheel_download_tags import wheel_download_tags  # noqa: E402

DEBIAN_12 = {"python": "3.11", "machine": "x86_64", "glibc": "2.36"}


def values(args: list[str], option: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{option}=")]


def admits(args: list[str], wheel: str) -> bool:
    """Whether pip download with these arguments would take this wheel: the tags pip supports for
    --python-version/--abi/--platform, as packaging.tags (which pip uses) generates them."""
    version = tuple(int(n) for n in values(args, "python-version")[0].split("."))
    platforms, abis = values(args, "platform"), values(args, "abi")
    supported = {*cpython_tags(version, abis, platforms), *compatible_tags(version, f"cp{version[0]}{version[1]}", platforms)}
    return bool(set(parse_wheel_filename(wheel)[3]) & supported)


@pytest.mark.parametrize(("wheel", "expected"), [
    ("websockets-16.0-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
    ("uvloop-0.22.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
    ("prometheus_client-0.23.1-py3-none-any.whl", True),
    ("orjson-3.11.0-cp311-cp311-manylinux_2_36_x86_64.whl", True),
    ("orjson-3.11.0-cp311-cp311-manylinux_2_39_x86_64.whl", False),   # needs a newer glibc than Debian 12's
    ("orjson-3.11.0-cp311-cp311-musllinux_1_2_x86_64.whl", False),    # musl, not glibc
    ("orjson-3.11.0-cp312-cp312-manylinux_2_17_x86_64.whl", False),   # another CPython
    ("orjson-3.11.0-cp311-cp311-manylinux_2_17_aarch64.whl", False),  # another machine
    ("cryptography-46.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", True),  # the stable ABI
])
def test_the_tags_admit_what_the_target_can_install(wheel: str, expected: bool) -> None:
    assert admits(wheel_download_tags(DEBIAN_12), wheel) is expected


def test_every_manylinux_platform_up_to_the_targets_glibc() -> None:
    platforms = values(wheel_download_tags({"python": "3.13", "machine": "aarch64", "glibc": "2.41"}), "platform")
    assert [p for p in platforms if p.startswith("manylinux_2_")] == [f"manylinux_2_{n}_aarch64" for n in range(41, 4, -1)]
    assert {"manylinux2014_aarch64", "manylinux2010_aarch64", "manylinux1_aarch64", "linux_aarch64", "any"} <= set(platforms)
    assert values(wheel_download_tags({"python": "3.13", "machine": "aarch64", "glibc": "2.41"}), "abi") == ["cp313", "abi3", "none"]


@pytest.mark.parametrize("target", [{"python": "3", "machine": "x86_64", "glibc": "2.36"},
                                    {"python": "3.11", "machine": "x86_64", "glibc": ""},
                                    {"python": "3.11", "machine": "x86 64; rm", "glibc": "2.36"},
                                    {"python": "3.11", "machine": "x86_64", "glibc": "1.9"}, "3.11"])
def test_a_target_that_is_not_one_is_an_error(target) -> None:
    with pytest.raises(AnsibleFilterError, match="wheel_download_tags"):
        wheel_download_tags(target)


INSTALLED = ["websockets-16.0.dist-info", "wsfleet_echo-0.1.0.dist-info", "prometheus_client-0.23.1.dist-info", "pip-25.0.dist-info"]


@pytest.mark.parametrize(("requirements", "expected"), [
    (["websockets==16.0", "wsfleet_echo==0.1.0"], True),
    (["WebSockets==16.0", "wsfleet-echo==0.1.0", "prometheus.client==0.23.1"], True),  # names as PEP 503 compares them
    (["websockets==16.0.0"], True),                                                      # versions as PEP 440 compares them
    (["websockets==15.0.1"], False),
    (["uvloop==0.22.1"], False),
    (["websockets>=16"], False),          # not a pin: only pip knows what it would pick
    (["websockets==16.*"], False),
    (["websockets[speedups]==16.0"], False),
    (["websockets==16.0; python_version<'3.8'"], False),
    (["not a requirement"], False),
    ([], True),
])
def test_requirements_installed(requirements, expected) -> None:
    assert requirements_installed(requirements, INSTALLED) is expected


def test_registered_under_their_names() -> None:
    assert TagsFilters().filters()["wheel_download_tags"] is wheel_download_tags
    assert InstalledFilters().filters()["requirements_installed"] is requirements_installed
