#!/usr/bin/env bash
# start-agent-session.sh NAME
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and run by mosaic-agent@NAME.service.
# Creates the agent's tmux session (exact name NAME) running its runtime. systemd supplies the
# environment from <mosaic home>/fleet/agents/NAME.env:
#   MOSAIC_AGENT_NAME, MOSAIC_AGENT_RUNTIME, MOSAIC_AGENT_RUNTIME_COMMAND, MOSAIC_AGENT_MODEL,
#   MOSAIC_AGENT_WORKDIR, MOSAIC_TMUX_SOCKET ('' = default tmux socket), MOSAIC_HOME,
#   MOSAIC_AGENT_STATE, MOSAIC_AGENT_ARGS, MOSAIC_AGENT_RESUME_ARGS (from the runtime adapter),
#   MOSAIC_AGENT_COMMAND (optional: a shell command that replaces the runtime command).
#
# Idempotent: a live session is left alone; a session whose program died (dead pane) is respawned.
# Errors go to stderr, which systemd sends to the journal.
set -euo pipefail

# Inside a tmux pane $TMUX names the enclosing server, and plain `tmux` would talk to it instead of
# the default socket: the socket rule below must be the only thing that picks the server.
unset TMUX

# resumable TRANSCRIPT SESSION: the runtime can load that conversation ('' = it named no transcript: trusted).
# pi finds a session by the header on its file's first line; a file deleted while pi runs is created again by its
# next append without one, and `pi --session ID` then exits 1 ("No session found"): a pane that dies at once, at
# every respawn. Read with builtins, at most 4 KiB.
resumable() {
  local transcript="$1" session="$2" first=''
  [[ -n "$transcript" ]] || return 0
  [[ -f "$transcript" ]] || return 1
  case "${MOSAIC_AGENT_RUNTIME:-}" in
    pi)
      IFS= read -r -n 4096 first 2>/dev/null <"$transcript" || [[ -n "$first" ]] || return 1
      [[ "$first" == *'"type":"session"'* && "$first" == *"\"id\":\"$session\""* ]]
      ;;
  esac
}

die() {
  printf 'start-agent-session: %s\n' "$*" >&2
  exit 1
}

# split_words ARRAY STRING: STRING's words into ARRAY, split as xargs splits its input: blanks separate words,
# '...' and "..." quote, a backslash escapes the next character; nothing is evaluated. Builtins only: this runs
# on every start, and a pipe into xargs cost three processes. Fails on an unmatched quote.
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

[[ $# -eq 1 && -n "$1" ]] || die "usage: start-agent-session.sh AGENT_NAME"
name="$1"

# Unset (not merely empty) means the env file was not loaded: refuse rather than guess a socket.
for var in MOSAIC_AGENT_NAME MOSAIC_AGENT_WORKDIR MOSAIC_TMUX_SOCKET MOSAIC_HOME; do
  [[ -n "${!var+set}" ]] || die "$name: $var is not set (is fleet/agents/$name.env missing? run 'fleet reconcile')"
done
[[ "$MOSAIC_AGENT_NAME" == "$name" ]] ||
  die "$name: env file names agent '$MOSAIC_AGENT_NAME', not '$name'"
[[ -d "$MOSAIC_AGENT_WORKDIR" ]] ||
  die "$name: working directory $MOSAIC_AGENT_WORKDIR does not exist (create it or fix working_directory in the roster)"

# The socket rule: a named socket means `tmux -L NAME`; an empty one means tmux's default socket, no -L.
fleet_tmux() {
  if [[ -n "$MOSAIC_TMUX_SOCKET" ]]; then
    tmux -L "$MOSAIC_TMUX_SOCKET" "$@"
  else
    tmux "$@"
  fi
}

# What the pane runs. The operator's MOSAIC_AGENT_COMMAND wins and goes through a login shell so it may
# use pipes and PATH from the profile; otherwise the runtime's program, exec'd directly (no shell).
argv=()
if [[ -n "${MOSAIC_AGENT_COMMAND:-}" ]]; then
  argv=(bash -lc "$MOSAIC_AGENT_COMMAND")
else
  program="${MOSAIC_AGENT_RUNTIME_COMMAND:-${MOSAIC_AGENT_RUNTIME:-}}"
  [[ -n "$program" ]] || die "$name: neither MOSAIC_AGENT_COMMAND nor MOSAIC_AGENT_RUNTIME_COMMAND is set"
  # Fail here, with the program's name, instead of leaving a pane that died at once.
  command -v -- "$program" >/dev/null 2>&1 ||
    die "$name: runtime program '$program' not found (PATH=$PATH)"
  # MOSAIC_AGENT_ARGS is one line of words, plain or in single quotes, rendered by the reconciler from the
  # runtime adapter; split_words splits it without a shell, so nothing in it is ever evaluated.
  args=()
  if [[ -n "${MOSAIC_AGENT_ARGS+set}" ]]; then
    split_words args "$MOSAIC_AGENT_ARGS" || die "$name: MOSAIC_AGENT_ARGS cannot be split (unmatched quote)"
  elif [[ -n "${MOSAIC_AGENT_MODEL:-}" ]]; then
    args=(--model "$MOSAIC_AGENT_MODEL")
  fi
  # Resume the previous conversation when the runtime reported one (session= in the heartbeat) and its
  # transcript, when the runtime named one, still exists and can be loaded: a start never fails for a vanished
  # conversation.
  resume=()
  resumed_session=''
  resumed_transcript=''
  hb="$MOSAIC_HOME/fleet/run/$name.hb"
  if [[ -n "${MOSAIC_AGENT_RESUME_ARGS:-}" && -f "$hb" && ! -L "$hb" ]]; then
    # The first session= and transcript= lines, read with builtins (no sed per start).
    session=''
    transcript=''
    have_session=''
    have_transcript=''
    while IFS= read -r line || [[ -n "$line" ]]; do
      case "$line" in
        session=*) [[ -n "$have_session" ]] || { session="${line#session=}"; have_session=1; } ;;
        transcript=*) [[ -n "$have_transcript" ]] || { transcript="${line#transcript=}"; have_transcript=1; } ;;
      esac
    done <"$hb"
    if [[ "$session" =~ ^[A-Za-z0-9._:-]+$ ]] && resumable "$transcript" "$session"; then
      split_words resume "$MOSAIC_AGENT_RESUME_ARGS" || die "$name: MOSAIC_AGENT_RESUME_ARGS cannot be split (unmatched quote)"
      resume=("${resume[@]//\{session\}/$session}")
      resumed_session="$session"
      resumed_transcript="$transcript"
      printf 'start-agent-session: %s: resuming conversation %s\n' "$name" "$session" >&2
    elif [[ -n "$session" ]]; then
      printf 'start-agent-session: %s: not resuming conversation %s: its transcript is gone or cannot be loaded\n' "$name" "$session" >&2
    fi
  fi
  argv=("$program" "${resume[@]}" "${args[@]}")
  # Runtimes that report their own state run under the launcher, which ties a liveness ticker to them.
  if [[ -n "${MOSAIC_AGENT_STATE:-}" && "${MOSAIC_AGENT_STATE}" != none ]]; then
    argv=("$MOSAIC_HOME/tools/fleet/run-agent.sh" "${argv[@]}")
  fi
