#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over every source file of src/, in parallel, against the
# compile_commands.json of a configured build folder (default build/release).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
build=${1:-build/release}
[[ -f "$build/compile_commands.json" ]] || { echo "tidy: configure $build first" >&2; exit 2; }
mapfile -t files < <(git ls-files -co --exclude-standard 'src/*.cpp' | grep -v '_test\.cpp$')
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet 2> >(grep -v 'warnings generated' >&2)
echo "tidy: ${#files[@]} files clean"
