/**
 * Codex's ready signal. Its hooks say nothing before the first turn (SessionStart comes with it), and keys it
 * reads before its input box is up arrive as one burst with their Enter: the prompt lands in the box, unsent. What
 * it does do once its conversation is set up is hold its thread's writer lock open
 * (`$CODEX_HOME/thread-writer-locks/<thread id>.lock`, verified with 0.171). The launcher's ticker watches the
 * runtime's open files for it (agent-state.sh `ready_watch`) and reports `idle`, event `ready:open-file`.
 */
import type { ReadySignal } from '../adapter.js';

/** A `find -lname` pattern for the file Codex holds open once it reads input. */
export const CODEX_READY_OPEN_FILE = '*/thread-writer-locks/*.lock';

export const codexReady: ReadySignal = {
  signal: 'it holds its thread open (thread-writer-locks/<id>.lock)',
  env: () => ({ MOSAIC_READY_OPEN_FILE: CODEX_READY_OPEN_FILE }),
};
