#!/usr/bin/env bash
# Make sure a Docker engine answers, starting one if needed, and stop only the one we started.
#   scripts/docker-engine.sh start   -> prints nothing on success; writes .harness/dockerd.pid if it started dockerd
#   scripts/docker-engine.sh stop    -> stops the dockerd recorded in .harness/dockerd.pid (and nothing else)
set -euo pipefail
cd "$(dirname "$0")/.."
state_dir=.harness
pid_file=$state_dir/dockerd.pid
mkdir -p "$state_dir"

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "harness: installing ${missing[*]} from the OS packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start() {
  install_packages
  if engine_answers; then
    echo "harness: a Docker engine already answers; using it"
    return 0
  fi
  echo "harness: starting dockerd in the background (log: $state_dir/dockerd.log)"
  # The containerd bundled with docker.io is started by dockerd itself when none runs.
  nohup dockerd --host=unix:///var/run/docker.sock >"$state_dir/dockerd.log" 2>&1 &
  echo $! >"$pid_file"
  for _ in $(seq 1 60); do
    if engine_answers; then
      echo "harness: dockerd (pid $(cat "$pid_file")) answers"
      return 0
    fi
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      echo "harness: dockerd exited; last lines of its log:" >&2
      tail -n 30 "$state_dir/dockerd.log" >&2
      rm -f "$pid_file"
      return 1
    fi
    sleep 1
  done
  echo "harness: dockerd did not answer within 60 s; last lines of its log:" >&2
  tail -n 30 "$state_dir/dockerd.log" >&2
  return 1
}

stop() {
  [ -f "$pid_file" ] || return 0
  local pid
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
    echo "harness: stopping the dockerd we started (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$pid_file"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
