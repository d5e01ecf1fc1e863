#!/usr/bin/env bash
# Build the systemd-capable Debian base images the molecule scenarios run on, with debootstrap +
# docker import (no registry is needed). Images are cached by tag: an existing tag is reused.
#   scripts/build-images.sh [SUITE...]     default: bookworm trixie
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

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(bookworm trixie)
for suite in "${suites[@]}"; do
  build "$suite"
done
