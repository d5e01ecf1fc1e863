#!/usr/bin/env python3
"""Molecule's create and destroy for these scenarios: each platform's container and network through
the docker CLI, in one process.

    instances.py create|destroy PLATFORMS_JSON

resources/create.yml and destroy.yml call it with molecule's platforms (molecule_yml.platforms,
the environment already expanded). The docker driver's own playbooks did the same with a
docker_container module run per platform, started asynchronously and polled with async_status, and
a docker_network_info and docker_network run per network. Measured on lb_nginx-d12 with
/usr/bin/time, controller CPU-seconds: `molecule destroy` 5.4 (nothing there) and 6.8 (a container)
against 3.9 now; `molecule create` (which runs the prepare playbook too) 15 against 9.5; most of
what is left is molecule's own start and its `ansible-playbook --version` before each playbook.
The platform keys mean what they mean to that driver; a key this script does not know stops it, so
an option added to a platform is never silently dropped.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

LABEL = "owner=molecule"  # the docker driver's label: `molecule reset` finds these too
# Molecule's default when a platform gives no command (its driver's override_command).
DEFAULT_COMMAND = 'bash -c "while true; do sleep 10000; done"'
KNOWN = {"name", "image", "pre_build_image", "groups", "children", "hostname", "command", "capabilities",
         "security_opts", "cgroupns_mode", "volumes", "tmpfs", "env", "docker_networks", "networks"}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"docker {shlex.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def networks(platforms: list[dict]) -> list[dict]:
    """The networks the platforms name, each once: those of docker_networks with their settings,
    then any other named in networks (the driver's molecule_get_docker_networks)."""
    found: dict[str, dict] = {}
    for platform in platforms:
        for network in platform.get("docker_networks") or []:
            found.setdefault(network["name"], network)
        for network in platform.get("networks") or []:
            found.setdefault(network["name"], {"name": network["name"]})
    return list(found.values())


def create_args(platform: dict) -> list[str]:
    """`docker create` for the platform (started once every network is connected)."""
    name = platform["name"]
    if not platform.get("pre_build_image"):
        sys.exit(f"platform {name}: only pre-built images (pre_build_image: true; scripts/build-images.sh builds them)")
    args = ["create", "--name", name, "--hostname", platform.get("hostname", name), "--label", LABEL,
            "--log-driver", "json-file"]
    args += [f"--cap-add={capability}" for capability in platform.get("capabilities") or []]
    args += [f"--security-opt={option}" for option in platform.get("security_opts") or []]
    args += [f"--cgroupns={platform['cgroupns_mode']}"] if platform.get("cgroupns_mode") else []
    args += [f"--volume={volume}" for volume in platform.get("volumes") or []]
    args += [f"--tmpfs={path}" for path in platform.get("tmpfs") or []]
    args += [f"--env={key}={value}" for key, value in (platform.get("env") or {}).items()]
    attached = platform.get("networks") or []
    if attached:  # the first here, the others connected before the start (no default bridge)
        args += ["--network", attached[0]["name"]]
        args += ["--ip", attached[0]["ipv4_address"]] if attached[0].get("ipv4_address") else []
    return [*args, platform["image"], *shlex.split(platform.get("command") or DEFAULT_COMMAND)]


def create(platforms: list[dict]) -> None:
    for platform in platforms:
        unknown = sorted(set(platform) - KNOWN)
        if unknown:
            sys.exit(f"platform {platform['name']}: {', '.join(unknown)} not handled by {__file__} (it knows {', '.join(sorted(KNOWN))})")
    for network in networks(platforms):
        if docker("network", "inspect", network["name"], check=False).returncode == 0:
            continue
        subnets = [f"--subnet={ipam['subnet']}" for ipam in network.get("ipam_config") or [] if ipam.get("subnet")]
        docker("network", "create", "--label", LABEL, *subnets, network["name"])
    for platform in platforms:
        name = platform["name"]
        state = docker("container", "inspect", "--format", "{{.State.Running}}", name, check=False)
        if state.returncode == 0:  # created before (molecule create after a converge that failed): started, not replaced
            if state.stdout.strip() != "true":
                docker("start", name)
            continue
        docker(*create_args(platform))
        for network in (platform.get("networks") or [])[1:]:
            ip = ["--ip", network["ipv4_address"]] if network.get("ipv4_address") else []
            docker("network", "connect", *ip, network["name"], name)
        docker("start", name)


def destroy(platforms: list[dict]) -> None:
    for platform in platforms:
        docker("rm", "--force", platform["name"], check=False)  # gone already is fine
    for network in networks(platforms):
        found = docker("network", "inspect", "--format", "{{json .}}", network["name"], check=False)
        details = json.loads(found.stdout) if found.returncode == 0 else {}
        if (details.get("Labels") or {}).get("owner") != "molecule":
            continue
        # A container a test started on it (the bake's instances) is disconnected first, as the
        # driver's docker_network (state absent) does.
        for container in details.get("Containers") or {}:
            docker("network", "disconnect", "--force", network["name"], container, check=False)
        docker("network", "rm", network["name"])


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("create", "destroy"):
        sys.exit(__doc__)
    platforms = json.loads(sys.argv[2])
    create(platforms) if sys.argv[1] == "create" else destroy(platforms)


if __name__ == "__main__":
    main()
