/**
 * `fleet tail AGENT [-n N] [--follow] [--screen]`: what an agent said lately, read-only. A runtime whose adapter
 * reads a transcript it names in the heartbeat (Claude Code: a full-screen TUI whose screen says little) shows its last N user and
 * assistant messages; any other agent shows the last N lines of its pane (`capture-pane -J`, history included).
 */
import { readFile } from '../fs-async.js';
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import {
  agentTarget,
  paneUnavailable,
  readHeartbeat,
  sleep,
  tmux,
  verbContext,
  type VerbContext,
} from '../engine/agent-control.js';
import { heartbeatKeys } from '../base/heartbeat.js';
import { appendedLines, renderMessages } from '../engine/verbs.js';
import type { TranscriptReader } from '../runtimes/adapter.js';
import { lastMessagesReader } from '../runtimes/index.js';

export interface TailOptions extends GlobalOptions {
  lines?: string;
  follow: boolean;
  screen: boolean;
}

const FOLLOW_MS = 1000;
const DEFAULT_MESSAGES = 10;
const DEFAULT_LINES = 50;

function count(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`-n must be a positive whole number, got "${raw}"`);
  return n;
}

export async function tailCommand(agentName: string, o: TailOptions): Promise<number> {
  const ctx = await verbContext(o, [agentName]);
  const picked = ctx.agents[0];
  if (picked === undefined) throw new UserError(`no agent named "${agentName}"`);
  const { agent, runtime, status } = picked;
  const reader = o.screen || runtime === undefined ? null : lastMessagesReader(runtime);
  if (reader !== null) {
    const hb = await readHeartbeat(ctx.paths, agent.name);
    const transcript = hb === null ? null : reader.locate(heartbeatKeys(hb.text));
    if (transcript !== null)
      return tailTranscript(reader, transcript, count(o.lines, DEFAULT_MESSAGES), o.follow);
    process.stderr.write(`fleet: ${agent.name} names no transcript yet: showing its screen\n`);
  }
  const why = paneUnavailable(status);
  if (why !== null) throw new UserError(why);
  return tailScreen(ctx, agent.socketName, agent.name, count(o.lines, DEFAULT_LINES), o.follow);
}

async function readTranscript(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read the transcript ${path}: ${(error as Error).message}`, 1, {
      cause: error,
    });
  }
}

async function tailTranscript(
  reader: TranscriptReader,
  path: string,
  n: number,
  follow: boolean,
): Promise<number> {
  let messages = reader.messages(await readTranscript(path));
  process.stdout.write(renderMessages(messages.slice(-n)));
  let shown = messages.length;
  while (follow) {
    await sleep(FOLLOW_MS);
    messages = reader.messages(await readTranscript(path));
    if (messages.length > shown) process.stdout.write(`\n${renderMessages(messages.slice(shown))}`);
    shown = messages.length;
  }
  return 0;
}

async function capture(ctx: VerbContext, socket: string, name: string, n: number): Promise<string[]> {
  const r = await tmux(ctx.runner, socket, [
    'capture-pane',
    '-p',
    '-J',
    '-S',
    `-${n}`,
    '-t',
    agentTarget(name),
  ]);
  const lines = r.stdout.replace(/\n$/, '').split('\n');
  let end = lines.length;
  while (end > 0 && (lines[end - 1] ?? '').trim() === '') end--;
  return lines.slice(0, end);
}

async function tailScreen(
  ctx: VerbContext,
  socket: string,
  name: string,
  n: number,
  follow: boolean,
): Promise<number> {
  let prev = await capture(ctx, socket, name, n);
  const first = prev.slice(-n);
  if (first.length > 0) process.stdout.write(`${first.join('\n')}\n`);
  while (follow) {
    await sleep(FOLLOW_MS);
    const next = await capture(ctx, socket, name, n);
    const added = appendedLines(prev, next);
    if (added.length > 0) process.stdout.write(`${added.join('\n')}\n`);
    prev = next;
  }
  return 0;
}
