/** Claude Code's ready signal: its SessionStart hook runs once the TUI is set up (agent-state.sh `claude`). */
import type { ReadySignal } from '../adapter.js';

export const claudeReady: ReadySignal = { signal: 'its SessionStart hook runs' };
