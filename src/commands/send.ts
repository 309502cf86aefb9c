/**
 * `fleet send AGENT [MESSAGE | -] [--verify] [--wait] [--force]`: type a prompt into an agent's pane as one paste
 * (newlines and any characters arrive as they are), then submit it. Refuses an agent waiting for a permission
 * answer (the text would answer its dialog) unless --force, and waits (within --timeout) for a runtime that is
 * still starting to say it can take input, typing nothing if it never does. `--verify` trusts only the runtime's own word: its
 * heartbeat moved to busy at or after the send. `--wait` then waits until it is idle again.
 *
 * An agent its budget pauses (docs/spend.md, "Budgets") is refused with the budget's reason unless --force.
 *
 * Runtimes that report no state (a stub, an operator's own `command`) get a best effort, said as such: the screen
 * is read instead, and only "the text still sits on the last line" counts as a failure.
 */
import { text as readStream } from 'node:stream/consumers';
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import {
  agentTarget,
  writeJournal,
  paneUnavailable,
  pasteMessage,
  readHeartbeat,
  sleep,
  tmux,
  type VerbContext,
} from '../engine/agent-control.js';
import { lockWhenReady } from '../engine/ready-wait.js';
import { judgeAck, sendRefusal, type AckVerdict } from '../engine/verbs.js';
import { budgetPause } from '../engine/budgets.js';

export interface SendOptions extends GlobalOptions {
  verify: boolean;
  wait: boolean;
  force: boolean;
  timeout: string;
}

const POLL_MS = 200;

async function messageFrom(arg: string | undefined): Promise<string> {
  let text: string;
  if (arg === undefined || arg === '-') {
    if (arg === undefined && process.stdin.isTTY)
      throw new UserError('give the message as an argument, or `-` to read it from stdin');
    text = await readStream(process.stdin);
  } else text = arg;
  // A trailing newline (`echo hi | fleet send a -`) is not part of the prompt: Enter submits it.
  text = text.replace(/\n+$/, '');
  if (text.trim() === '') throw new UserError('the message is empty: nothing to send');
  return text;
}

export async function sendCommand(
  agentName: string,
  messageArg: string | undefined,
  o: SendOptions,
): Promise<number> {
  const timeoutSec = Number(o.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0)
    throw new UserError(`--timeout must be a positive number of seconds, got "${o.timeout}"`);
  const message = await messageFrom(messageArg);
  const paused = o.force ? null : await budgetPause(o, agentName);
  if (paused !== null) {
    process.stderr.write(`fleet: ${agentName} is ${paused}; nothing sent (use --force to send anyway)\n`);
    return 1;
  }
  const sent = await typeUnderLock(agentName, message, o, timeoutSec);
  if (typeof sent === 'number') return sent;
  if (!o.verify && !o.wait) return 0;
  const picked = sent.ctx.agents[0];
  if (picked === undefined) return 1;
  const name = picked.agent.name;
  if (picked.status.state === null)
    return bestEffort(sent.ctx, picked.agent.socketName, name, message, o.wait);
  const verified = await verifyAck(sent, name, timeoutSec);
  if (verified !== 0 || !o.wait) return verified;
  return waitIdle(sent.ctx, name);
}

interface Sent {
  ctx: VerbContext;
  /** The agent's heartbeat before the paste, and when it was sent (unix s): what the runtime's word is judged by. */
  before: Awaited<ReturnType<typeof readHeartbeat>>;
  sentAtSec: number;
}

/**
 * The lock only while checking and typing: a reconcile must not restart the agent under the paste, but a long
 * --wait must not hold every reconcile back. A runtime still starting is waited for (within --timeout), never
 * typed into: its keys would be lost or left unsent (src/runtimes/ready.ts). An exit code when nothing was sent.
 */
