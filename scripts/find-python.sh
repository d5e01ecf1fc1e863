#!/usr/bin/env bash
# Print the path of a Python interpreter of version X.Y (`scripts/find-python.sh 3.13`).
# `pythonX.Y` on PATH is tried first, then pyenv's versions directory: on machines where pyenv's
# shims are on PATH, `python3.13` fails ("command not found") whenever pyenv's global version is
# another one, although the interpreter is installed under $(pyenv root)/versions/.
set -euo pipefail
want=${1:?usage: find-python.sh X.Y}
# The interpreter's own path (not a shim's), if it runs and is version $want.
resolve() {
  "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.')))); " 2>/dev/null &&
    "$1" -c 'import sys; print(sys.executable)'
}

if resolve "python$want"; then exit 0; fi
roots=()
if root=$(pyenv root 2>/dev/null); then roots+=("$root"); fi
roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
for root in "${roots[@]}"; do
  # Newest patch release first (3.13.10 before 3.13.9).
  for candidate in $(ls -d "$root/versions/$want".*/bin/"python$want" 2>/dev/null | sort -rV); do
    if resolve "$candidate"; then exit 0; fi
  done
done
echo "find-python: no Python $want: python$want is not on PATH (or fails) and no" \
  "$(printf '%s/versions/%s.*/bin/python%s ' "${roots[0]}" "$want" "$want")exists." \
  "Install Python $want, or set PYTHON=/path/to/python$want." >&2
exit 1
