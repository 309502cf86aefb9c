#!/usr/bin/env bash
# stop-agent-session.sh NAME
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and run as ExecStop of
# mosaic-agent@NAME.service. Kills exactly the tmux session NAME on the agent's socket
# (MOSAIC_TMUX_SOCKET from the env file; '' = default socket). Succeeds when it is already gone.
# Never kills a server and never touches another session.
#
# Graceful first: while the pane's program is alive, it types the runtime adapter's exit keys
# (MOSAIC_AGENT_EXIT_KEYS, e.g. `/exit Enter`) so the runtime quits its own way (its exit hooks run and its
# conversation is saved for the next start to resume), then waits up to MOSAIC_STOP_GRACE_SECONDS (default
# 15, at most 25: the unit's TimeoutStopSec=30 must outlast it) for the pane to die, and only then kills the
# session. No exit keys: the session is killed at once.
set -euo pipefail

unset TMUX

die() {
  printf 'stop-agent-session: %s\n' "$*" >&2
  exit 1
}

# split_words ARRAY STRING: STRING's words into ARRAY, split as xargs splits its input: blanks separate words,
# '...' and "..." quote, a backslash escapes the next character; nothing is evaluated. Builtins only: a pipe into
# xargs cost three processes. Fails on an unmatched quote.
split_words() {
  local -n words_out="$1"
  local rest="$2" word
  local plain=$'^[^\'"\\\\ \t\n]+' squoted="^'([^']*)'" dquoted='^"([^"]*)"' escaped=$'^\\\\(.?)'
  words_out=()
  while :; do
    rest="${rest#"${rest%%[!$' \t\n']*}"}"
    [[ -n "$rest" ]] || return 0
    word=''
    while [[ -n "$rest" && "$rest" != [$' \t\n']* ]]; do
      if [[ "$rest" =~ $plain ]]; then
        word+="${BASH_REMATCH[0]}"
      elif [[ "$rest" =~ $squoted || "$rest" =~ $dquoted || "$rest" =~ $escaped ]]; then
        word+="${BASH_REMATCH[1]}"
      else
        return 1
      fi
      rest="${rest:${#BASH_REMATCH[0]}}"
    done
    words_out+=("$word")
  done
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

# pane_alive: the session's pane still runs its program (remain-on-exit keeps a dead pane after a clean exit).
pane_alive() {
  local dead
  dead="$(fleet_tmux list-panes -t "=$name:" -F '#{pane_dead}' 2>/dev/null)" || return 1
  [[ "${dead%%$'\n'*}" == 0 ]]
}

# The exit keys: one line of words, plain or single-quoted, as the reconciler renders it; split without a shell.
# Words that cannot be split are as good as none: the session is then killed at once.
keys=()
split_words keys "${MOSAIC_AGENT_EXIT_KEYS:-}" || keys=()

# ask_to_exit: type the exit keys into a live pane, then wait for the pane to die or the session to go.
ask_to_exit() {
  [[ ${#keys[@]} -gt 0 ]] || return 0
  pane_alive || return 0
  local grace="${MOSAIC_STOP_GRACE_SECONDS:-15}"
  [[ "$grace" =~ ^[0-9]+$ ]] || grace=15
  ((grace <= 25)) || grace=25
  local target="=$name:"
  # A pending permission dialog would take the Enter of the exit keys as "yes": refuse it first (Escape
  # also interrupts a turn in flight, which the stop ends anyway). The heartbeat says so for the runtimes
  # that report their state.
  local hb="${MOSAIC_HOME:-}/fleet/run/$name.hb" state=''
  if [[ -n "${MOSAIC_HOME:-}" && -f "$hb" && ! -L "$hb" ]]; then
    # The first state= line, read with builtins.
    local line
    while IFS= read -r line || [[ -n "$line" ]]; do
      if [[ "$line" == state=* ]]; then
        state="${line#state=}"
        break
      fi
    done 2>/dev/null <"$hb" || true
  fi
  if [[ "$state" == waiting || "$state" == busy ]]; then
    fleet_tmux send-keys -t "$target" Escape 2>/dev/null || return 0
    sleep 0.5
  fi
  # Half-typed input would prefix the exit command (or keep pi's C-d from quitting): clear the input line
  # first, where C-u is known to do only that.
  case "${MOSAIC_AGENT_RUNTIME:-}" in
    claude | codex | pi | opencode)
      fleet_tmux send-keys -t "$target" C-u 2>/dev/null || return 0
      sleep 0.5
      ;;
  esac
  # Each key on its own: tmux sends a word it does not know as a key name as literal text, and Codex takes
  # text followed at once by Enter as a paste that is not submitted.
  local key
  for key in "${keys[@]}"; do
    fleet_tmux send-keys -t "$target" "$key" 2>/dev/null || return 0
    sleep 0.5
  done
  local ticks=$((grace * 5))
  while ((ticks > 0)) && pane_alive; do
    sleep 0.2
    ticks=$((ticks - 1))
  done
  if pane_alive; then
    printf 'stop-agent-session: %s: still running %ss after its exit keys; ending the session\n' "$name" "$grace" >&2
  fi
  return 0
}

# Without exit keys there is nothing to ask: kill at once, one tmux client per stop.
if [[ ${#keys[@]} -eq 0 ]]; then
  # Gone already (or no server at all) is what we wanted.
  fleet_tmux kill-session -t "=$name" 2>/dev/null && exit 0
  if fleet_tmux has-session -t "=$name" 2>/dev/null; then
    die "$name: tmux kill-session failed"
  fi
  exit 0
fi
if ! fleet_tmux has-session -t "=$name" 2>/dev/null; then
  exit 0
fi
# Keep this after any check that the session is this fleet's: typing into another's session is as bad as killing it.
ask_to_exit
# It may vanish between the check and the kill (the program exited); gone is what we wanted.
if ! fleet_tmux kill-session -t "=$name" 2>/dev/null; then
  if fleet_tmux has-session -t "=$name" 2>/dev/null; then
    die "$name: tmux kill-session failed"
  fi
fi
