#!/usr/bin/env bash
# agent-state.sh COMMAND [ARG...]
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/. The one writer of an agent's heartbeat
# file, $MOSAIC_HOME/fleet/run/$MOSAIC_AGENT_NAME.hb, for runtimes that report their own state
# (docs/runtimes.md). Every write is atomic (temp file + rename) and serialised with the other writers of
# the same agent (the runtime's hooks and the liveness ticker) by a lock on the run directory. The file:
#   ts=<unix seconds of the last sign of life>   state=starting|busy|idle|waiting|exited
#   since=<unix seconds the state began>         event=<the runtime's event that set it>
#   session=<the runtime's own conversation id>  pid=<the runtime's pid>   runtime=<name>
#   transcript=<the conversation's file, when the runtime names one>
# A write that changes the state (or its since) also writes $MOSAIC_HOME/fleet/run/news/$MOSAIC_AGENT_NAME: watch
# mode listens there, so the ticker's refreshes of ts= wake nobody.
#
#   start PID               the launcher, just before it execs the runtime as PID: state=starting (and the
#                           conversation it resumes, MOSAIC_AGENT_RESUMED_SESSION/_TRANSCRIPT, if any)
#   tick PID                liveness: refresh ts= while PID lives and is neither stopped nor a zombie
#   set STATE EVENT [ID [FILE]]  a runtime integration reporting a state (the pi extension, the opencode plugin)
#   ready EVENT [ID]        the runtime says it can take a prompt now (opencode's TUI plugin): starting -> idle;
#                           nothing when it already reported anything else
#   claude EVENT            a Claude Code hook (its JSON on stdin)
#   codex-notify JSON       Codex `notify` after a turn (the JSON is the last argument)
#   codex-hook EVENT        a Codex hook (its JSON on stdin)
#
# It runs inside the runtime's hooks, so it never prints to stdout (Claude Code reads some hooks' stdout as
# context) and always exits 0 (a failing hook can block the runtime's tool call).
set -u

