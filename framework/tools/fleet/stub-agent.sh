#!/usr/bin/env bash
# stub-agent.sh [--model MODEL]
#
# A stand-in agent for tests and dry runs of a fleet: it does no work, but answers the heartbeat
# protocol like a real runtime. Every ${MOSAIC_HEARTBEAT_INTERVAL:-5} seconds it replaces
# $MOSAIC_HOME/fleet/run/$MOSAIC_AGENT_NAME.hb (atomically: temp file + rename) with
#   ts=<unix seconds>
#   pid=<its pid>
#   model=<the --model given, or empty>
# and prints a line now and then so the pane shows life. Exits cleanly on SIGTERM/SIGHUP/SIGINT.
set -euo pipefail

die() {
  printf 'stub-agent: %s\n' "$*" >&2
  exit 1
}

model=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) [[ $# -ge 2 ]] || die "--model needs a value"; model="$2"; shift 2 ;;
    --model=*) model="${1#--model=}"; shift ;;
    *) shift ;; # Real runtimes take other flags; the stub accepts and ignores them.
  esac
done

[[ -n "${MOSAIC_HOME:-}" ]] || die "MOSAIC_HOME is not set"
[[ -n "${MOSAIC_AGENT_NAME:-}" ]] || die "MOSAIC_AGENT_NAME is not set"
interval="${MOSAIC_HEARTBEAT_INTERVAL:-5}"
[[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "MOSAIC_HEARTBEAT_INTERVAL must be a number of seconds, got '$interval'"

run_dir="$MOSAIC_HOME/fleet/run"
hb="$run_dir/$MOSAIC_AGENT_NAME.hb"
# Builtins where they do (here and in beat): a fleet of stubs starts at once, and every process each one
# spawns competes with the units still starting.
[[ -d "$run_dir" ]] || mkdir -p -- "$run_dir"

sleeper=
stop() {
  [[ -n "$sleeper" ]] && kill "$sleeper" 2>/dev/null
  printf 'stub-agent %s: stopping\n' "$MOSAIC_AGENT_NAME"
  exit 0
}
trap stop TERM HUP INT

beat() {
  local tmp="$run_dir/.$MOSAIC_AGENT_NAME.hb.$$"
  printf 'ts=%(%s)T\npid=%s\nmodel=%s\n' -1 "$$" "$model" >"$tmp"
  mv -f -- "$tmp" "$hb"
}

printf 'stub-agent %s: started (pid %s, model %s, heartbeat every %ss)\n' \
  "$MOSAIC_AGENT_NAME" "$$" "${model:-<none>}" "$interval"
count=0
while :; do
  beat
  count=$((count + 1))
  # Once a minute or so at the default interval: enough to show life without flooding the pane.
  if ((count % 12 == 1)); then
    printf 'stub-agent %s: alive at %(%F %T)T\n' "$MOSAIC_AGENT_NAME" -1
  fi
  # Sleep in the background and wait, so a signal is handled at once instead of after the sleep.
  sleep "$interval" &
  sleeper=$!
  wait "$sleeper" || true
  sleeper=
done
