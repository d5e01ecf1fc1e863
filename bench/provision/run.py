#!/usr/bin/env python3
"""Wall time of playbooks/site.yml: a fresh converge, then idempotent re-runs.

Starts three systemd containers (wsfleet-prov-lb, -app1, -app2) from wsfleet/debian-systemd:12 on a
docker network of their own (wsfleet-prov, 172.29.212.0/24), converges them with site.yml and the
inventory beside this file, then re-runs site.yml ROUNDS times in each of these variants:

  default        ansible.cfg as it is (pipelining on, the plays' own gather_subset), over docker exec
  ssh            as default, but over SSH as the unprivileged user deploy, becoming root with sudo
                 (how fleets are run; extensions/molecule/resources/ssh_access.yml sets it up)
  no-pipelining  ANSIBLE_PIPELINING=false
  gather-all     the plays with gather_subset: [all] (a copy of site.yml in a temporary directory)
  fact-cache     with the jsonfile fact cache the README advises (a directory of each version's own,
                 kept from one round to the next, as an operator's is)

The fresh converge is timed on each transport (default: docker exec; ssh: SSH with become, when
the ssh variant is run), each on new containers; every fleet gets SSH access first, untimed.

With --baseline REF, the collection as it was at git REF (exported with `git archive` into a
temporary directory, with a wheel cache of its own) runs the same way, the working tree from a copy
beside it (the same place for both: see export_current), and the two versions
alternate: first FRESH_ROUNDS fresh converges of each (new containers every time, the versions'
order swapped each round), then every round each version, in turn, settles the one fleet with an
untimed run (the versions may install different things) and re-runs each variant, in an order
rotated round by round. Whatever else the (shared) machine does then hits both versions alike.

Every re-run must report changed=0, and a final `--check` run of each version on the converged fleet
too; the script exits 1 otherwise. It prints a summary (medians), writes it with every run's figures
to results/<time>.json, keeps each run's log under results/, and removes its containers and network
at the end (--keep leaves them running).

With --app-hosts N the fleet has N app hosts instead of inventory.yml's 2 (how a re-run grows with
the fleet).

    python bench/provision/run.py [--rounds 3] [--fresh-rounds 1] [--baseline REF] [--app-hosts N]
                                  [--variants default,ssh,no-pipelining,gather-all,fact-cache] [--keep] [--label WORD]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "extensions" / "molecule" / "resources"))
import systemd_container  # noqa: E402  (the containers' recipe, shared with the tests)
INVENTORY = HERE / "inventory.yml"
SSH_ACCESS = ROOT / "extensions" / "molecule" / "resources" / "ssh_access.yml"
SSH_KEY = HERE / ".cache" / "ssh" / "id_ed25519"
RESULTS = HERE / "results"
IMAGE = "wsfleet/debian-systemd:12"
NETWORK = "wsfleet-prov"
SUBNET = "172.29.212.0/24"
VARIANTS = ("default", "ssh", "no-pipelining", "gather-all", "fact-cache")
TRANSPORTS = ("default", "ssh")  # the variants that are a transport: each has its fresh converge
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)"
)
PROFILE = re.compile(r"^(.+?) -+ +(\d+\.\d+)s$")


@dataclass
class Version:
    """One version of the collection: the working tree, or a baseline exported from git."""

    name: str
    root: Path
    extra: list[str]  # extra ansible-playbook arguments (the baseline's own wheel cache)
    gather_all: Path
    fact_cache: Path  # the jsonfile fact cache of the fact-cache variant, this version's own

    def playbook(self, variant: str) -> Path:
        return self.gather_all if variant == "gather-all" else self.root / "playbooks/site.yml"


def hosts() -> dict[str, str]:
    """Container name -> fleet address, from the inventory."""
    inv = yaml.safe_load(INVENTORY.read_text())["all"]["children"]
    return {name: v["wsfleet_backend_address"] for group in inv.values() for name, v in group["hosts"].items()}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], check=check, text=True, capture_output=True)


def remove_fleet() -> None:
    """Remove this harness's containers and network (by their exact names, nothing else)."""
    existing = docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    mine = [n for n in hosts() if n in existing]
    if mine:
        docker("rm", "-f", *mine, check=False)
    if docker("network", "inspect", NETWORK, check=False).returncode == 0:
        docker("network", "rm", NETWORK, check=False)


def require_image() -> None:
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        sys.exit(f"bench-provision: image {IMAGE} is missing: run `make images` (scripts/build-images.sh bookworm)")


def start_systemd(name: str, *options: str) -> None:
    """One container from IMAGE with systemd as PID 1, started like the molecule platform (systemd_container.py)."""
    docker("run", "-d", "--name", name, "--hostname", name, *options, *systemd_container.docker_run_options(),
           IMAGE, systemd_container.COMMAND)