name="${MOSAIC_AGENT_NAME:-}"
home="${MOSAIC_HOME:-}"
[[ -n "$name" && -n "$home" && "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || exit 0
run="$home/fleet/run"
hb="$run/$name.hb"
tick_seconds="${MOSAIC_TICK_SECONDS:-10}"
[[ "$tick_seconds" =~ ^[0-9]+$ && "$tick_seconds" -gt 0 ]] || tick_seconds=10

KEYS=(ts state since event session pid runtime transcript)

# write KEY=VALUE...: merge into the heartbeat under the lock; state changes move since=.
write() {
  [[ -d "$run" ]] || mkdir -p -- "$run" 2>/dev/null || return 0
  # The run directory is never a link (the reconciler refuses one); do not write through one either.
  [[ -L "$run" || -L "$hb" ]] && return 0
  local fd
  exec {fd}<"$run" || return 0
  flock -w 5 "$fd" 2>/dev/null || true
  local -A kv=()
  local k v line
  if [[ -f "$hb" ]]; then
    while IFS= read -r line || [[ -n "$line" ]]; do
      k="${line%%=*}"
      [[ "$line" == *=* && "$k" =~ ^[a-z_]+$ ]] && kv[$k]="${line#*=}"
    done <"$hb"
  fi
  local now old_state="${kv[state]:-}" old_since="${kv[since]:-}"
  # A conditional write (a ready signal): only while the state is still what it was meant to change, judged under
  # the lock, so a prompt's `busy` written meanwhile is never overwritten by a late `idle`.
  if [[ -n "${only_if_state:-}" && "$old_state" != "$only_if_state" ]]; then
    exec {fd}<&-
    return 0
  fi
  printf -v now '%(%s)T' -1
  for line in "$@"; do
    v="${line#*=}"
    v="${v//[$'\n\r']/ }"
    kv[${line%%=*}]="$v"
  done
  kv[ts]="$now"
  if [[ "${kv[state]:-}" != "$old_state" || -z "${kv[since]:-}" ]]; then kv[since]="$now"; fi
  local tmp="$run/.$name.hb.state-$$.tmp"
  # The temp file is removed only when the rename did not take it: one process less on every tick and hook.
  if ! {
    {
      # `if`, not `&&`: a loop whose last key is unset would end with that test's status, and the write be lost.
      for k in "${KEYS[@]}"; do
        if [[ -n "${kv[$k]+set}" ]]; then printf '%s=%s\n' "$k" "${kv[$k]}"; fi
      done
    } >"$tmp" 2>/dev/null && mv -f -- "$tmp" "$hb" 2>/dev/null
  }; then
    rm -f -- "$tmp" 2>/dev/null
  elif [[ "${kv[state]:-}" != "$old_state" || "${kv[since]}" != "$old_since" ]]; then
    news
  fi
  exec {fd}<&-
  return 0
}

# news: say in $run/news/NAME that the state changed. Watch mode listens to that folder, not to the heartbeats,
# which the liveness ticker rewrites every few seconds: 100 agents' ticks woke it 10 times a second for nothing.
news() {
  local dir="$run/news"
  [[ -d "$dir" ]] || mkdir -p -- "$dir" 2>/dev/null || return 0
  [[ -L "$dir" || -L "$dir/$name" ]] && return 0
  printf '%s\n' "${kv[state]:-}" >"$dir/$name" 2>/dev/null
}

# field KEY JSON: a top-level string field of compact JSON, unescaped enough for ids, paths and names.
field() {
  local re="\"$1\"[[:space:]]*:[[:space:]]*\"(([^\"\\\\]|\\\\.)*)\""
  if [[ "$2" =~ $re ]]; then
    local v="${BASH_REMATCH[1]}"
    v="${v//\\\//\/}"
    printf '%s' "${v//\\\\/\\}"
  fi
}

# alive PID: the process exists and is neither stopped (SIGSTOP: hung for us) nor a zombie.
alive() {
  local stat
  read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
  local rest="${stat##*) }"
  case "${rest%% *}" in
    T | t | Z | X | x) return 1 ;;
  esac
  return 0
}

# get KEY: a value of the heartbeat file (no spawn: the ticker calls it every tick).
get() {
  local line
  [[ -f "$hb" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" == "$1="* ]]; then
      printf '%s' "${line#*=}"
      return 0
    fi
  done <"$hb"
}

# open_file PID PATTERN: the first file PID or one of its descendants holds open whose path matches PATTERN (a
# find -lname pattern); nothing when none does. Codex holds its thread's writer lock open from the moment its
# conversation is set up and it reads input: that is its ready signal (it has no start event before the first turn).
open_file() {
  local pids=("$1") i=0 p kids child found
  while ((i < ${#pids[@]})); do
    p="${pids[$i]}"
    i=$((i + 1))
    for kids in /proc/"$p"/task/*/children; do
      # The list has no final newline, so read reports EOF while it did fill the array.
      child=()
      read -r -a child <"$kids" 2>/dev/null
      pids+=("${child[@]}")
    done
  done
  for p in "${pids[@]}"; do
    found="$(find "/proc/$p/fd" -maxdepth 1 -lname "$2" -printf '%l\n' -quit 2>/dev/null)"
    if [[ -n "$found" ]]; then
      printf '%s' "$found"
      return 0
    fi
  done
  return 1
}

# ready_watch PID: while the runtime is still "starting", look every quarter second for the file its adapter
# says it holds open once it can take input (MOSAIC_READY_OPEN_FILE), then report it ready; the heartbeat is
# refreshed meanwhile as the ticker would. No session is taken from that file: a conversation that never had a
# turn has nothing to resume. Bounded: a runtime that never opens it stays "starting", and `fleet send` says so.
ready_watch() {
  local pattern="${MOSAIC_READY_OPEN_FILE:-}" n=0 refreshed=$SECONDS
  [[ -n "$pattern" ]] || return 0
  while ((n < 2400)) && [[ -e "/proc/$1" && "$(get state)" == starting && "$(get pid)" == "$1" ]]; do
    if open_file "$1" "$pattern" >/dev/null; then
      only_if_state=starting write state=idle event=ready:open-file
      return 0
    fi
    if ((SECONDS - refreshed >= tick_seconds)); then
      write
      refreshed=$SECONDS
    fi
    n=$((n + 1))
    sleep 0.25
  done
}

# interrupted: Claude Code and Codex end a turn refused at their permission dialog (Esc), or interrupted, without
# a Stop hook; their transcript's last entries then say so (Claude Code: "[Request interrupted by user...]";
# Codex: a "turn_aborted" event).
interrupted() {
  local transcript
  transcript="$(get transcript)"
  [[ -n "$transcript" && -f "$transcript" ]] || return 1
  tail -c 16384 -- "$transcript" 2>/dev/null | tail -n 3 | grep -q -e 'Request interrupted by user' -e '"type":"turn_aborted"'
}

# write_hook STATE EVENT JSON: a hook's report, with the session id and transcript its JSON names (Claude Code
# and Codex hooks share these fields).
write_hook() {
  local args=("state=$1" "event=$2") session transcript
  session="$(field session_id "$3")"
  [[ -n "$session" ]] && args+=("session=$session")
  transcript="$(field transcript_path "$3")"
  [[ -n "$transcript" ]] && args+=("transcript=$transcript")
  write "${args[@]}"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  start)
    # A resumed conversation (start-agent-session.sh says which) is this runtime's from the start; a fresh
    # one is unknown until the runtime reports it.
    write state=starting event=launch "pid=${1:-}" "runtime=${MOSAIC_AGENT_RUNTIME:-}" \
      "session=${MOSAIC_AGENT_RESUMED_SESSION:-}" "transcript=${MOSAIC_AGENT_RESUMED_TRANSCRIPT:-}"
    ;;
  tick)
    pid="${1:-}"
    [[ "$pid" =~ ^[0-9]+$ ]] || exit 0
    # Detach from the pane's terminal: the ticker must not read from it or keep it open.
    exec </dev/null >/dev/null 2>&1
    ready_watch "$pid"
    while [[ -e "/proc/$pid" ]]; do
      if alive "$pid"; then
        st="$(get state)"
        if [[ "$st" == waiting || "$st" == busy ]] && interrupted; then
          write state=idle event=interrupted
        else
          write
        fi
      fi
      sleep "$tick_seconds"
    done
    # The runtime is gone. Say so, unless a newer runtime already took the file over, or the runtime already
    # said so itself (a clean exit: its own event, such as SessionEnd, is the better record).
    if [[ "$(get pid)" == "$pid" && "$(get state)" != exited ]]; then write state=exited event=process-exit; fi
    ;;
  set)
    state="${1:-}"
    case "$state" in starting | busy | idle | waiting | exited) ;; *) exit 0 ;; esac
    # A report still in flight when the runtime said it quit is older news: the next launch (`start`) resets.
    [[ "$(get state)" == exited ]] && exit 0
    args=("state=$state" "event=${2:-}")
    [[ -n "${3:-}" ]] && args+=("session=$3")
    [[ -n "${4:-}" ]] && args+=("transcript=$4")
    write "${args[@]}"
    ;;
  ready)
    # Only news while nothing else was reported: a prompt taken in the meantime already said more.
    [[ "$(get state)" == starting ]] || exit 0
    args=(state=idle "event=${1:-ready}")
    [[ -n "${2:-}" ]] && args+=("session=$2")
    only_if_state=starting write "${args[@]}"
    ;;
  claude)
    event="${1:-}"
    json="$(head -c 1048576)"
    if [[ "$event" == Notification ]]; then
      # permission_prompt: the permission dialog; agent_needs_input: auto mode asking; idle_prompt: a
      # minute without input after a turn. Other notifications say nothing about the state.
      event="Notification:$(field notification_type "$json")"
    fi
    case "$event" in
      SessionStart) state=idle ;;
      UserPromptSubmit | PreToolUse | PostToolUse) state=busy ;;
      PermissionRequest | Notification:permission_prompt | Notification:agent_needs_input) state=waiting ;;
      Notification:idle_prompt | Stop) state=idle ;;
      SessionEnd) state=exited ;;
      *) exit 0 ;;
    esac
    write_hook "$state" "$event" "$json"
    ;;
  codex-notify)
    json="${*: -1}"
    [[ "$(field type "$json")" == agent-turn-complete ]] || exit 0
    # Codex also runs a side turn that names the session; it is not the operator's turn ending.
    [[ "$json" == *'concise, single-line task title'* ]] && exit 0
    args=(state=idle event=agent-turn-complete)
    session="$(field thread-id "$json")"
    [[ -n "$session" ]] && args+=("session=$session")
    write "${args[@]}"
    ;;
  codex-hook)
    event="${1:-}"
    json="$(head -c 1048576)"
    case "$event" in
      SessionStart | Stop) state=idle ;;
      UserPromptSubmit | PreToolUse | PostToolUse) state=busy ;;
      PermissionRequest) state=waiting ;;
      *) exit 0 ;;
    esac
    write_hook "$state" "$event" "$json"
    ;;
esac
exit 0
