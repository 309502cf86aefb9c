/**
 * Invalid manifests, table-driven. Each case is one fleet (one or more files); the test asserts what the
 * operator sees: exit code 1, and exactly the expected diagnostics — file, line, and the gist of the message —
 * in FILE:LINE:COL order, with no stack trace. Every case runs through the real `validateCommand`; the cases
 * marked `cli` also run through the built binary (`node bin/fleet.js validate`) with relative paths.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/errors.js';
import { loadDesired } from '../../src/manifest/load.js';
import {
  CTX,
  STACK_TRACE,
  assertFreshBuild,
  diagnosticLines,
  runCli,
  validateInProcess,
  writeManifests,
} from './helpers.js';

/** [file, line, message pattern] */
type Expected = [string, number, RegExp];

interface Case {
  name: string;
  files: Record<string, string>;
  expected: Expected[];
  /** Also run through the built CLI. */
  cli?: boolean;
}

const AGENT = 'agents:\n  - name: a1\n    runtime: claude\n';

const cases: Case[] = [
  // --- YAML itself --------------------------------------------------------------------------------------------
  {
    name: 'unclosed flow sequence',
    files: { 'r.yaml': 'version: 1\nagents: [\n  {name: a1, runtime: claude}\n' },
    expected: [['r.yaml', 4, /YAML syntax error/]],
    cli: true,
  },
  {
    name: 'every YAML error in a file is reported, each at its line',
    files: { 'r.yaml': 'version: 1\nversion: 1\nagents:\n  - name: a1\n    runtime: claude\nx: : y\n' },
    expected: [
      ['r.yaml', 2, /duplicate key "version"/],
      ['r.yaml', 6, /YAML syntax error/],
    ],
  },
  {
    name: 'duplicate top-level key',
    files: { 'r.yaml': `version: 1\n${AGENT}version: 1\n` },
    expected: [['r.yaml', 5, /duplicate key "version"/]],
    cli: true,
  },
  {
    name: 'duplicate key inside an agent',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    name: a2\n' },
    expected: [['r.yaml', 5, /duplicate key "name"/]],
  },
  {
    name: 'tab indentation',
    files: { 'r.yaml': 'version: 1\nagents:\n\t- name: a1\n' },
    expected: [['r.yaml', 3, /YAML syntax error.*tab/i]],
  },
  {
    name: 'two YAML documents in one file',
    files: { 'r.yaml': `version: 1\n${AGENT}---\nversion: 1\n` },
    expected: [['r.yaml', 5, /a manifest is one YAML document, but this file has several/]],
  },
  {
    name: 'custom tag',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: !secret a1\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /Unresolved tag/]],
  },
  // --- schema: shape and types -------------------------------------------------------------------------------
  {
    name: 'empty file',
    files: { 'r.yaml': '# nothing yet\n' },
    expected: [['r.yaml', 1, /must be a mapping starting with "version: 1" \(got nothing\)/]],
    cli: true,
  },
  {
    name: 'top level is a list',
    files: { 'r.yaml': '- name: a1\n  runtime: claude\n' },
    expected: [['r.yaml', 1, /must be a mapping .*got a list/]],
  },
  {
    name: 'version missing',
    files: { 'r.yaml': `transport: tmux\n${AGENT}` },
    expected: [['r.yaml', 1, /missing the required key "version"/]],
  },
  {
    name: 'version 2',
    files: { 'r.yaml': `version: 2\n${AGENT}` },
    expected: [['r.yaml', 1, /version must be 1 \(got number 2\)/]],
    cli: true,
  },
  {
    name: 'version as a string',
    files: { 'r.yaml': `version: "1"\n${AGENT}` },
    expected: [['r.yaml', 1, /version must be 1 \(got string "1"\)/]],
  },
  {
    name: 'unknown transport',
    files: { 'r.yaml': `version: 1\ntransport: screen\n${AGENT}` },
    expected: [['r.yaml', 2, /transport must be one of: tmux/]],
  },
  {
    name: 'unknown top-level key (typo) points at the key and suggests',
    files: { 'r.yaml': 'version: 1\nagent:\n  - name: a1\n    runtime: claude\n' },
    expected: [['r.yaml', 2, /unknown key "agent" in the manifest; did you mean "agents"\?/]],
    cli: true,
  },
  {
    name: 'unknown key in tmux',
    files: { 'r.yaml': `version: 1\ntmux:\n  holder_session: _holder\n  socket: x\n${AGENT}` },
    expected: [['r.yaml', 4, /unknown key "socket" in tmux/]],
  },
  {
    name: 'unknown key in defaults',
    files: { 'r.yaml': `version: 1\ndefaults:\n  workdir: /srv\n${AGENT}` },
    expected: [['r.yaml', 3, /unknown key "workdir" in defaults/]],
  },
  {
    name: 'unknown key in defaults.heartbeat',
    files: { 'r.yaml': `version: 1\ndefaults:\n  heartbeat:\n    stale_after: 30\n${AGENT}` },
    expected: [['r.yaml', 4, /unknown key "stale_after" in defaults.heartbeat/]],
  },
  {
    name: 'unknown key in a runtime',
    files: { 'r.yaml': `version: 1\nruntimes:\n  mine:\n    cmd: /bin/mine\n${AGENT}` },
    expected: [['r.yaml', 4, /unknown key "cmd" in runtimes.mine/]],
  },
  {
    name: 'unknown key in reconcile',
    files: { 'r.yaml': `version: 1\nreconcile:\n  mode: timer\n  every: 60\n${AGENT}` },
    expected: [['r.yaml', 4, /unknown key "every" in reconcile/]],
  },
  {
    name: 'unknown key in an agent names the agent',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    modelhint: opus\n' },
    expected: [['r.yaml', 5, /unknown key "modelhint" in agent "a1"; did you mean "model_hint"\?/]],
    cli: true,
  },
  {
    name: 'unknown key in an agent heartbeat',
    files: {
      'r.yaml':
        'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    heartbeat:\n      respawn: true\n',
    },
    expected: [['r.yaml', 6, /unknown key "respawn" in agent "a1": heartbeat/]],
  },
  {
    name: 'agents is not a list',
    files: { 'r.yaml': 'version: 1\nagents:\n  a1:\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /agents must be a list \(got a mapping\)/]],
  },
  {
    name: 'agent without a runtime',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a1\n    class: coder\n' },
    expected: [['r.yaml', 3, /agent "a1" is missing the required key "runtime"/]],
  },
  {
    name: 'agent without a name',
    files: { 'r.yaml': 'version: 1\nagents:\n  - runtime: claude\n' },
    expected: [['r.yaml', 3, /agents\[0\] is missing the required key "name"/]],
  },
  {
    name: 'enabled: yes is a string in YAML 1.2',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    enabled: yes\n' },
    expected: [['r.yaml', 5, /enabled must be true or false \(got string "yes"\)/]],
  },
  {
    name: 'heartbeat seconds as a string, and zero',
    files: {
      'r.yaml':
        'version: 1\ndefaults:\n  heartbeat:\n    stale_after_seconds: "90"\n    grace_seconds: -1\nagents: []\n',
    },
    expected: [
      ['r.yaml', 4, /defaults.heartbeat.stale_after_seconds must be an integer \(got string "90"\)/],
      ['r.yaml', 5, /grace_seconds must be >= 0/],
    ],
  },
  {
    name: 'reconcile mode not one of none|timer|watch',
    files: { 'r.yaml': 'version: 1\nreconcile:\n  mode: cron\n' },
    expected: [['r.yaml', 3, /reconcile.mode must be one of: none, timer, watch \(got string "cron"\)/]],
  },
  {
    name: 'reconcile interval too short',
    files: { 'r.yaml': 'version: 1\nreconcile:\n  mode: timer\n  interval_seconds: 1\n' },
    expected: [['r.yaml', 4, /interval_seconds must be >= 10/]],
  },
  {
    name: 'empty runtime command',
    files: { 'r.yaml': `version: 1\nruntimes:\n  mine:\n    command: ""\n${AGENT}` },
    expected: [['r.yaml', 4, /runtimes.mine.command must not be empty/]],
  },
  // --- aliases ---------------------------------------------------------------------------------------------------
  {
    name: 'socket_name and socketName both set',
    files: { 'r.yaml': `version: 1\ntmux:\n  socket_name: a\n  socketName: a\n${AGENT}` },
    expected: [['r.yaml', 4, /both "socket_name" and its alias "socketName" \(the other at .*r.yaml:3:3\)/]],
    cli: true,
  },
  {
    name: 'holderSession and holder_session both set',
    files: { 'r.yaml': `version: 1\ntmux:\n  holderSession: h\n  holder_session: h\n${AGENT}` },
    expected: [['r.yaml', 4, /both "holder_session" and its alias "holderSession"/]],
  },
  // --- names ------------------------------------------------------------------------------------------------------
  {
    name: 'duplicate agent in one file',
    files: { 'r.yaml': `version: 1\n${AGENT}  - name: a1\n    runtime: codex\n` },
    expected: [['r.yaml', 5, /duplicate agent "a1" \(also defined at .*r.yaml:3:11\)/]],
  },
  {
    name: 'duplicate agent across two files names both places',
    files: {
      'one.yaml': `version: 1\n${AGENT}`,
      'two.yaml':
        'version: 1\ntmux:\n  socket_name: other\nagents:\n  - name: a2\n    runtime: pi\n  - name: a1\n    runtime: pi\n',
    },
    expected: [['two.yaml', 7, /duplicate agent "a1" \(also defined at .*one.yaml:3:11\)/]],
    cli: true,
  },
  {
    name: 'path traversal in an agent name',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: ../x\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /agent name "..\/x" contains "\."/]],
    cli: true,
  },
  {
    name: 'space in an agent name',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a b\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /agent name "a b" contains a space/]],
  },
  {
    name: 'dot in an agent name',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a.b\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /agent name "a.b" contains "\."/]],
  },
  {
    name: 'slash and colon in agent names',
    files: {
      'r.yaml': 'version: 1\nagents:\n  - name: a/b\n    runtime: claude\n  - name: "a:b"\n    runtime: pi\n',
    },
    expected: [
      ['r.yaml', 3, /agent name "a\/b" contains "\/"/],
      ['r.yaml', 5, /agent name "a:b" contains ":"/],
    ],
  },
  {
    name: 'agent name starting with a dash (option injection)',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: -rf\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /agent name "-rf" must start with a letter or digit/]],
  },
  {
    name: 'agent name longer than 63 characters',
    files: { 'r.yaml': `version: 1\nagents:\n  - name: ${'x'.repeat(64)}\n    runtime: claude\n` },
    expected: [['r.yaml', 3, /is longer than 63 characters/]],
  },
  {
    name: 'empty agent name',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: ""\n    runtime: claude\n' },
    expected: [['r.yaml', 3, /agent name "" is empty/]],
  },
  {
    name: 'agent named like its holder session',
    files: {
      'r.yaml': 'version: 1\ntmux:\n  holder_session: keep\nagents:\n  - name: keep\n    runtime: claude\n',
    },
    expected: [['r.yaml', 5, /agent "keep" has the name of its socket's holder session/]],
  },
  {
    name: 'unsafe holder session',
    files: { 'r.yaml': `version: 1\ntmux:\n  holder_session: hold.er\n${AGENT}` },
    expected: [['r.yaml', 3, /tmux.holder_session "hold.er" contains "\."/]],
  },
  {
    name: 'bad socket name (dot)',
    files: { 'r.yaml': `version: 1\ntmux:\n  socket_name: my.sock\n${AGENT}` },
    expected: [['r.yaml', 3, /tmux.socket_name "my.sock" is not a safe tmux socket name/]],
    cli: true,
  },
  {
    name: 'bad socket name (path) via the alias',
    files: { 'r.yaml': `version: 1\ntmux:\n  socketName: ../../tmp/s\n${AGENT}` },
    expected: [['r.yaml', 3, /tmux.socketName "..\/..\/tmp\/s" is not a safe tmux socket name/]],
  },
  {
    name: 'unsafe runtime name',
    files: { 'r.yaml': `version: 1\nruntimes:\n  my.rt:\n    command: /bin/rt\n${AGENT}` },
    expected: [['r.yaml', 3, /runtime name "my.rt" contains "\."/]],
  },
  // --- characters that break units, env files, shells -------------------------------------------------------------
  {
    name: 'newline in a value',
    files: {
      'r.yaml':
        'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    class: "coder\\nExecStart=/bin/evil"\n',
    },
    expected: [['r.yaml', 5, /agent "a1": class contains a newline/]],
    cli: true,
  },
  {
    name: 'multi-line block scalar in command',
    files: {
      'r.yaml':
        'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    command: |\n      claude\n      rm -rf ~\n',
    },
    expected: [['r.yaml', 5, /agent "a1": command contains a newline/]],
  },
  {
    name: 'carriage return and NUL',
    files: {
      'r.yaml':
        'version: 1\ntenant_id: "acme\\r"\nagents:\n  - name: a1\n    runtime: claude\n    command: "claude\\0"\n',
    },
    expected: [
      ['r.yaml', 2, /tenant_id contains a carriage return/],
      ['r.yaml', 6, /command contains a NUL byte/],
    ],
  },
  {
    name: 'tab in model_hint',
    files: {
      'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    model_hint: "opus\\t--yolo"\n',
    },
    expected: [['r.yaml', 5, /model_hint contains a tab/]],
  },
  {
    name: 'command substitution in model_hint',
    files: {
      'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    model_hint: $(curl evil)\n',
    },
    expected: [
      ['r.yaml', 5, /agent "a1": model_hint "\$\(curl evil\)" contains the shell metacharacter "\$"/],
    ],
    cli: true,
  },
  {
    name: 'semicolon in host, backtick in tenant_id, glob in class',
    files: {
      'r.yaml':
        'version: 1\ntenant_id: "`id`"\nagents:\n  - name: a1\n    runtime: claude\n    host: "h1;reboot"\n    class: "coder*"\n',
    },
    expected: [
      ['r.yaml', 2, /tenant_id "`id`" contains the shell metacharacter "`"/],
      ['r.yaml', 6, /host "h1;reboot" contains the shell metacharacter ";"/],
      ['r.yaml', 7, /class "coder\*" contains the shell metacharacter "\*"/],
    ],
  },
  {
    name: 'metacharacter in the runtime value',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: "claude|sh"\n' },
    expected: [['r.yaml', 4, /runtime "claude\|sh" contains the shell metacharacter "\|"/]],
  },
  {
    name: 'variable in working_directory',
    files: {
      'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    working_directory: /srv/$USER\n',
    },
    expected: [['r.yaml', 5, /working_directory "\/srv\/\$USER" contains the shell metacharacter "\$"/]],
  },
  {
    name: 'relative working_directory',
    files: {
      'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    working_directory: src/app\n',
    },
    expected: [['r.yaml', 5, /working_directory "src\/app" must be absolute or start with ~\//]],
    cli: true,
  },
  {
    name: 'relative defaults.working_directory',
    files: { 'r.yaml': `version: 1\ndefaults:\n  working_directory: ./work\n${AGENT}` },
    expected: [['r.yaml', 3, /defaults.working_directory ".\/work" must be absolute/]],
  },
  {
    name: "another user's home (~bob)",
    files: {
      'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: claude\n    working_directory: ~bob/src\n',
    },
    expected: [['r.yaml', 5, /only "~" and "~\/\.\.\." \(your own home\) are expanded/]],
  },
  // --- fleet-wide rules ---------------------------------------------------------------------------------------------
  {
    name: 'unknown runtime',
    files: { 'r.yaml': 'version: 1\nagents:\n  - name: a1\n    runtime: gpt\n' },
    expected: [['r.yaml', 4, /unknown runtime "gpt" \(known: claude, codex, opencode, pi, stub;/]],
    cli: true,
  },
  {
    name: 'reconcile set in two files',
    files: {
      'a.yaml': 'version: 1\nreconcile:\n  mode: timer\n',
      'b.yaml': 'version: 1\nagents: []\nreconcile:\n  mode: watch\n',
    },
    expected: [['b.yaml', 3, /reconcile is also set at .*a.yaml:2:1/]],
    cli: true,
  },
  {
    name: 'runtime defined differently in two files',
    files: {
      'a.yaml': 'version: 1\nruntimes:\n  mine:\n    command: /opt/a\n',
      'b.yaml': 'version: 1\nruntimes:\n  mine:\n    command: /opt/b\n',
    },
    expected: [['b.yaml', 3, /runtime "mine" is defined differently at .*a.yaml:3:3/]],
  },
  {
    name: 'one socket, two holder sessions',
    files: {
      'a.yaml': `version: 1\ntmux:\n  socket_name: s1\n  holder_session: h1\n${AGENT}`,
      'b.yaml': 'version: 1\ntmux:\n  socket_name: s1\nagents:\n  - name: b1\n    runtime: pi\n',
      // No agents: puts no socket to use, so its holder cannot conflict.
      'c.yaml': 'version: 1\ntmux:\n  socket_name: s1\n  holder_session: h3\n',
    },
    expected: [['b.yaml', 2, /socket "s1" has holder session "h1" at .*a.yaml:4:19, but here "_holder"/]],
  },
  {
    name: 'problems in several files are all reported, sorted by file and line',
    files: {
      'a.yaml': 'version: 3\nagents:\n  - name: a.1\n    runtime: claude\n',
      'b.yaml': 'version: 1\nagents:\n  - name: b1\n    runtime: nope\n    bogus: 1\n',
    },
    expected: [
      ['a.yaml', 1, /version must be 1/],
      ['a.yaml', 3, /agent name "a.1"/],
      ['b.yaml', 4, /unknown runtime "nope"/],
      ['b.yaml', 5, /unknown key "bogus"/],
    ],
  },
  // --- parser limits (reliability.md, "Bad input changes nothing") --------------------------------------------
  {
    name: 'an alias inside the node it names (a cycle)',
    files: { 'r.yaml': 'version: 1\nagents: &a\n  - *a\n' },
    expected: [['r.yaml', 3, /alias \*a is inside the node &a it refers to \(an alias cycle\)/]],
    cli: true,
  },
  {
    name: 'a flow alias cycle in another key',
    files: { 'r.yaml': `version: 1\n${AGENT}tmux: &t {socket_name: *t}\n` },
    expected: [['r.yaml', 5, /alias \*t is inside the node &t/]],
  },
  {
    name: 'billion laughs: aliases that expand past the limit',
    files: {
      'r.yaml':
        'version: 1\n' +
        'a: &a [x, x, x, x, x, x, x, x, x, x]\n' +
        ['b', 'c', 'd', 'e', 'f']
          .map((k, i) => `${k}: &${k} [${`*${'abcdef'[i]}, `.repeat(9)}*${'abcdef'[i]}]\n`)
          .join(''),
    },
    expected: [['r.yaml', 6, /aliases here expand the manifest to more than 100000 values/]],
    cli: true,
  },
  {
    name: 'more than 100 aliases',
    files: { 'r.yaml': `version: 1\n${AGENT}x: &x 1\ny: [${'*x, '.repeat(100)}*x]\n` },
    expected: [['r.yaml', 6, /more than 100 aliases/]],
  },
  {
    name: 'flow nesting 100 000 deep',
    files: { 'r.yaml': `version: 1\n${AGENT}x: ${'['.repeat(100_000)}\n` },
    expected: [['r.yaml', 5, /nested more than 32 deep/]],
    cli: true,
  },
  {
    name: 'block nesting past the limit',
    files: {
      'r.yaml': `version: 1\n${AGENT}x:\n${Array.from({ length: 40 }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')}\n`,
    },
    expected: [['r.yaml', 37, /nested more than 32 deep/]],
  },
  {
    name: 'nesting past the limit only through an alias',
    files: {
      'r.yaml': `version: 1\n${AGENT}x: &x ${'['.repeat(20)}${']'.repeat(20)}\ny: ${'['.repeat(15)}*x${']'.repeat(15)}\n`,
    },
    expected: [['r.yaml', 6, /nested more than 32 deep/]],
  },
  {
    name: 'a mapping as a key',
    files: { 'r.yaml': `version: 1\n${AGENT}? [a, b]\n: 1\n` },
    expected: [['r.yaml', 5, /a key must be a plain value/]],
  },
  {
    name: 'a file over the size limit',
    files: { 'r.yaml': `version: 1\n${AGENT}description: "${'a'.repeat(300 * 1024)}"\n` },
    expected: [['r.yaml', 1, /the file is 301 KiB; a manifest may be at most 256 KiB/]],
    cli: true,
  },
  {
    name: 'one flow line of 120 000 values (under the size limit)',
    files: { 'r.yaml': `version: 1\n${AGENT}x: [${'1,'.repeat(120_000)}1]\n` },
    expected: [['r.yaml', 5, /more than 50000 YAML tokens/]],
    cli: true,
  },
  {
    name: 'thousands of problems: the first 50, then how many more',
    files: {
      'r.yaml': `version: 1\nagents:\n${Array.from({ length: 60 }, (_, i) => `  - {name: a${i}, runtime: nope}\n`).join('')}`,
    },
    expected: [
      ...Array.from({ length: 50 }, (_, i): Expected => ['r.yaml', 3 + i, /unknown runtime "nope"/]),
      ['r.yaml', 53, /and 10 more problems in this file \(only the first 50 are shown\)/],
    ],
  },
];

function check(
  diagnostics: { file: string; line: number; message: string }[],
  expected: Expected[],
  dir: string,
) {
  const actual = diagnostics.map(
    (d) => `${d.file.startsWith(dir) ? d.file.slice(dir.length + 1) : d.file}:${d.line}: ${d.message}`,
  );
  expect(actual, actual.join('\n')).toHaveLength(expected.length);
  expected.forEach(([file, line, pattern], i) => {
    expect(actual[i]).toMatch(
      new RegExp(`^${file.replace('.', '\\.')}:${line}: .*${pattern.source}`, pattern.flags),
    );
  });
}

describe('invalid manifests', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  describe.each(cases)('$name', (c) => {
    it('fleet validate: exit 1, each diagnostic at its file and line, no stack trace', async () => {
      const m = writeManifests(c.files);
      cleanup = m.cleanup;
      const paths = Object.keys(c.files).map((f) => join(m.dir, f));
      const r = await validateInProcess(paths);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(STACK_TRACE);
      check(diagnosticLines(r.stderr), c.expected, m.dir);
    });

    it('loadDesired: throws ManifestError with the same diagnostics', async () => {
      const m = writeManifests(c.files);
      cleanup = m.cleanup;
      const paths = Object.keys(c.files).map((f) => join(m.dir, f));
      const error = await loadDesired(paths, CTX).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ManifestError);
      expect((error as ManifestError).code).toBe(1);
      check((error as ManifestError).diagnostics, c.expected, m.dir);
    });
  });
});

describe('invalid manifests through the built CLI (node bin/fleet.js validate)', () => {
  beforeAll(() => assertFreshBuild());
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it.each(cases.filter((c) => c.cli === true))('$name', (c) => {
    const m = writeManifests(c.files);
    cleanup = m.cleanup;
    // Relative paths, as an operator types them: diagnostics must name the files the same way.
    const r = runCli(['validate', ...Object.keys(c.files)], m.dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    const lines = diagnosticLines(r.stderr);
    for (const d of lines) expect(Object.keys(c.files)).toContain(d.file);
    check(lines, c.expected, m.dir);
  });

  it('a missing path and an empty directory are diagnostics at PATH:1:1', () => {
    const m = writeManifests({ 'ok.yaml': `version: 1\n${AGENT}` });
    cleanup = m.cleanup;
    mkdirSync(join(m.dir, 'empty'));
    const r = runCli(['validate', 'ok.yaml', 'missing.yaml', 'empty'], m.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(diagnosticLines(r.stderr)).toEqual([
      { file: 'empty', line: 1, col: 1, message: 'no manifests (*.yaml, *.yml) in this directory' },
      { file: 'missing.yaml', line: 1, col: 1, message: 'cannot read manifests: no such file or directory' },
    ]);
  });

  it('with no paths and no manifests directory: one clear diagnostic, exit 1', () => {
    const m = writeManifests({});
    cleanup = m.cleanup;
    const r = runCli(['validate'], m.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(diagnosticLines(r.stderr)).toEqual([
      {
        file: join(m.dir, 'no-such-home', 'fleet'),
        line: 1,
        col: 1,
        message: 'cannot read manifests: no such file or directory',
      },
    ]);
  });
});
