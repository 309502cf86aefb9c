#!/usr/bin/env bash
# run-agent.sh PROGRAM [ARG...]
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and started by start-agent-session.sh as the
# pane's command for runtimes that report their own state. It records "starting" with its own pid in the
# agent's heartbeat, starts the liveness ticker on that pid, and then execs the runtime: exec keeps the pid,
# so the ticker watches the runtime itself and its life is tied to the runtime's (docs/runtimes.md).
set -u
tools="${MOSAIC_HOME:?}/tools/fleet"
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

# The integration's own environment (MOSAIC_AGENT_ENV: KEY=VALUE words, rendered from the runtime adapter, split
# without a shell), set only where the operator has not set the variable already.
pairs=()
split_words pairs "${MOSAIC_AGENT_ENV:-}" || pairs=()
for pair in "${pairs[@]}"; do
  key="${pair%%=*}"
  [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ && -z "${!key+set}" ]] && export "$pair"
done
"$tools/agent-state.sh" start "$$"
"$tools/agent-state.sh" tick "$$" &
exec "$@"
