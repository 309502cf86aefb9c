import { startBed } from './bed-core.js';
import { existsSync } from 'node:fs';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const { bed: b, stop } = await startBed(['claude', 'codex', 'pi', 'opencode']);
const agents = [
  { name: 'cc0', runtime: 'claude' as const },
  { name: 'cx0', runtime: 'codex' as const },
  { name: 'pi0', runtime: 'pi' as const },
  { name: 'oc0', runtime: 'opencode' as const },
];
async function stopTimed(n: string) {
  const t0 = Date.now();
  const rr = await b.sb.run(['systemctl', '--user', 'stop', `mosaic-agent@${n}.service`], { reject: false, timeoutMs: 60000 });
  console.log(n, 'stop ms', Date.now() - t0, rr.exitCode, JSON.stringify(b.heartbeat(n)));
}
try {
  await b.setup(agents, "runtimes:\n  claude:\n    args: ['--permission-mode', 'default']");
  const r = await b.fleet('reconcile');
  console.log('reconcile', r.code, r.stderr);
  for (const a of agents) if (a.name !== 'oc0') await b.waitState(a.name, 'idle', 90_000);
  await sleep(8000); // opencode's plugin install
  // half-typed input
  for (const a of agents) await b.keys(a.name, '-l', 'half typed words');
  await sleep(1500);
  for (const a of agents) console.log(a.name, (await b.capture(a.name)).split('\n').filter((l) => l.includes('half')).join(' | '));
  for (const a of agents) await stopTimed(a.name);
  for (const a of agents) await b.sb.run(['systemctl', '--user', 'start', `mosaic-agent@${a.name}.service`], { reject: false, timeoutMs: 60000 });
  for (const a of agents) if (a.name !== 'oc0') await b.waitState(a.name, 'idle', 90_000);
  console.log('--- claude waiting dialog');
  b.server.on({ match: 'fleet-tool-probe', toolCall: { name: 'Bash', input: { command: 'touch probe-file' } } });
  await b.type('cc0', 'fleet-tool-probe: make a file');
  await b.waitState('cc0', 'waiting', 30_000);
  await stopTimed('cc0');
  console.log('probe file exists?', existsSync(b.workDir('cc0') + '/probe-file'));
  console.log('--- busy held turns');
  for (const a of agents) {
    b.server.on({ match: `hold-${a.name}`, holdMs: 30000, text: 'held' });
  }
  await b.sb.run(['systemctl', '--user', 'start', `mosaic-agent@cc0.service`], { reject: false, timeoutMs: 60000 });
  await b.waitState('cc0', 'idle', 90_000);
  for (const a of agents) await b.type(a.name, `hold-${a.name}: wait`);
  await sleep(3000);
  for (const a of agents) console.log(a.name, 'state', b.heartbeat(a.name).state);
  for (const a of agents) await stopTimed(a.name);
  for (const a of agents) console.log(a.name, 'resume args', b.heartbeat(a.name).session, b.heartbeat(a.name).transcript);
} finally {
  await stop();
}
