#!/usr/bin/env bash
# `ansible-test sanity` on the working tree as it is now (committed or not), offline as far as
# ansible-test's own downloads go, with every supported ansible-core release: each release's
# ansible-test checks the collection against that release's rules, with that release's ignore file
# (tests/sanity/ignore-X.Y.txt). Part of `make lint` and of the lint phase of `make test`.
#
# Each release runs from a small virtualenv of its own (.venv-sanity-X.Y: that ansible-core, pinned,
# on the Python version given below), made once and kept while its pin is unchanged, and tests with
# its own Python version (--python). WSFLEET_SANITY_RELEASES="2.21" runs only the releases named.
#
# ansible-test wants the collection at .../ansible_collections/wsfleet/fleet and, to know which
# files belong to it, a git repository there: the collection is built, unpacked into a temporary
# directory of that shape, committed there and tested there. The temporary directory is removed
# at the end (WSFLEET_SANITY_KEEP=1 keeps it and prints its path).
#
# Extra arguments go to ansible-test, e.g. `scripts/sanity.sh --test pep8`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=${VENV:-.venv}
# release, its controller Python (the one the release's ansible-test runs the tests with), the pin.
releases=(
  "2.19 3.11 2.19.14"
  "2.20 3.12 2.20.10"
  "2.21 3.13 2.21.5"
)
wanted=${WSFLEET_SANITY_RELEASES:-2.19 2.20 2.21}

# The virtualenv of one release: made again only when its pin or Python version changes.
release_venv() {
  local release=$1 version=$2 pin=$3
  local dir=$repo/.venv-sanity-$release python
  local want="ansible-core==$pin python$version"
  if [ -x "$dir/bin/ansible-test" ] && [ "$(cat "$dir/.wsfleet-installed" 2>/dev/null)" = "$want" ]; then
    echo "$dir"
    return
  fi
  python=$(scripts/find-python.sh "$version")
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "ansible-core==$pin" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
  echo "$want" >"$dir/.wsfleet-installed"
  echo "$dir"
}

# ansible-test's --venv mode makes one virtualenv per test under ~/.ansible/test/venv/ and bootstraps
# pip in it with a get-pip script that it downloads from ci-files.testing.ansible.com, unless a file
# of that name is already in its cache. This stand-in replaces that network download: it installs
# the pip that Python bundles (ensurepip) and then the exact packages ansible-test asked for, from
# the same pip index as every other package here. The requirements of each test (pylint, ...) are
# then installed by pip as usual; once the virtualenvs exist, later runs reuse them. Each
# ansible-test release pins its own pip version (the file name carries it): one stand-in per pin.
get_pip_stand_in() {
  local python=$1 version=$2 pip_version get_pip
  pip_version=$("$python" -c '
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])' "$version")
  get_pip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
  marker='# wsfleet: local stand-in for get-pip'
  if [ -e "$get_pip" ] && ! grep -qF "$marker" "$get_pip"; then
    return  # the real get-pip, downloaded by ansible-test on a machine that could: keep it
  fi
  mkdir -p "$(dirname "$get_pip")"
  cat >"$get_pip.tmp" <<EOF
$marker (scripts/sanity.sh). ansible-test runs it in a new virtualenv
# with pip's arguments (e.g. pip==$pip_version --no-setuptools --no-wheel).
import os
import subprocess
import sys

# get-pip's own options: leave out setuptools and wheel (ensurepip brings setuptools along).
own = {'--no-setuptools', '--no-wheel'}
args = [arg for arg in sys.argv[1:] if arg not in own]

# ensurepip points PIP_CONFIG_FILE at /dev/null; pip would then lose this machine's settings
# (certificates, index).
os.environ.pop('PIP_CONFIG_FILE', None)
subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True, stdout=subprocess.DEVNULL)
os.environ.pop('PIP_CONFIG_FILE', None)
pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '--quiet']
subprocess.run(pip + ['install'] + args, check=True)
for option, package in (('--no-setuptools', 'setuptools'), ('--no-wheel', 'wheel')):
    if option in sys.argv[1:]:
        subprocess.run(pip + ['uninstall', '--yes', package], check=True, stderr=subprocess.DEVNULL)
EOF
  mv "$get_pip.tmp" "$get_pip"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsfleet-sanity.XXXXXX")
if [ -n "${WSFLEET_SANITY_KEEP:-}" ]; then
  trap 'echo "sanity tree kept: $tmp/ansible_collections/wsfleet/fleet"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi
# The tree is what the collection ships: the tarball `ansible-galaxy collection build` makes of the
# working tree (build_ignore applied), unpacked, plus tests/sanity/ (the ignore file), which the
# tarball leaves out. The development tools that do not ship (bench/, scripts/, tests/,
# extensions/molecule/) are not Ansible content; pytest, yamllint and ansible-lint check them.
tree=$tmp/ansible_collections/wsfleet/fleet
mkdir -p "$tree" "$tmp/dist"
"$repo/$venv/bin/ansible-galaxy" collection build --output-path "$tmp/dist" . >/dev/null
tar -xzf "$tmp"/dist/*.tar.gz -C "$tree"
mkdir -p "$tree/tests"
cp -R tests/sanity "$tree/tests/"
# ansible-test lists the collection's files with git: make the tree a repository, its output
# directory ignored.
printf '/tests/output/\n' >"$tree/.gitignore"
git -C "$tree" init --quiet
git -C "$tree" add --all
git -C "$tree" -c user.name=sanity -c user.email=sanity@localhost -c commit.gpgsign=false \
  commit --quiet --no-verify -m "wsfleet.fleet as built from $repo"

cd "$tree"
declare -a times=()
status=0
for line in "${releases[@]}"; do
  read -r release version pin <<<"$line"
  case " $wanted " in *" $release "*) ;; *) continue ;; esac
  start=$SECONDS
  dir=$(cd "$repo" && release_venv "$release" "$version" "$pin")
  get_pip_stand_in "$dir/bin/python" "$version"
  echo "--> ansible-test sanity: ansible-core $pin, Python $version"
  if (PATH="$dir/bin:$PATH" "$dir/bin/ansible-test" sanity --venv --python "$version" --color no "$@"); then
    times+=("ansible-core $release: $((SECONDS - start)) s ok")
  else
    status=1
    times+=("ansible-core $release: $((SECONDS - start)) s FAILED")
  fi
done
printf 'sanity: %s\n' "${times[@]}"
exit "$status"
