#!/usr/bin/env bash
# Create or update the controller virtualenv from the pinned requirements. Re-runs are cheap: the
# install is skipped while requirements.txt and roles/echo_app/files/app/pyproject.toml are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
stamp=$venv/.wsfleet-installed
app=roles/echo_app/files/app
# The app's path is in the stamp too: the editable install points at it.
want=$( (cat requirements.txt "$app/pyproject.toml"; echo "$app") | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "venv: $python must be Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  # Debian's python3 needs python3-venv for `python3 -m venv`.
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    echo "venv: installing python3-venv from the OS packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
fi
pip_install() {
  # This machine's pip configuration names local indexes that may be absent; drop those warnings.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
pip_install --upgrade pip
pip_install -r requirements.txt
pip_install -e "./$app"
echo "$want" >"$stamp"
echo "venv: $venv ready ($("$venv/bin/ansible" --version | head -n 1))"
