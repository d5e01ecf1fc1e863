#!/usr/bin/env bash
# `ansible-doc` on every role and plugin of the collection, the way its users read them. Part of
# `make lint` and of the lint phase of `make test`.
#
# ansible-doc exits 0 when a name is not found or its documentation does not parse (it only warns
# on stderr), so a type fails here when ansible-doc exits non-zero, writes anything to stderr, or
# leaves out the heading of one of the names.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
# The collection as ansible.cfg finds it: collections/ansible_collections/wsfleet/fleet links to
# the repository root.
export ANSIBLE_COLLECTIONS_PATH=$PWD/collections ANSIBLE_NOCOLOR=1
collection=wsfleet.fleet
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# check TYPE NAME...: render the docs of every NAME (short names) of one ansible-doc type.
check() {
  local type=$1 name rc=0 failed=0
  shift
  [ $# -gt 0 ] || return 0
  ansible-doc -t "$type" "${@/#/$collection.}" >"$out" 2>"$err" || rc=$?
  # ansible-core 2.21's `ansible-doc -t role` warns about its own internal collection (ansible._protomatter
  # has no MANIFEST.json), whatever collection is asked for: not about this one, so not a failure.
  sed -i "/^\[WARNING\]: Collection at '[^']*\/ansible_collections\/ansible\/_protomatter' does not have a MANIFEST.json file/d" "$err"
  if [ "$rc" -ne 0 ] || [ -s "$err" ]; then
    echo "ansible-doc -t $type: exit $rc" >&2
    cat "$err" >&2
    failed=1
  fi
  for name in "$@"; do
    # Headings: "> ROLE: *wsfleet.fleet.echo_app* (...)", "> FILTER wsfleet.fleet.backend_endpoints (...)".
    if ! grep -qE "^> [A-Z]+:? \*?$collection\.$name\*? " "$out"; then
      echo "ansible-doc -t $type: no documentation rendered for $collection.$name" >&2
      failed=1
    fi
  done
  [ "$failed" -eq 0 ] && echo "ansible-doc -t $type: ok ($*)"
}

status=0
roles=()
for dir in roles/*/; do
  roles+=("$(basename "$dir")")
done
check role "${roles[@]}" || status=1

# One ansible-doc type per plugins/ directory; helpers and doc fragments have no docs of their own,
# and an action plugin's docs are those of the module of the same name (checked with the modules).
for dir in plugins/*/; do
  type=$(basename "$dir")
  case $type in
    module_utils | doc_fragments | action) continue ;;
    modules) type=module ;;
  esac
  names=()
  for file in "$dir"*.py; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .py)
    [ "$name" = __init__ ] || names+=("$name")
  done
  check "$type" "${names[@]}" || status=1
done
exit "$status"
