#!/usr/bin/env bash
# run-agent.sh PROGRAM [ARG...]
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and started by start-agent-session.sh as the
# pane's command for runtimes that report their own state. It records "starting" with its own pid in the
# agent's heartbeat, starts the liveness ticker on that pid, and then execs the runtime: exec keeps the pid,
# so the ticker watches the runtime itself and its life is tied to the runtime's (docs/runtimes.md).
set -u
tools="${MOSAIC_HOME:?}/tools/fleet"
# The integration's own environment (MOSAIC_AGENT_ENV: KEY=VALUE words, rendered from the runtime adapter, split
# by xargs without a shell), set only where the operator has not set the variable already.
if [[ -n "${MOSAIC_AGENT_ENV:-}" ]]; then
  while IFS= read -r -d '' pair; do
    key="${pair%%=*}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ && -z "${!key+set}" ]] && export "$pair"
  done < <(printf '%s' "$MOSAIC_AGENT_ENV" | xargs -r printf '%s\0')
fi
"$tools/agent-state.sh" start "$$"
"$tools/agent-state.sh" tick "$$" &
exec "$@"
