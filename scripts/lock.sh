#!/usr/bin/env bash
# `make lock`: re-lock each requirements file from its .in in a scratch virtualenv of the Python it
# is installed with (scripts/venv.sh): requirements.txt for the controller (Python 3.13), and
# requirements-2.19.txt for the oldest supported release's molecule run (Python 3.11).
# `scripts/lock.sh requirements-2.19` re-locks one.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A python_of=([requirements]=3.13 [requirements-2.19]=3.11)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(requirements requirements-2.19)
for name in "${names[@]}"; do
  version=${python_of[$name]:?"lock: unknown requirements file $name"}
  python=$(scripts/find-python.sh "$version")
  scratch=.lock-venv-$name
  rm -rf "$scratch"
  "$python" -m venv "$scratch"
  "$scratch/bin/python" -m pip install -q --disable-pip-version-check -r "$name.in" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
  { echo "# Full lock of $name.in (make lock). Controller Python $version."
    "$scratch/bin/python" -m pip freeze --exclude-editable; } >"$name.txt.tmp"
  mv "$name.txt.tmp" "$name.txt"
  rm -rf "$scratch"
  echo "lock: $name.txt ($(grep -c '==' "$name.txt") packages, Python $version)"
done
