/**
 * A fleet larger than the sandbox runs, for the planner alone: widen a real observed snapshot of n agents to N.
 *
 * Starting 1000 real agents would take tens of seconds of systemd and tmux work, some 2000 processes and gigabytes
 * of memory on a shared 2-core machine, only to time a pure function. The planner sees nothing but the data, so
 * the snapshot of n real agents in sync is copied: agent i of N is agent (i mod n) of the snapshot with its name
 * replaced (names are agentNNNN, fixed width, so one name is never part of another). The walk is generic, so it
 * follows whatever the Observed type holds: an array element or record entry that names exactly one agent (a
 * unit, a pane, an env file, a heartbeat, a state entry) is that agent's and is copied per new agent; a value that
 * names several agents (the socket, the list of panes) is walked into. Copies get process ids of their own, the
 * env file's digest of itself (and the running agent's copy of it) is recomputed for the new name, and the state
 * file's record of what the reconciler wrote is re-hashed for the copied file's new bytes. The desired
 * side is real: a roster of N agents loaded and validated as usual. If the copy is faithful, the plan is empty,
 * as it is for the real snapshot; the benchmark reports the action count so a drifted synthesis shows.
 */
import type { Observed } from '../src/model/observed.js';
import { sha256 } from '../src/plan/digest.js';
import { parseEnvFile, type ParsedEnvFile } from '../src/base/env-file.js';
import { ENV_DIGEST_KEY, envDigest } from '../src/render/env.js';
import { agentName } from './common.js';

const NAME = /agent\d{4}/g;
/** Above the largest Linux pid (2^22): copied process ids never meet real ones. */
const PID_STRIDE = 1 << 22;
const PID_KEYS = new Set(['pid', 'ppid', 'panePid']);

function namesIn(value: unknown): Set<string> {
  return new Set(JSON.stringify(value)?.match(NAME) ?? []);
}

/** Text replacements, in order: the agent's name, then the digests that change with it. */
type Swaps = readonly (readonly [string, string])[];

function swap(text: string, swaps: Swaps): string {
  return swaps.reduce((t, [from, to]) => t.split(from).join(to), text);
}

/** A deep copy with the swaps made in every string and key, and process ids moved out of the way. */
function rename(value: unknown, swaps: Swaps, pidOffset: number, key = ''): unknown {
  if (typeof value === 'string') return swap(value, swaps);
  if (typeof value === 'number') return PID_KEYS.has(key) && value > 1 ? value + pidOffset : value;
  if (Array.isArray(value)) return value.map((v) => rename(v, swaps, pidOffset));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [swap(k, swaps), rename(v, swaps, pidOffset, k)]),
    );
  }
  return value;
}

/**
 * An env file carries a digest of its other lines (MOSAIC_ENV_DIGEST), and the running agent's environment the
 * same value: both must become the digest of the renamed file, or every copy would look edited and due a restart.
 */
function digestSwaps(observed: Observed, from: string, to: string): [string, string][] {
  const swaps: [string, string][] = [];
  for (const [path, file] of Object.entries(observed.files)) {
    if (!path.includes(from) || file.content === null) continue;
    let parsed: ParsedEnvFile;
    try {
      parsed = parseEnvFile(file.content);
    } catch {
      continue;
    }
    const old = parsed.entries.get(ENV_DIGEST_KEY);
    if (old === undefined || old !== envDigest(parsed.entries)) continue;
    swaps.push([old, envDigest(parseEnvFile(file.content.split(from).join(to)).entries)]);
  }
  return swaps;
}

export function widenObserved(observed: Observed, n: number, wide: number): Observed {
  // Per source agent, the names (and pid offsets) of its copies.
  const copies = new Map<string, { to: string; swaps: Swaps; pidOffset: number }[]>();
  for (let i = n; i < wide; i++) {
    const from = agentName(i % n);
    const to = agentName(i);
    const list = copies.get(from) ?? [];
    list.push({
      to,
      swaps: [[from, to], ...digestSwaps(observed, from, to)],
      pidOffset: Math.floor(i / n) * PID_STRIDE,
    });
    copies.set(from, list);
  }
  const only = (value: unknown): string | null => {
    const names = namesIn(value);
    return names.size === 1 ? ([...names][0] ?? null) : null;
  };

  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      const added: unknown[] = [];
      for (const v of value) {
        const owner = only(v);
        if (owner === null) {
          out.push(walk(v));
          continue;
        }
        out.push(v);
        for (const c of copies.get(owner) ?? []) added.push(rename(v, c.swaps, c.pidOffset));
      }
      return [...out, ...added];
    }
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      const added: [string, unknown][] = [];
      for (const [k, v] of Object.entries(value)) {
        const owner = only(k);
        if (owner === null) {
          out[k] = walk(v);
          continue;
        }
        out[k] = v;
        for (const c of copies.get(owner) ?? []) {
          added.push([swap(k, c.swaps), rename(v, c.swaps, c.pidOffset, k)]);
        }
      }
      return { ...out, ...Object.fromEntries(added) };
    }
    return value;
  };

  const result = walk(observed) as Observed;
  // The state file holds the hash of the bytes last written to each file: a copied file has other bytes.
  for (const [path, hash] of Object.entries(result.state.written)) {
    const to = only(path);
    if (to === null || Number(to.slice('agent'.length)) < n) continue;
    const from = agentName(Number(to.slice('agent'.length)) % n);
    const before = observed.files[path.split(to).join(from)]?.content;
    const after = result.files[path]?.content;
    if (before != null && after != null && hash === sha256(before))
      result.state.written[path] = sha256(after);
  }
  return result;
}
