#!/usr/bin/env bash
# `make deploy`: the service on this machine (inventories/local), then the guides' check.
#   WSFLEET_LB=haproxy picks HAProxy instead of nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
export PATH="$PWD/.venv/bin:$PATH"
lb=${WSFLEET_LB:-nginx}
ansible-playbook -i inventories/local/hosts.yml site.yml -e "wsfleet_lb=$lb"
port=$(ansible-inventory -i inventories/local/hosts.yml --host localhost 2>/dev/null |
  python -c "import json,sys; v=json.load(sys.stdin); print(v.get('${lb}_lb_port', 8080))")
python scripts/smoke.py "ws://127.0.0.1:$port/"
echo
echo "wsfleet: $lb listens on port $port (ws://<this host>:$port/, health: http://<this host>:$port/healthz);"
echo "         app processes: supervisorctl status; sockets in /run/wsfleet/"
