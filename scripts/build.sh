#!/usr/bin/env bash
# `make build` and the build phase of `make test`: the collection tarball in build/, then Galaxy's
# own import checks on that tarball (galaxy-importer, the code Galaxy runs on an upload: metadata,
# role READMEs, ansible-doc on every plugin and role, ansible-lint). Offline.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
rm -rf build
"$venv/bin/ansible-galaxy" collection build --output-path build/ .
tarballs=(build/*.tar.gz)
tarball=${tarballs[0]}

# The importer reads /etc/galaxy-importer/galaxy-importer.cfg when there is one; these environment
# variables override it. Its ansible-test step stays off: it runs `ansible-test sanity` in a
# container (docker or podman) from an image it pulls. scripts/sanity.sh runs the same sanity
# tests locally in the lint phase instead, without a container.
export GALAXY_IMPORTER_RUN_ANSIBLE_TEST=false
export GALAXY_IMPORTER_ANSIBLE_TEST_LOCAL_IMAGE=false
export GALAXY_IMPORTER_LOCAL_IMAGE_DOCKER=false
export GALAXY_IMPORTER_RUN_ANSIBLE_DOC=true
export GALAXY_IMPORTER_RUN_ANSIBLE_LINT=true
export GALAXY_IMPORTER_OFFLINE_ANSIBLE_LINT=true
export GALAXY_IMPORTER_CHECK_CHANGELOG=true

# It writes importer_result.json into its working directory: build/. It exits 0 after some errors
# (an "ERROR: Error running ansible-doc" line on a plugin whose documentation does not parse) and on
# findings Galaxy accepts but shows to users ("WARNING: ..." lines, ansible-lint's among them):
# here any of those lines fails the build.
log=build/importer.log
(cd build && "../$venv/bin/python" -m galaxy_importer.main "$(basename "$tarball")") 2>&1 | tee "$log"
if grep -qE '^(WARNING|ERROR|CRITICAL):' "$log"; then
  echo "build: galaxy-importer reported problems in $tarball (see $log)" >&2
  exit 1
fi
