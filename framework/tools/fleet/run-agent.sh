#!/usr/bin/env bash
# run-agent.sh PROGRAM [ARG...]
#
# Installed by `fleet reconcile` into <mosaic home>/tools/fleet/ and started by start-agent-session.sh as the
# pane's command for runtimes that report their own state. It records "starting" with its own pid in the
# agent's heartbeat, starts the liveness ticker on that pid, and then execs the runtime: exec keeps the pid,
# so the ticker watches the runtime itself and its life is tied to the runtime's (docs/runtimes.md).
set -u
tools="${MOSAIC_HOME:?}/tools/fleet"
"$tools/agent-state.sh" start "$$"
"$tools/agent-state.sh" tick "$$" &
exec "$@"
