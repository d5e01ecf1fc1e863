"""How every test and bench container runs systemd as PID 1: the one recipe.

Without --privileged (which fails on hosts whose capability bounding set lacks CAP_SYS_RESOURCE):
CAP_SYS_ADMIN, no seccomp or AppArmor profile, the host's cgroup namespace and cgroup tree, and
tmpfs on /run. The benches (bench/run.py, bench/provision/run.py) and the bake tests start their
containers with docker_run_options(); molecule's YAML cannot import it, so extensions/molecule/
config.yml and the fleet and bake scenarios state the same, and tests/test_container_recipe.py keeps
every one of them equal to this.
"""

from __future__ import annotations

COMMAND = "/lib/systemd/systemd"
CAPABILITIES = ["SYS_ADMIN"]
SECURITY_OPTS = ["seccomp=unconfined", "apparmor=unconfined"]
CGROUPNS_MODE = "host"
VOLUMES = ["/sys/fs/cgroup:/sys/fs/cgroup:rw"]
TMPFS = ["/run", "/run/lock"]


def docker_run_options() -> list[str]:
    """The `docker run` options of the recipe (the image and COMMAND go after them)."""
    options = [f"--cap-add={capability}" for capability in CAPABILITIES]
    options += [f"--security-opt={option}" for option in SECURITY_OPTS]
    options += [f"--cgroupns={CGROUPNS_MODE}"]
    options += [f"--volume={volume}" for volume in VOLUMES]
    options += [f"--tmpfs={path}" for path in TMPFS]
    return options
