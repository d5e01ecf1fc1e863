#!/usr/bin/env bash
# `make test`: everything, from a clean Debian 12 machine, with each phase timed.
#   Phases: venv, unit, lint, build, engine, images, molecule. The molecule phase is
#   scripts/molecule-matrix.py: every scenario on Debian 12 and 13, the fleet and bake scenarios with
#   each load balancer kind, several runs at once (WSFLEET_MOLECULE_JOBS), ending with a table of
#   every run's stages and their seconds.
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

# lint: yamllint, ansible-lint, ansible-doc on every role and plugin, ansible-test sanity (offline).
lint() { scripts/lint.sh; }
# build: the collection tarball in build/, then galaxy-importer on it.
build() { scripts/build.sh; }
phase venv scripts/venv.sh
phase unit scripts/unit.sh
phase lint lint
phase build build
phase engine scripts/docker-engine.sh start
phase images scripts/build-images.sh bookworm trixie
phase molecule scripts/molecule-matrix.py
