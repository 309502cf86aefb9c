// The seed's `fleet ps`, as a whole process, for bench/run.ts to time beside `fleet ps --json`.
//
//   node bench/seed-ps.mjs ROSTER.yaml
//
// What the seed did: read the roster, then for each agent, one after another, ask systemd whether its unit is
// active and tmux whether its session exists (two spawns per agent, through execa), and print a JSON list.
// Plain JavaScript run by plain `node`, so no compile step is timed that the seed did not have either.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { execa } from 'execa';
import { parse } from 'yaml';

const [rosterFile] = process.argv.slice(2);
if (rosterFile === undefined) {
  process.stderr.write('usage: node bench/seed-ps.mjs ROSTER.yaml\n');
  process.exit(1);
}
const roster = parse(await readFile(rosterFile, 'utf8'));
const socket = roster?.tmux?.socket_name ?? '';
const socketArgs = socket === '' ? [] : ['-L', socket];

const rows = [];
for (const agent of roster?.agents ?? []) {
  const unit = `mosaic-agent@${agent.name}.service`;
  const active = await execa('systemctl', ['--user', 'is-active', unit], { reject: false });
  const session = await execa('tmux', [...socketArgs, 'has-session', '-t', `=${agent.name}`], {
    reject: false,
    env: { TMUX: undefined },
  });
  rows.push({
    name: agent.name,
    runtime: agent.runtime,
    unit,
    active: active.stdout.trim(),
    session: session.exitCode === 0,
  });
}
process.stdout.write(`${JSON.stringify(rows)}\n`);
