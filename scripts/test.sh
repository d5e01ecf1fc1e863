#!/usr/bin/env bash
# `make test`: everything, from a clean Debian 12 machine, with each phase timed.
#   Phases: venv, unit, lint, build, engine, images, molecule (Debian 12), the fleet and bake
#   scenarios again with HAProxy (Debian 12), molecule (Debian 13).
#   Every scenario runs on Debian 12. WSFLEET_MOLECULE_D13 lists those also run on Debian 13 ("all",
#   or names). The default, lb_nginx and lb_haproxy, converges site.yml on trixie (Python 3.13
#   wheels, its supervisor, nginx and HAProxy) and keeps CI inside its 90 minutes: Debian 12 alone
#   took 2492 s in CI (plus about 800 s with HAProxy), and each Debian 13 scenario adds 4-5 min;
#   the whole run took 3376-3882 s in a fresh clone with this list.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# Plain output in CI logs.
if [ -n "${CI:-}" ]; then export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0; fi

declare -a summary=()
total_start=$SECONDS

phase() {
  local name=$1
  shift
  local start=$SECONDS
  echo
  echo "==> [$(date -u +%H:%M:%S)] phase: $name"
  if "$@"; then
    summary+=("$(printf '%-22s %5d s  ok' "$name" $((SECONDS - start)))")
    echo "<== phase $name: $((SECONDS - start)) s"
  else
    local rc=$?
    summary+=("$(printf '%-22s %5d s  FAILED (%d)' "$name" $((SECONDS - start)) "$rc")")
    echo "<== phase $name FAILED after $((SECONDS - start)) s" >&2
    exit "$rc"
  fi
}

print_summary() {
  echo
  echo "Phase times:"
  printf '  %s\n' "${summary[@]}"
  echo "  total                  $((SECONDS - total_start)) s"
}

cleanup() {
  local rc=$?
  scripts/docker-engine.sh stop || true
  print_summary
  exit "$rc"
}
trap cleanup EXIT

unit() { python -m pytest app -q && python -m pytest tests -q; }
lint() { yamllint --strict . && ansible-lint; }
build() { rm -rf build && ansible-galaxy collection build --output-path build/ .; }
molecule_all() { WSFLEET_DEBIAN=12 molecule test --all; }
# The scenarios that take the load balancer kind from the environment, run again with HAProxy
# (fleet: HAProxy in front of the app hosts; bake: HAProxy inside the image, nginx in front).
molecule_haproxy() {
  WSFLEET_DEBIAN=12 WSFLEET_FLEET_LB=haproxy molecule test -s fleet
  WSFLEET_DEBIAN=12 WSFLEET_BAKE_LB=haproxy molecule test -s bake
}
molecule_d13() {
  local list=${WSFLEET_MOLECULE_D13:-lb_nginx lb_haproxy}
  if [ "$list" = all ]; then
    WSFLEET_DEBIAN=13 molecule test --all
  else
    local s
    for s in $list; do WSFLEET_DEBIAN=13 molecule test -s "$s"; done
  fi
}

phase venv scripts/venv.sh
phase unit unit
phase lint lint
phase build build
phase engine scripts/docker-engine.sh start
phase images scripts/build-images.sh bookworm trixie
phase "molecule debian12" molecule_all
phase "molecule debian12 haproxy" molecule_haproxy
phase "molecule debian13" molecule_d13