def wait_booted(names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                sys.exit(f"bench-provision: systemd in {name} did not finish booting (state {state!r})")
            time.sleep(0.5)


def create_fleet(ssh: bool) -> None:
    remove_fleet()
    require_image()
    docker("network", "create", "--subnet", SUBNET, NETWORK)
    for name, address in hosts().items():
        start_systemd(name, "--network", NETWORK, "--ip", address)
    wait_booted(list(hosts()))
    if ssh:
        # Untimed: openssh-server and sudo from the mirror, the deploy user and its key.
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        proc = subprocess.run(["ansible-playbook", "-i", str(INVENTORY), str(SSH_ACCESS), "-e", f"ansible_ssh_private_key_file={SSH_KEY}"],
                              cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.exit(f"bench-provision: SSH access could not be set up:\n{proc.stdout[-3000:]}")


def derived_inventory(tmp: Path, name: str, change) -> Path:
    """INVENTORY as change(inventory) leaves it, written to tmp/name. The wheel cache stays the one of
    the inventory beside this file (its `inventory_dir` would be the temporary directory)."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    inventory["all"]["vars"]["echo_app_wheel_cache"] = str(HERE / ".cache" / "wheels")
    change(inventory)
    path = tmp / name
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def ssh_inventory(tmp: Path) -> Path:
    """The bench inventory, every host reached over SSH as deploy with become (at its fleet address)."""
    return derived_inventory(tmp, "inventory-ssh.yml", _over_ssh)


def _over_ssh(inventory: dict) -> None:
    inventory["all"]["vars"].update({
        "ansible_connection": "ssh",
        "ansible_user": "deploy",
        "ansible_become": True,
        "ansible_ssh_private_key_file": str(SSH_KEY),
        # New containers every fresh converge: new host keys.
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    })
    for group in inventory["all"]["children"].values():
        for host_vars in group["hosts"].values():
            host_vars["ansible_host"] = host_vars["wsfleet_backend_address"]


def gather_all_playbook(root: Path, tmp: Path) -> Path:
    """The version's site.yml with every play gathering every fact subset."""
    plays = yaml.safe_load((root / "playbooks/site.yml").read_text())
    for play in plays:
        play["gather_subset"] = ["all"]
    path = tmp / f"site-gather-all-{abs(hash(str(root)))}.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def export_baseline(ref: str, tmp: Path) -> Path:
    """The collection as it was at ref, in tmp/baseline (no git metadata is touched)."""
    dest = tmp / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def export_current(tmp: Path) -> Path:
    """The working tree as it is (tracked files and untracked ones git does not ignore, uncommitted
    changes included) copied into tmp/current, so that both versions run from a copy in the same place:
    run from the working tree itself, the same roles took about 1 s longer per re-run here than from
    a copy in /tmp (docs/benchmarks.md, sixth run)."""
    dest = tmp / "current"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = ROOT / name, dest / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the working tree, not yet in git
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


class LoadSampler:
    """Samples the 1-minute load average every second while a run lasts."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


SSH_INVENTORY: list[Path] = []  # set by main(), in its temporary directory


def sized_inventory(tmp: Path, app_hosts: int) -> Path:
    """The bench inventory with app_hosts app hosts (wsfleet-prov-app1..N, 172.29.212.11 and up)."""
    def resize(inventory: dict) -> None:
        inventory["all"]["children"]["app"]["hosts"] = {
            f"wsfleet-prov-app{i}": {"wsfleet_backend_address": f"172.29.212.{10 + i}"} for i in range(1, app_hosts + 1)
        }
    return derived_inventory(tmp, f"inventory-{app_hosts}.yml", resize)


def play(name: str, version: Version, variant: str, extra: list[str] | None = None) -> dict:
    """Run one ansible-playbook; return its wall time, recap and profile."""
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}-{version.name}-{name}.log"
    inventory = SSH_INVENTORY[0] if variant == "ssh" else INVENTORY
    cmd = ["ansible-playbook", "-i", str(inventory), str(version.playbook(variant)), *version.extra, *(extra or [])]
    env = {"ANSIBLE_PIPELINING": "false" if variant == "no-pipelining" else "true"}
    if variant == "fact-cache":
        env.update(ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(version.fact_cache))
    full_env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(version.root / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
        "COLUMNS": "160",
        **env,
    }
    with LoadSampler() as load:
        start, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, cwd=version.root, env=full_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wall, after = time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    # The controller's CPU: ansible-playbook and every process it waited for (docker exec, ssh).
    controller_cpu = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    log.write_text(f"$ {' '.join(cmd)}\n# env: {env}\n{proc.stdout}")
    recap = {}
    profile = []
    in_recap = False
    for line in proc.stdout.splitlines():
        m = RECAP.match(line)
        if m:
            keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
            recap[m.group(1)] = dict(zip(keys, map(int, m.groups()[1:])))
        if line.startswith("TASKS RECAP"):
            in_recap = True
        elif in_recap and (m := PROFILE.match(line)):
            profile.append([m.group(1), float(m.group(2))])
    result = {
        "name": name,
        "version": version.name,
        "variant": variant,
        "rc": proc.returncode,
        "wall_s": round(wall, 2),
        "controller_cpu_s": round(controller_cpu, 2),
        "load_avg_1m": [round(min(load.samples or [0]), 2), round(max(load.samples or [0]), 2)],
        "recap": recap,
        "changed": sum(h["changed"] for h in recap.values()),
        "profile": profile,
        "log": str(log.relative_to(ROOT)),
    }
    print(
        f"  {version.name:<8} {name:<22} {wall:7.1f} s  cpu {controller_cpu:5.1f} s  rc={proc.returncode} changed={result['changed']}"
        f"  load {result['load_avg_1m'][0]}-{result['load_avg_1m'][1]}",
        flush=True,
    )
    if proc.returncode != 0:
        errors = [line for line in proc.stdout.splitlines() if re.match(r"^(fatal:|\[ERROR\]|ERROR!|\s+msg:)", line)]
        print("\n".join(errors[-20:]) or proc.stdout[-3000:], f"(log: {log})", sep="\n", file=sys.stderr)
    return result


def summarize(version: str, runs: list[dict], variants: list[str], rounds: int) -> dict:
    mine = [r for r in runs if r["version"] == version]
    check = next(r for r in mine if r["name"] == "check")
    reruns = {v: sorted((r for r in mine if r["name"].startswith("rerun-") and r["variant"] == v), key=lambda r: r["wall_s"]) for v in variants}
    medians = {v: round(statistics.median(r["wall_s"] for r in rs), 2) for v, rs in reruns.items()}
    cpu_medians = {v: round(statistics.median(r["controller_cpu_s"] for r in rs), 2) for v, rs in reruns.items()}
    median_default = reruns["default"][rounds // 2]
    per_transport = {}
    for transport in (t for t in TRANSPORTS if t in variants):
        freshes = sorted((r for r in mine if r["name"].startswith("fresh-") and r["variant"] == transport), key=lambda r: r["wall_s"])
        fresh_s = statistics.median(r["wall_s"] for r in freshes)
        per_transport[transport] = {
            "fresh_s": round(fresh_s, 2),
            "fresh_runs_s": [r["wall_s"] for r in freshes],
            "rerun_median_s": medians[transport],
            "ratio": round(medians[transport] / fresh_s, 3),
            # The median run (the lower middle one of an even count).
            "tasks_per_host_fresh": freshes[(len(freshes) - 1) // 2]["recap"],
        }
    return {
        "fresh_s": per_transport["default"]["fresh_s"],
        "fresh_runs_s": per_transport["default"]["fresh_runs_s"],
        "rerun_median_s": medians,
        "rerun_controller_cpu_median_s": cpu_medians,
        "ratio": per_transport["default"]["ratio"],
        "transports": per_transport,
        "tasks_per_host_fresh": per_transport["default"]["tasks_per_host_fresh"],
        "tasks_per_host_rerun": median_default["recap"],
        "check_changed": check["changed"],
        "targets_met": {**{f"ratio<=0.15 ({t})": p["ratio"] <= 0.15 for t, p in per_transport.items()},
                        "rerun<=20s": medians["default"] <= 20},
        # profile_tasks: the wall time of a task over all hosts, in the median default re-run.
        "rerun_top_tasks": median_default["profile"][:12],
        "load_avg_1m": [min(r["load_avg_1m"][0] for r in mine), max(r["load_avg_1m"][1] for r in mine)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="re-runs of each variant (default 3; the median is reported)")
    parser.add_argument("--fresh-rounds", type=int, default=1, help="fresh converges of each version (default 1; the median is reported)")
    parser.add_argument("--baseline", metavar="REF", help="also run the collection as it was at this git ref, interleaved")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated re-run variants (default {','.join(VARIANTS)})")
    parser.add_argument("--label", default="", help="a word stored with the results")
    parser.add_argument("--app-hosts", type=int, default=2, help="app hosts of the fleet (default 2, as inventory.yml; 1-100)")
    parser.add_argument("--keep", action="store_true", help="leave the containers running at the end")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if "default" not in variants or set(variants) - set(VARIANTS) or args.rounds < 1 or args.fresh_rounds < 1:
        parser.error(f"--variants must include default and name only {', '.join(VARIANTS)}; --rounds and --fresh-rounds >= 1")

    if not 1 <= args.app_hosts <= 100:
        parser.error("--app-hosts must be 1-100")

    tmp = Path(tempfile.mkdtemp(prefix="wsfleet-prov-"))
    if args.app_hosts != 2:
        global INVENTORY  # noqa: PLW0603 (one fleet per run: every helper reads the fleet from it)
        INVENTORY = sized_inventory(tmp, args.app_hosts)
    ssh = "ssh" in variants
    if ssh:
        SSH_INVENTORY.append(ssh_inventory(tmp))
    versions = []
    if args.baseline:
        base_root = export_baseline(args.baseline, tmp)
        cache = ["-e", f"echo_app_wheel_cache={HERE / '.cache/wheels-baseline'}"]
        versions.append(Version("baseline", base_root, cache, gather_all_playbook(base_root, tmp), tmp / "facts-baseline"))
    current_root = export_current(tmp) if args.baseline else ROOT
    versions.append(Version("current", current_root, [], gather_all_playbook(current_root, tmp), tmp / "facts-current"))

    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, text=True, capture_output=True).stdout.strip()  # noqa: E731
    summary: dict = {
        "label": args.label,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "nproc": os.cpu_count(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_role_changes": bool(git("status", "--porcelain", "roles", "playbooks")),
        "baseline": git("rev-parse", "--short", args.baseline) if args.baseline else None,
        "rounds": args.rounds,
        "hosts": len(hosts()),
        "runs": [],
    }
    runs = summary["runs"]
    ok = True
    try:
        # Fresh converges alternate the versions' order round by round.
        # Each transport has its own fresh converges.
        for r in range(1, args.fresh_rounds + 1):
            for transport in (t for t in TRANSPORTS if t in variants):
                for version in versions if r % 2 else versions[::-1]:
                    print(f"bench-provision: fresh converge ({version.name}, {transport}) of {', '.join(hosts())} on {NETWORK} ({SUBNET})",
                          flush=True)
                    create_fleet(ssh)
                    runs.append(play(f"fresh-{r}", version, transport))
                    if runs[-1]["rc"] != 0:
                        return 1
        print("bench-provision: re-runs, interleaved", flush=True)
        for r in range(1, args.rounds + 1):
            # The versions take turns on the one fleet, first one first in odd rounds. Versions may
            # install different things (another app wheel, other files), so each turn starts with
            # an untimed settling run of that version; its timed re-runs must then change nothing.
            for version in versions if r % 2 else versions[::-1]:
                if len(versions) > 1:
                    runs.append(play(f"settle-{r}", version, "default"))
                    if runs[-1]["rc"] != 0:
                        return 1
                shift = (r - 1) % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    runs.append(play(f"rerun-{variant}-{r}", version, variant))
                    if runs[-1]["rc"] != 0:
                        return 1  # a broken fleet (or engine) would fail every run after it
                    ok &= runs[-1]["changed"] == 0
        for version in versions:
            if runs[-1]["version"] != version.name:  # another version converged the fleet last
                runs.append(play("settle-check", version, "default"))
            runs.append(play("check", version, "default", ["--check"]))
            ok &= runs[-1]["rc"] == 0 and runs[-1]["changed"] == 0
    finally:
        if not args.keep:
            remove_fleet()
        shutil.rmtree(tmp, ignore_errors=True)

    summary["versions"] = {v.name: summarize(v.name, runs, variants, args.rounds) for v in versions}
    summary["load_avg_1m"] = [min(r["load_avg_1m"][0] for r in runs), max(r["load_avg_1m"][1] for r in runs)]
    path = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\nbench-provision: nproc {summary['nproc']}, 1-min load average {summary['load_avg_1m'][0]}-{summary['load_avg_1m'][1]} during the runs")
    for name, s in summary["versions"].items():
        print(f"{name}:")
        for transport, t in s["transports"].items():
            print(f"  fresh converge {transport:<10} {t['fresh_s']:7.1f} s  (median of {args.fresh_rounds})")
        for variant, value in s["rerun_median_s"].items():
            print(f"  re-run {variant:<18} {value:7.1f} s, the controller's CPU {s['rerun_controller_cpu_median_s'][variant]:5.1f} s"
                  f"  (medians of {args.rounds})")
        for transport, t in s["transports"].items():
            print(f"  re-run / fresh {transport:<10} {t['ratio']:7.3f}   (<= 0.15: {'met' if t['ratio'] <= 0.15 else 'NOT met'})")
        for host, counts in s["tasks_per_host_rerun"].items():
            print(f"  re-run {host:<18} ok={counts['ok']} changed={counts['changed']} skipped={counts['skipped']}")
        print(f"  --check on the converged fleet: changed={s['check_changed']}")
        print("  slowest tasks of the median default re-run:")
        for task, seconds in s["rerun_top_tasks"]:
            print(f"    {seconds:6.2f} s  {task}")
    print(f"results: {path.relative_to(ROOT)}")
    if not ok:
        print("bench-provision: a re-run or a check run changed something or failed (see the logs)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
