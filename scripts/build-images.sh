#!/usr/bin/env bash
# Build the systemd-capable Debian base images the molecule scenarios run on, with debootstrap +
# docker import (no registry is needed). Images are cached by tag: an existing tag is reused.
#   scripts/build-images.sh [SUITE...]     default: bookworm trixie
# For each suite, two tags:
#   wsfleet/debian-systemd:12 (13)       the bare system: the roles install every OS package they need
#   wsfleet/debian-systemd:12-pkgs       the same plus the OS packages the roles install (read from
#                                        roles/*/vars/main.yml, __*_os_packages), for the scenarios
#                                        that do not test installation (scripts/molecule-matrix.py
#                                        says which). Its label wsfleet.packages lists them: the layer
#                                        is rebuilt when the roles' list changes.
set -euo pipefail
cd "$(dirname "$0")/.."

# Packages the images carry: systemd as PID 1, Python for Ansible, and the tools the tests use.
packages=systemd,systemd-sysv,dbus,python3,python3-apt,procps,iproute2,ca-certificates,curl

image_tag() {
  case "$1" in
    bookworm) echo "wsfleet/debian-systemd:12" ;;
    trixie) echo "wsfleet/debian-systemd:13" ;;
    *) echo "build-images: unknown suite '$1' (allowed: bookworm, trixie)" >&2; return 2 ;;
  esac
}

# The Debian mirror this machine already uses, read from its apt sources (deb822 or one-line form).
debian_mirror() {
  local uri
  uri=$(
    {
      awk 'BEGIN{IGNORECASE=1} /^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
      awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1
  )
  if [ -z "$uri" ]; then
    echo "build-images: no Debian mirror found in /etc/apt/sources.list{,.d}; set WSFLEET_DEBIAN_MIRROR" >&2
    return 1
  fi
  echo "${uri%/}"
}

build() {
  local suite=$1 tag dir mirror
  tag=$(image_tag "$suite")
  if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "build-images: $tag is cached; not rebuilding"
    return 0
  fi
  mirror=${WSFLEET_DEBIAN_MIRROR:-$(debian_mirror)}
  dir=$(mktemp -d "/var/tmp/wsfleet-rootfs-$suite.XXXXXX")
  trap 'rm -rf "$dir"' RETURN
  echo "build-images: debootstrap $suite from $mirror into $dir"
  local start=$SECONDS
  debootstrap --variant=minbase --include="$packages" "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || {
    tail -n 40 "$dir.log" >&2
    return 1
  }
  rm -f "$dir.log"
  # Trim what a container never uses, and leave no machine identity in the image.
  # Keep the package lists: apt in the container then starts from a consistent, dated cache.
  rm -rf "$dir"/var/cache/apt/archives/*.deb
  : >"$dir/etc/machine-id"
  # Units that make no sense in a container and only slow boot down.
  for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
    systemd-remount-fs.service systemd-firstboot.service sys-kernel-debug.mount; do
    ln -sf /dev/null "$dir/etc/systemd/system/$unit"
  done
  tar -C "$dir" -c . | docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/lib/systemd/systemd"]' \
    - "$tag" >/dev/null
  echo "build-images: built $tag in $((SECONDS - start)) s"
}

# The OS packages the roles install, from their vars files (one definition), sorted, space-separated.
role_packages() {
  python3 - <<'PY'
import glob, yaml
names = set()
for path in glob.glob("roles/*/vars/main.yml"):
    for key, value in (yaml.safe_load(open(path)) or {}).items():
        if key.endswith("_os_packages"):
            names.update(value)
print(" ".join(sorted(names)))
PY
}

# The bare image with the roles' OS packages installed (services not started during the build).
build_packages() {
  local base packages tag have start container
  base=$(image_tag "$1")
  tag="$base-pkgs"
  packages=$(role_packages)
  have=$(docker image inspect -f '{{ index .Config.Labels "wsfleet.packages" }}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$packages" ]; then
    echo "build-images: $tag is cached; not rebuilding"
    return 0
  fi
  start=$SECONDS
  container="wsfleet-build-pkgs-$1-$$"
  # policy-rc.d keeps the packages' services from starting in the build container; systemd starts
  # them at each boot as on a host where apt installed them.
  docker run --name "$container" "$base" /bin/sh -c "
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d &&
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null &&
    rm -f /usr/sbin/policy-rc.d && rm -rf /var/cache/apt/archives/*.deb" >/dev/null || {
    docker logs --tail 40 "$container" >&2
    docker rm -f "$container" >/dev/null 2>&1
    return 1
  }
  docker commit --change 'CMD ["/lib/systemd/systemd"]' --change "LABEL wsfleet.packages=\"$packages\"" \
    "$container" "$tag" >/dev/null
  docker rm -f "$container" >/dev/null
  echo "build-images: built $tag ($packages) in $((SECONDS - start)) s"
}

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(bookworm trixie)
for suite in "${suites[@]}"; do
  build "$suite"
  build_packages "$suite"
done
