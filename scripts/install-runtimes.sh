#!/usr/bin/env bash
# Installs the real agent runtimes (pinned) into a cache outside the project's node_modules.
# Idempotent: a runtime whose pinned version is already installed (and whose binary is really there) is skipped.
#
#   FLEET_RUNTIMES_DIR   where to install (default: ${XDG_CACHE_HOME:-$HOME/.cache}/mosaic-fleet/runtimes)
#   scripts/install-runtimes.sh [--print-dir] [RUNTIME...]   (claude codex pi opencode; default: all)
#
# Each runtime gets its own prefix (<dir>/<runtime>-<version>/), so versions never mix and a half-finished
# install is never mistaken for a good one: the prefix is built under a temp name and renamed into place
# only after its binary has been checked.
set -euo pipefail

dir="${FLEET_RUNTIMES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mosaic-fleet/runtimes}"
if [ "${1:-}" = "--print-dir" ]; then
  echo "$dir"
  exit 0
fi

# name|npm package|version|binary inside the prefix (checked after install)
pins=(
  "claude|@anthropic-ai/claude-code|2.1.328|node_modules/@anthropic-ai/claude-code/bin/claude.exe"
  "codex|@openai/codex|0.171.0|node_modules/@openai/codex/bin/codex.js"
  "pi|@mariozechner/pi-coding-agent|0.73.1|node_modules/.bin/pi"
  "opencode|opencode-ai|1.18.33|node_modules/.bin/opencode"
)

want=("$@")
mkdir -p "$dir"
for pin in "${pins[@]}"; do
  IFS='|' read -r name pkg version check <<<"$pin"
  if [ "${#want[@]}" -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  prefix="$dir/$name-$version"
  if [ -e "$prefix/$check" ] && [ -x "$prefix/node_modules/.bin/$name" ]; then
    echo "install-runtimes: $name $version already in $prefix"
    ln -sfn "$name-$version" "$dir/$name"
    continue
  fi
  tmp="$prefix.partial.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "install-runtimes: installing $pkg@$version into $prefix"
  # --foreground-scripts keeps postinstall output visible; npm's exit code is not trusted on its own (see below).
  (cd "$tmp" && echo '{"private":true}' >package.json &&
    npm install --no-audit --no-fund --no-save --loglevel=error "$pkg@$version" >"$tmp/.install.log" 2>&1) || {
    echo "install-runtimes: npm install of $pkg@$version failed; log: $tmp/.install.log" >&2
    tail -20 "$tmp/.install.log" >&2
    exit 1
  }
  if [ ! -e "$tmp/$check" ] || [ ! -x "$tmp/node_modules/.bin/$name" ]; then
    echo "install-runtimes: $pkg@$version installed but $check (or .bin/$name) is missing; log: $tmp/.install.log" >&2
    exit 1
  fi
  rm -rf "$prefix"
  mv "$tmp" "$prefix"
  ln -sfn "$name-$version" "$dir/$name"
  echo "install-runtimes: $name $version ok"
done