fi

# The tmux server may have been started by another unit with another environment, so the pane gets this
# unit's environment explicitly: the env file's keys (the managed ones and the operator's own, such as API
# keys) plus what the manager passes. Left out: per-invocation systemd variables and the shell's own.
env_args=()
# The exported variables, as `compgen -e` lists them, without its subshell: every set variable by initial, kept
# when it carries the export attribute (nounset off meanwhile: an empty array, such as BASH_ARGV, has no value).
set +u
for var in ${!A*} ${!B*} ${!C*} ${!D*} ${!E*} ${!F*} ${!G*} ${!H*} ${!I*} ${!J*} ${!K*} ${!L*} ${!M*} \
  ${!N*} ${!O*} ${!P*} ${!Q*} ${!R*} ${!S*} ${!T*} ${!U*} ${!V*} ${!W*} ${!X*} ${!Y*} ${!Z*} ${!_*} \
  ${!a*} ${!b*} ${!c*} ${!d*} ${!e*} ${!f*} ${!g*} ${!h*} ${!i*} ${!j*} ${!k*} ${!l*} ${!m*} \
  ${!n*} ${!o*} ${!p*} ${!q*} ${!r*} ${!s*} ${!t*} ${!u*} ${!v*} ${!w*} ${!x*} ${!y*} ${!z*}; do
  [[ "${!var@a}" == *x* ]] || continue
  case "$var" in
    TMUX | TMUX_PANE | INVOCATION_ID | JOURNAL_STREAM | SYSTEMD_EXEC_PID | MANAGERPID | NOTIFY_SOCKET) ;;
    LISTEN_* | WATCHDOG_* | MONITOR_* | SHLVL | PWD | OLDPWD | _) ;;
    MOSAIC_AGENT_RESUMED_SESSION | MOSAIC_AGENT_RESUMED_TRANSCRIPT) ;;
    *) env_args+=(-e "$var=${!var}") ;;
  esac
done
set -u
# The conversation this start resumes ('' = a fresh one): run-agent.sh records it in the heartbeat at once, so
# it is not forgotten before the runtime reports it again (Codex says nothing until its first turn), and a
# second restart resumes it too.
env_args+=(-e "MOSAIC_AGENT_RESUMED_SESSION=${resumed_session:-}" -e "MOSAIC_AGENT_RESUMED_TRANSCRIPT=${resumed_transcript:-}")

session="=$name"
# `=NAME:` (with the colon) is the exact session's current window; without the colon tmux would
# resolve a missing session to some other one by prefix.
window="=$name:"

# One tmux command list, so remain-on-exit is set before the server can notice the program exit: a
# program that dies at once leaves a dead pane the reconciler can see, not a vanished session.
# The same list marks the session as this fleet's (@mosaic-fleet-home = its Mosaic home): the reconciler ends
# only sessions carrying its own marker, never a same-named session someone else started.
new_session() {
  fleet_tmux new-session -d -s "$name" -c "$MOSAIC_AGENT_WORKDIR" "${env_args[@]}" -- "${argv[@]}" \; \
    set-option -t "$window" @mosaic-fleet-home "$MOSAIC_HOME" \; \
    set-option -w -t "$window" remain-on-exit on
}

# Most starts find no session, so creating it comes first: one tmux client per start. tmux refuses a duplicate
# name, and only then is the existing session looked at.
if new_session 2>/dev/null; then
  exit 0
fi
if fleet_tmux has-session -t "$session" 2>/dev/null; then
  dead="$(fleet_tmux list-panes -t "$window" -F '#{pane_dead}' 2>/dev/null)" || dead=''
  if [[ "${dead%%$'\n'*}" != "1" ]]; then
    exit 0
  fi
  printf 'start-agent-session: %s: pane is dead, respawning\n' "$name" >&2
  fleet_tmux respawn-pane -k -t "$window" -c "$MOSAIC_AGENT_WORKDIR" "${env_args[@]}" -- "${argv[@]}" ||
    die "$name: tmux respawn-pane failed"
  exit 0
fi
# No session, yet tmux would not create it: once more, so its own error reaches the journal.
new_session || die "$name: tmux new-session failed (socket '${MOSAIC_TMUX_SOCKET:-<default>}')"
