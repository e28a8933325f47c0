#!/usr/bin/env bash
# Installs the Debian 12 packages Inkwell needs, and only the missing ones.
#
#   scripts/install-deps.sh                 build deps + the servers and tools the tests use
#   scripts/install-deps.sh --runtime-only  build deps only (enough to build and run `inkwell`)
#
# Safe to run again: packages are checked with dpkg-query first, and when everything is present
# the script neither refreshes the package index nor calls apt-get at all.
# Never add libboost-dev here: it is Boost 1.74, conflicts with the 1.81 packages, and apt
# resolves the conflict by removing one of them (see TOOLCHAIN.md).
set -euo pipefail

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}

runtime_only=0
for arg in "$@"; do
  case "$arg" in
    --runtime-only) runtime_only=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

# Compilers, libraries and the tools the build runs (formatting and lint checks, pytest).
# Both lists are read through `declare -n <group>_packages`, hence the SC2034 exemptions.
# shellcheck disable=SC2034
build_packages=(
  build-essential cmake ninja-build pkg-config g++
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  librdkafka-dev libpq-dev libhiredis-dev libsqlite3-dev libsodium-dev libjwt-dev libssl-dev
  libcurl4-openssl-dev libspdlog-dev libgtest-dev libbenchmark-dev
  clang-format clang-tidy python3 python3-pytest curl ca-certificates
)
# The real servers the tests run against (deploy/stack), benchmark tools and the browser.
# "a|b" means either package will do; the first one apt can install is chosen.
# shellcheck disable=SC2034
test_packages=(
  postgresql redis-server openjdk-17-jre-headless maven wrk "nginx-light|nginx" chromium
  python3-cryptography python3-jsonschema
)

groups=(build)
((runtime_only)) || groups+=(test)

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install-deps: not root and sudo is missing" >&2; exit 1; }
  sudo=(sudo)
fi

# One dpkg-query call for every name; unknown names simply print nothing.
declare -A installed=()
all_names=()
for group in "${groups[@]}"; do
  declare -n list="${group}_packages"
  for entry in "${list[@]}"; do
    IFS='|' read -r -a alternatives <<<"$entry"
    all_names+=("${alternatives[@]}")
  done
  unset -n list
done
while read -r name status; do
  [[ "$status" == installed ]] && installed["$name"]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${all_names[@]}" 2>/dev/null || true)

# missing_<group>: entries with none of their alternatives installed.
declare -A missing=()
any_missing=0
for group in "${groups[@]}"; do
  declare -n list="${group}_packages"
  missing["$group"]=""
  for entry in "${list[@]}"; do
    IFS='|' read -r -a alternatives <<<"$entry"
    present=0
    for name in "${alternatives[@]}"; do
      [[ -n "${installed[$name]:-}" ]] && present=1
    done
    if ((!present)); then
      missing["$group"]+="$entry "
      any_missing=1
    fi
  done
  unset -n list
done

if ((!any_missing)); then
  for group in "${groups[@]}"; do echo "install-deps: $group: all present"; done
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q

# Resolve "a|b" to the first alternative that has an installation candidate.
has_candidate() {
  local candidate
  candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  [[ -n "$candidate" && "$candidate" != "(none)" ]]
}
declare -A chosen=()
to_install=()
for group in "${groups[@]}"; do
  chosen["$group"]=""
  for entry in ${missing[$group]}; do
    IFS='|' read -r -a alternatives <<<"$entry"
    pick="${alternatives[0]}"
    if ((${#alternatives[@]} > 1)); then
      for name in "${alternatives[@]}"; do
        if has_candidate "$name"; then pick="$name"; break; fi
      done
    fi
    chosen["$group"]+="$pick "
    to_install+=("$pick")
  done
done

"${sudo[@]}" apt-get install -y -q --no-install-recommends "${to_install[@]}"

for group in "${groups[@]}"; do
  if [[ -n "${chosen[$group]}" ]]; then
    echo "install-deps: $group: installed ${chosen[$group]% }"
  else
    echo "install-deps: $group: all present"
  fi
done
