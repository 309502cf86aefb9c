/**
 * The two things fleet asks of node:crypto, with node:crypto loaded at the first call instead of when the CLI
 * starts: loading it costs ≈ 13 ms of CPU, and `fleet ps`, `fleet validate` and `--version` never hash
 * (docs/benchmarks.md). Computation only, no I/O: the pure planner and renderers may use it.
 */
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';

let crypto: typeof Crypto | undefined;

function nodeCrypto(): typeof Crypto {
  // node:module is loaded already (src/manifest/schema.ts); import.meta.url is the bundle's own URL there.
  return (crypto ??= createRequire(import.meta.url)('node:crypto') as typeof Crypto);
}

/** sha256 of `text` (UTF-8) in hex; one-shot, which costs less than a Hash object per call. */
export function sha256Hex(text: string): string {
  return nodeCrypto().hash('sha256', text, 'hex');
}

/** `bytes` random bytes in hex: unique temp-file and session names. */
export function randomHex(bytes: number): string {
  return nodeCrypto().randomBytes(bytes).toString('hex');
}