async function typeUnderLock(
  agentName: string,
  message: string,
  o: SendOptions,
  timeoutSec: number,
): Promise<Sent | number> {
  const command = `fleet send ${agentName}`;
  const started = new Date();
  const ready = await lockWhenReady(o, [agentName], command, timeoutSec * 1000);
  try {
    const ctx = ready.ctx;
    const picked = ctx.agents[0];
    if (picked === undefined) throw new UserError(`no agent named "${agentName}"`);
    const { agent, status } = picked;
    const notReady = ready.notReady.get(agent.name);
    const why =
      paneUnavailable(status) ??
      (notReady === undefined ? null : `${notReady}; nothing sent (waited ${timeoutSec}s, --timeout)`) ??
      sendRefusal(agent.name, status.state, o.force);
    if (why !== null) {
      process.stderr.write(`fleet: ${why}\n`);
      return 1;
    }
    const before = await readHeartbeat(ctx.paths, agent.name);
    const sentAtSec = Math.floor(Date.now() / 1000);
    try {
      await pasteMessage(ctx.runner, agent.socketName, agent.name, message);
    } catch (error) {
      const text = (error as Error).message.split('\n')[0] ?? '';
      await writeJournal(ctx.paths, command, started, [
        {
          kind: 'send',
          target: agent.name,
          message: `could not send to ${agent.name}`,
          reason: 'asked by the operator',
          outcome: 'failed',
          error: text,
        },
      ]);
      throw new UserError(`could not send to ${agent.name}: ${text}`, 1, { cause: error });
    }
    // The journal says that something was sent and how much, never what: prompts can carry anything.
    await writeJournal(ctx.paths, command, started, [
      {
        kind: 'send',
        target: agent.name,
        message: `sent ${message.length} characters to ${agent.name}`,
        reason: 'asked by the operator',
        outcome: 'done',
      },
    ]);
    process.stdout.write(`sent ${message.length} characters to ${agent.name}\n`);
    return { ctx, before, sentAtSec };
  } finally {
    await ready.lock.release();
  }
}

/** --verify: the runtime's own acknowledgement, its heartbeat moved to busy at or after the send. */
async function verifyAck(sent: Sent, name: string, timeoutSec: number): Promise<number> {
  const deadline = Date.now() + timeoutSec * 1000;
  let verdict: AckVerdict;
  for (;;) {
    const now = await readHeartbeat(sent.ctx.paths, name);
    verdict = judgeAck(name, sent.before?.state ?? null, now?.state ?? null, sent.sentAtSec);
    if (verdict.acknowledged || verdict.settled || Date.now() >= deadline) break;
    await sleep(POLL_MS);
  }
  if (!verdict.acknowledged) {
    process.stderr.write(`fleet: not verified: ${verdict.reason}\n`);
    return 1;
  }
  process.stdout.write(`${verdict.detail}\n`);
  return 0;
}

/** --wait: until the runtime says idle again; waiting for a permission answer or an exit ends it with 1. */
async function waitIdle(ctx: VerbContext, name: string): Promise<number> {
  for (;;) {
    const now = (await readHeartbeat(ctx.paths, name))?.state ?? null;
    if (now?.state === 'idle') {
      process.stdout.write(`${name} is idle again\n`);
      return 0;
    }
    if (now?.state === 'waiting') {
      process.stderr.write(`fleet: ${name} is waiting for a permission answer (${now.event})\n`);
      return 1;
    }
    if (now?.state === 'exited') {
      process.stderr.write(`fleet: ${name} exited before it was idle again\n`);
      return 1;
    }
    await sleep(POLL_MS);
  }
}

/**
 * No state signal: read the screen a moment after Enter. Text still sitting on the pane's last non-empty line was
 * not taken; anything else is reported as sent, labelled best effort. --wait cannot be honoured.
 */
async function bestEffort(
  ctx: VerbContext,
  socketName: string,
  name: string,
  message: string,
  wait: boolean,
): Promise<number> {
  await sleep(1000);
  const screen = await tmux(ctx.runner, socketName, ['capture-pane', '-p', '-J', '-t', agentTarget(name)]);
  const last =
    screen.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .at(-1) ?? '';
  const tail = message.split('\n').at(-1)?.trim() ?? '';
  if (tail !== '' && last.includes(tail)) {
    process.stderr.write(
      `fleet: not verified (best effort: ${name}'s runtime reports no state): the text still sits on its last screen line\n`,
    );
    return 1;
  }
  process.stdout.write(
    `best effort: ${name}'s runtime reports no state; the text left its input line, nothing more is known\n`,
  );
  if (wait) process.stderr.write(`fleet: --wait is not possible for ${name}: its runtime reports no state\n`);
  return wait ? 1 : 0;
}
