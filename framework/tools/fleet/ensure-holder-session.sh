#!/usr/bin/env bash
# ensure-holder-session.sh --socket=NAME --holder=SESSION
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and run by mosaic-tmux-holder.service,
# once per fleet socket. Makes sure the tmux server for the socket runs and holds a session SESSION,
# so the server outlives the agents' sessions. `--socket=` (empty) means tmux's default socket (no -L):
# the `--socket=VALUE` form keeps an empty socket unambiguous on a unit's ExecStart line.
# Idempotent: an existing holder session is left alone.
set -euo pipefail

unset TMUX

die() {
  printf 'ensure-holder-session: %s\n' "$*" >&2
  exit 1
}

socket=
holder=
have_socket=
for arg in "$@"; do
  case "$arg" in
    --socket=*) socket="${arg#--socket=}"; have_socket=1 ;;
    --holder=*) holder="${arg#--holder=}" ;;
    *) die "unknown argument '$arg' (usage: ensure-holder-session.sh --socket=NAME --holder=SESSION)" ;;
  esac
done
[[ -n "$have_socket" ]] || die "--socket=NAME is required (use --socket= for the default tmux socket)"
[[ -n "$holder" ]] || die "--holder=SESSION is required"

fleet_tmux() {
  if [[ -n "$socket" ]]; then
    tmux -L "$socket" "$@"
  else
    tmux "$@"
  fi
}

if fleet_tmux has-session -t "=$holder" 2>/dev/null; then
  exit 0
fi
# The holder's pane only has to exist; a sleep loop survives any single sleep being killed.
if ! fleet_tmux new-session -d -s "$holder" -- sh -c 'while :; do sleep 3600; done'; then
  # Another holder start may have won the race; only a still-missing session is an error.
  fleet_tmux has-session -t "=$holder" 2>/dev/null ||
    die "could not create holder session '$holder' (socket '${socket:-<default>}')"
fi
