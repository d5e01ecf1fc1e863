#!/usr/bin/env bash
# Create or update the controller virtualenv from the pinned requirements: ansible-core 2.21 on
# Python 3.13 (scripts/find-python.sh finds it; PYTHON=/path/to/python3.13 overrides). Re-runs are
# cheap: the install is skipped while the requirements, the app's pyproject.toml and the interpreter's
# version are unchanged; a venv made with another Python version is made again.
#
# The same script makes the venv of the oldest supported release for scripts/molecule-matrix.py:
#   VENV=.venv-core2.19 WSFLEET_VENV_PYTHON=3.11 WSFLEET_VENV_REQUIREMENTS=requirements-2.19.txt \
#   WSFLEET_VENV_APP=no scripts/venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
version=${WSFLEET_VENV_PYTHON:-3.13}
requirements=${WSFLEET_VENV_REQUIREMENTS:-requirements.txt}
# The main venv holds the app too (its unit tests and the load client); the other ones do not.
app=${WSFLEET_VENV_APP:-yes}
python=${PYTHON:-$(scripts/find-python.sh "$version")}
stamp=$venv/.wsfleet-installed
if ! have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
  echo "venv: $python does not run (set PYTHON=/path/to/python$version)" >&2
  exit 1
fi
if [ "$have" != "$version" ]; then
  echo "venv: $python is Python $have; $requirements is locked for Python $version (set PYTHON=/path/to/python$version)" >&2
  exit 1
fi
# The app's path is in the stamp too: the editable install points at it.
app_dir=roles/echo_app/files/app
want=$({ echo "$have $app $app_dir"; cat "$requirements"; if [ "$app" = yes ]; then cat "$app_dir/pyproject.toml"; fi; } | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
# A venv of another Python version (the controller was on 3.11 before) cannot be upgraded in place.
if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$version" ]; then
  echo "venv: $venv is not Python $version: making it again"
  rm -rf "$venv"
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
pip_install -r "$requirements"
if [ "$app" = yes ]; then
  pip_install -e "./$app_dir"
fi
echo "$want" >"$stamp"
echo "venv: $venv ready ($("$venv/bin/ansible" --version | head -n 1), Python $version)"
