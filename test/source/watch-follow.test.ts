/**
 * Watch mode's git source (src/engine/watch-sources.ts `LastGoodDesired.follow`), against a real repository: the
 * fetch happens at the start, at a resync and after a manifest change (or when none was made for the resync
 * interval), not for every event; a refusal is one `source` event, said once; a move is an event and a journal
 * entry with the commit.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createRunner, type Runner } from '../../src/exec.js';
import { LastGoodDesired } from '../../src/engine/watch-sources.js';
import { followSource } from '../../src/source/follow.js';
import { hostContext, resolvePaths, type FleetPaths } from '../../src/paths.js';
import { makeRemote, roster, type Remote } from '../helpers/remote.js';

let root: string;
let remote: Remote;
let paths: FleetPaths;
let events: { event: string; fields: Record<string, unknown> }[];
let runner: Runner;
const saved = { ...process.env };

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'fleet-watch-source-'));
  remote = makeRemote(root);
  Object.assign(process.env, remote.env);
  delete process.env.MOSAIC_SOURCE;
  paths = resolvePaths({ home: join(root, 'home') });
  mkdirSync(paths.stateDir, { recursive: true });
  writeFileSync(join(paths.manifests, 'source.yaml'), `version: 1\nsource: {git: "${remote.url}"}\n`);
  events = [];
  runner = createRunner();
});
afterEach(() => {
  process.env = { ...saved };
  rmSync(root, { recursive: true, force: true });
});

const fetches = () => runner.log.filter((c) => c.argv.includes('fetch')).length;
const named = (e: string) => events.filter((x) => x.event === e);

it('fetches at the resync rhythm, says a refusal once, and journals a move with its commit', async () => {
  const fleet = new LastGoodDesired(paths, (event, fields = {}) => events.push({ event, fields }));
  const c1 = remote.push({ 'roster.yaml': roster(['a1']) });
  await fleet.load('start');
  expect(fleet.source?.url).toBe(remote.url);
  expect(fleet.current).toBeNull();
  await fleet.follow('start', runner, 'fleet reconcile --watch', 30_000);
  expect(fleet.current?.agents.map((a) => a.name)).toEqual(['a1']);
  expect(fleet.sourceRun?.commit).toBe(c1);
  expect(fetches()).toBe(1);

  // An event's cycle within the interval converges to the checkout as it stands: no fetch.
  const c2 = remote.push({ 'roster.yaml': roster(['a1', 'a2']) });
  await fleet.follow('tmux-pane-died', runner, 'fleet reconcile --watch', 30_000);
  expect(fetches()).toBe(1);
  expect(fleet.current?.agents.map((a) => a.name)).toEqual(['a1']);
  await fleet.follow('resync', runner, 'fleet reconcile --watch', 30_000);
  expect(fetches()).toBe(2);
  expect(fleet.current?.agents.map((a) => a.name)).toEqual(['a1', 'a2']);
  expect(named('source-advanced').at(-1)?.fields).toMatchObject({ commit: c2, from: c1 });
  const journal = readFileSync(join(paths.stateDir, 'journal.jsonl'), 'utf8').trim().split('\n');
  expect(JSON.parse(journal.at(-1) ?? '{}')).toMatchObject({
    command: 'fleet reconcile --watch',
    source: { url: remote.url, ref: 'main', commit: c2 },
    actions: [{ kind: 'source', outcome: 'done' }],
  });

  // A force-push: one `source` event, the last good fleet kept; the next resync says nothing more.
  remote.forcePush({ 'roster.yaml': roster(['evil']) });
  await fleet.follow('resync', runner, 'fleet reconcile --watch', 30_000);
  await fleet.follow('resync', runner, 'fleet reconcile --watch', 30_000);
  expect(named('source').map((e) => String(e.fields.notice))).toEqual([
    expect.stringMatching(/history was rewritten.*refused; keeping/),
  ]);
  expect(fleet.current?.agents.map((a) => a.name)).toEqual(['a1', 'a2']);
  // No interval left: an event's cycle fetches too.
  await fleet.follow('heartbeat', runner, 'fleet reconcile --watch', 0);
  expect(fetches()).toBe(5);
});

it('a first fetch that fails leaves nothing to converge to, said once, and is retried', async () => {
  const fleet = new LastGoodDesired(paths, (event, fields = {}) => events.push({ event, fields }));
  remote.push({ 'roster.yaml': roster(['a1']) });
  remote.unreachable(true);
  await fleet.load('start');
  await fleet.follow('start', runner, 'fleet reconcile --watch', 30_000);
  await fleet.follow('resync', runner, 'fleet reconcile --watch', 30_000);
  expect(fleet.current).toBeNull();
  expect(named('source-failed')).toHaveLength(1);
  expect(String(named('source-failed')[0]?.fields.error)).toMatch(
    /source\.yaml:2:1: git source: cannot fetch/,
  );
  remote.unreachable(false);
  await fleet.follow('timer', runner, 'fleet reconcile --watch', 30_000);
  expect(fleet.current?.agents.map((a) => a.name)).toEqual(['a1']);
});

it('an event cycle follows a checkout another run moved (a `fleet reconcile` by hand, the timer), with no fetch', async () => {
  const fleet = new LastGoodDesired(paths, (event, fields = {}) => events.push({ event, fields }));
  const c1 = remote.push({ 'roster.yaml': roster(['a1@h1', 'a2@h1']) });
  await fleet.load('start');
  await fleet.follow('start', runner, 'fleet reconcile --watch', 30_000);
  expect(fleet.sourceRun?.commit).toBe(c1);
  // a2 moves to another host; a one-shot run (under the lock, like the watcher's cycles) takes the push.
  const c2 = remote.push({ 'roster.yaml': roster(['a1@h1', 'a2@h2']) });
  const settings = fleet.source;
  if (settings === null) throw new Error('no source');
  const other = await followSource(settings, paths.stateDir, hostContext(paths), createRunner(), 'apply');
  expect(other.commit).toBe(c2);
  // The watcher's next cycle, woken by an event, converges to that checkout, not to the fleet it read before
  // (which would still put a2 here, and start it again once the other run stopped it).
  const before = fetches();
  await fleet.follow('heartbeat', runner, 'fleet reconcile --watch', 30_000);
  expect(fetches()).toBe(before);
  expect(fleet.sourceRun?.commit).toBe(c2);
  expect(fleet.current?.agents.map((a) => `${a.name}@${a.host ?? ''}`)).toEqual(['a1@h1', 'a2@h2']);
  expect(named('source-followed').map((e) => e.fields)).toEqual([{ commit: c2, from: c1 }]);
  // Nothing more to follow: no event, no reading again.
  await fleet.follow('heartbeat', runner, 'fleet reconcile --watch', 30_000);
  expect(named('source-followed')).toHaveLength(1);
});
