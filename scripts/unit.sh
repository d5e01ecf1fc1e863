#!/usr/bin/env bash
# The unit tests (`make unit`, the unit phase of `make test`): no containers.
#   roles/echo_app/files/app/: the echo app and the load client. Most of its time is waiting (its tests time shutdowns,
#   pings and restarts: 28 CPU-seconds in 74 s in one process), so 4 pytest-xdist workers share the
#   2 cores: 25 s here, every one of 4 runs passing.
#   tests/: the roles, plugins and templates; most cases run ansible-playbook against this machine
#   and are CPU-bound and independent (each in its own temporary directory, none changes the host),
#   so pytest-xdist spreads them over every core (313 s alone, 176 s with -n 2 here). The input-error
#   cases (tests/test_role_input_errors.py) start from this machine's facts gathered once per worker:
#   222 -> 148 s and 417 -> 282 CPU-seconds for that file with -n 2, the two versions one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
python -m pytest roles/echo_app/files/app -q -n 4
python -m pytest tests -q -n auto
