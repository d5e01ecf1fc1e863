#!/usr/bin/env bash
# `make lint` and the lint phase of `make test`: yamllint, ansible-lint (production profile),
# ansible-doc on every role and plugin, and ansible-test sanity on the collection as it ships.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
step() {
  echo "--> $*"
  "$@"
}
step yamllint --strict .
step ansible-lint
step scripts/ansible-doc.sh
step scripts/sanity.sh
