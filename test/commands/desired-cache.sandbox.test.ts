/**
 * The parsed-manifest cache through the real CLI (src/manifest/cache.ts): `fleet reconcile` remembers the fleet,
 * the next `fleet ps` and `fleet reconcile` use it, and any write to the roster is seen at once.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runFleet } from '../helpers/cli.js';
import { uniqueSocket, writeRoster } from '../helpers/fleet.js';
import { describeSandbox } from '../sandbox.js';

describeSandbox('the parsed-manifest cache (CLI)', (sandbox) => {
  it('a reconcile remembers the fleet, the next runs read it, and an edit of the roster is seen at once', async () => {
    const sb = sandbox();
    const socket = uniqueSocket('cache');
    const fleet = (...args: string[]) => runFleet(sb.env, args, { logDir: sb.root });
    const text = (model: string) =>
      `version: 1\ntmux: {socket_name: ${socket}}\nagents:\n  - {name: c1, runtime: stub, model_hint: ${model}}\n`;
    const rosterPath = await writeRoster(sb, text('m1'));
    const model = async () => {
      const r = await fleet('ps', '--json');
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { agents: { name: string; model_hint?: string; model?: string }[] })
        .agents;
    };

    // `ps` and a dry run read, and never create it; a real reconcile writes it.
    expect((await fleet('reconcile', '--dry-run')).code).toBe(0);
    await model();
    const cache = join(sb.paths.stateDir, 'desired-cache.json');
    expect(() => readFileSync(cache)).toThrow();
    expect((await fleet('reconcile')).code).toBe(0);
    const entry = JSON.parse(readFileSync(cache, 'utf8')) as {
      key: string;
      desired: { agents: { name: string; modelHint: string }[] };
    };
    expect(entry.desired.agents.map((a) => a.modelHint)).toEqual(['m1']);

    // Proof that it is read: an entry with the same key but another model is what `fleet ps` believes.
    entry.desired.agents[0].modelHint = 'from-the-cache';
    writeFileSync(cache, JSON.stringify(entry));
    const dry = await fleet('reconcile', '--dry-run', '--json');
    expect(dry.stdout).toContain('from-the-cache');

    // The same size, the same text length: any write to the roster changes its ctime, and the cache is not used.
    writeFileSync(rosterPath, text('m2'));
    const after = await fleet('reconcile', '--dry-run', '--json');
    expect(after.stdout).not.toContain('from-the-cache');
    expect(after.stdout).toContain('m2');
    // The next reconcile remembers the new fleet.
    expect((await fleet('reconcile')).code).toBe(0);
    expect(
      (JSON.parse(readFileSync(cache, 'utf8')) as typeof entry).desired.agents.map((a) => a.modelHint),
    ).toEqual(['m2']);
  });
});
