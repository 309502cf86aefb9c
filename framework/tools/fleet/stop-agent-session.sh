#!/usr/bin/env bash
# stop-agent-session.sh NAME
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and run as ExecStop of
# mosaic-agent@NAME.service. Kills exactly the tmux session NAME on the agent's socket
# (MOSAIC_TMUX_SOCKET from the env file; '' = default socket). Succeeds when it is already gone.
# Never kills a server and never touches another session.
set -euo pipefail

unset TMUX

die() {
  printf 'stop-agent-session: %s\n' "$*" >&2
  exit 1
}

[[ $# -eq 1 && -n "$1" ]] || die "usage: stop-agent-session.sh AGENT_NAME"
name="$1"
# Unset would mean "no env file": guessing the default socket could kill someone else's session.
[[ -n "${MOSAIC_TMUX_SOCKET+set}" ]] || die "$name: MOSAIC_TMUX_SOCKET is not set (env file not loaded)"

fleet_tmux() {
  if [[ -n "$MOSAIC_TMUX_SOCKET" ]]; then
    tmux -L "$MOSAIC_TMUX_SOCKET" "$@"
  else
    tmux "$@"
  fi
}

if ! fleet_tmux has-session -t "=$name" 2>/dev/null; then
  exit 0
fi
# It may vanish between the check and the kill (the program exited); gone is what we wanted.
if ! fleet_tmux kill-session -t "=$name" 2>/dev/null; then
  if fleet_tmux has-session -t "=$name" 2>/dev/null; then
    die "$name: tmux kill-session failed"
  fi
fi
