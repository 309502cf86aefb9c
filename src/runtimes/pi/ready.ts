/** pi's ready signal: the fleet's extension reports `session_start` (framework/tools/fleet/pi-extension.ts). */
import type { ReadySignal } from '../adapter.js';

export const piReady: ReadySignal = { signal: 'its extension reports session_start' };
