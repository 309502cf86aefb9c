import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { parseEnvFile, quoteEnvValue } from '../../src/base/env-file.js';
import { envDigest, MANAGED_ENV_KEYS, renderEnvFile, ROSTER_COMMAND_MARKER } from '../../src/render/env.js';
import { agent, CTX, runtime } from './helpers.js';

const RUNTIMES = { pi: runtime('pi'), stub: runtime('stub', '/opt/mosaic/stub-agent.sh') };

/** The managed block exactly as the renderer writes it for the default test agent. */
const MANAGED_BLOCK = [
  'MOSAIC_AGENT_NAME=coder0',
  'MOSAIC_AGENT_RUNTIME=pi',
  'MOSAIC_AGENT_RUNTIME_COMMAND=pi',
  'MOSAIC_AGENT_MODEL=sonnet',
  'MOSAIC_AGENT_WORKDIR=/srv/work',
  'MOSAIC_TMUX_SOCKET=mosaic-fleet',
  'MOSAIC_HOME=/home/op/.config/mosaic',
  'MOSAIC_AGENT_STATE=none',
  'MOSAIC_AGENT_ARGS="--model sonnet"',
  'MOSAIC_AGENT_RESUME_ARGS=',
  'MOSAIC_AGENT_EXIT_KEYS=',
  'MOSAIC_AGENT_ENV=',
  'MOSAIC_ENV_DIGEST=<digest>',
].join('\n');

/** The digest line's value depends on every other entry; tests of the merge compare everything else exactly. */
function d(text: string): string {
  return text.replace(/^MOSAIC_ENV_DIGEST=[0-9a-f]{16}$/m, 'MOSAIC_ENV_DIGEST=<digest>');
}

describe('renderEnvFile: merging into the operator’s file', () => {
  it('keeps the operator’s MOSAIC_AGENT_COMMAND and comments while managed keys change (the seed’s case)', () => {
    const existing = [
      '# site note: this agent runs the python stub until pi is packaged',
      'MOSAIC_AGENT_NAME=coder0',
      'MOSAIC_AGENT_RUNTIME=pi',
      'MOSAIC_AGENT_MODEL=opus',
      'MOSAIC_AGENT_WORKDIR=/srv/old',
      'MOSAIC_TMUX_SOCKET=mosaic-factory',
      'MOSAIC_AGENT_COMMAND=python3 /opt/dogfood-agent.py',
      '',
    ].join('\n');

    const out = renderEnvFile(agent(), CTX, existing, RUNTIMES);

    expect(d(out)).toBe(
      [
        '# site note: this agent runs the python stub until pi is packaged',
        'MOSAIC_AGENT_NAME=coder0',
        'MOSAIC_AGENT_RUNTIME=pi',
        'MOSAIC_AGENT_MODEL=sonnet',
        'MOSAIC_AGENT_WORKDIR=/srv/work',
        'MOSAIC_TMUX_SOCKET=mosaic-fleet',
        'MOSAIC_AGENT_COMMAND=python3 /opt/dogfood-agent.py',
        'MOSAIC_AGENT_RUNTIME_COMMAND=pi',
        'MOSAIC_HOME=/home/op/.config/mosaic',
        'MOSAIC_AGENT_STATE=none',
        'MOSAIC_AGENT_ARGS="--model sonnet"',
        'MOSAIC_AGENT_RESUME_ARGS=',
        'MOSAIC_AGENT_EXIT_KEYS=',
        'MOSAIC_AGENT_ENV=',
        'MOSAIC_ENV_DIGEST=<digest>',
        '',
      ].join('\n'),
    );
    // What systemd will hand the unit: the operator's command survives, with its spaces.
    const env = parseEnvFile(out).entries;
    expect(env.get('MOSAIC_AGENT_COMMAND')).toBe('python3 /opt/dogfood-agent.py');
    expect(env.get('MOSAIC_AGENT_MODEL')).toBe('sonnet');
  });

  it('is byte-identical when rendered twice, and a merged file merges to itself', () => {
    const existing = 'FOO=1\n# note\n\nMOSAIC_AGENT_MODEL=old\nBAR="x y"\n';
    const once = renderEnvFile(agent(), CTX, existing, RUNTIMES);
    expect(renderEnvFile(agent(), CTX, existing, RUNTIMES)).toBe(once);
    expect(renderEnvFile(agent(), CTX, once, RUNTIMES)).toBe(once);

    const fresh = renderEnvFile(agent(), CTX, null, RUNTIMES);
    expect(renderEnvFile(agent(), CTX, fresh, RUNTIMES)).toBe(fresh);
    for (const text of [once, fresh]) {
      expect(text.endsWith('\n')).toBe(true);
      expect(text.endsWith('\n\n')).toBe(false);
    }
  });

  it('starts a new file with a header naming the managed keys, then the managed block', () => {
    const out = renderEnvFile(agent(), CTX, null, RUNTIMES);
    const comments = out.split('\n').filter((l) => l.startsWith('#'));
    for (const key of MANAGED_ENV_KEYS) expect(comments.join('\n')).toContain(key);
    expect(comments.join('\n')).toMatch(/other line is yours/);
    expect(d(out).endsWith(`${MANAGED_BLOCK}\n`)).toBe(true);
    // Without a roster "command" the reconciler does not write MOSAIC_AGENT_COMMAND: it is the operator's.
    expect(parseEnvFile(out).entries.has('MOSAIC_AGENT_COMMAND')).toBe(false);
  });

  it('writes the default socket as a bare empty value', () => {
    const out = renderEnvFile(agent({ socketName: '' }), CTX, 'MOSAIC_TMUX_SOCKET=mosaic-fleet\n', RUNTIMES);
    expect(out.split('\n')).toContain('MOSAIC_TMUX_SOCKET=');
    expect(out).not.toMatch(/MOSAIC_TMUX_SOCKET=['"]/);
    expect(parseEnvFile(out).entries.get('MOSAIC_TMUX_SOCKET')).toBe('');
    // No model hint: an empty model, also bare.
    expect(renderEnvFile(agent({ modelHint: null }), CTX, null).split('\n')).toContain('MOSAIC_AGENT_MODEL=');
  });

  it('keeps operator keys, comments and blank lines verbatim and in order', () => {
    const existing = [
      'EDITOR=vim',
      '  # indented note',
      '',
      "PROXY='http://proxy:3128'   ",
      'MOSAIC_AGENT_NAME=coder0',
      '; a semicolon comment',
      'this line has no equals sign',
      'FOO="a \\"b\\" c"',
      'ZED=last',
    ].join('\n'); // no final newline
    const out = renderEnvFile(agent(), CTX, existing, RUNTIMES);
    const lines = d(out).split('\n');
    expect(lines.slice(0, 9)).toEqual([
      'EDITOR=vim',
      '  # indented note',
      '',
      "PROXY='http://proxy:3128'   ",
      'MOSAIC_AGENT_NAME=coder0',
      '; a semicolon comment',
      'this line has no equals sign',
      'FOO="a \\"b\\" c"',
      'ZED=last',
    ]);
    expect(lines.slice(9)).toEqual([...MANAGED_BLOCK.split('\n').slice(1), '']);
    const env = parseEnvFile(out).entries;
    expect(env.get('PROXY')).toBe('http://proxy:3128');
    expect(env.get('FOO')).toBe('a "b" c');
  });

  it('removes later assignments of a managed key, which would override the roster in systemd', () => {
    const existing = 'MOSAIC_AGENT_MODEL=a\nKEEP=1\nMOSAIC_AGENT_MODEL=b\n';
    const out = renderEnvFile(agent(), CTX, existing, RUNTIMES);
    expect(out.match(/^MOSAIC_AGENT_MODEL=/gm)).toHaveLength(1);
    expect(out.startsWith('MOSAIC_AGENT_MODEL=sonnet\nKEEP=1\n')).toBe(true);
    expect(parseEnvFile(out).entries.get('MOSAIC_AGENT_MODEL')).toBe('sonnet');
  });

  it('manages MOSAIC_AGENT_COMMAND while the roster sets command, and gives it back when it stops', () => {
    const operatorLine = 'MOSAIC_AGENT_COMMAND=python3 /opt/stub.py';
    const withCommand = renderEnvFile(agent({ command: 'node agent.js --fast' }), CTX, `${operatorLine}\n`);
    expect(
      withCommand.startsWith(`${ROSTER_COMMAND_MARKER}\nMOSAIC_AGENT_COMMAND="node agent.js --fast"\n`),
    ).toBe(true);
    expect(parseEnvFile(withCommand).entries.get('MOSAIC_AGENT_COMMAND')).toBe('node agent.js --fast');
    expect(renderEnvFile(agent({ command: 'node agent.js --fast' }), CTX, withCommand)).toBe(withCommand);

    // The roster drops `command`: the line it wrote goes, so the runtime command applies again.
    const dropped = renderEnvFile(agent(), CTX, withCommand);
    expect(parseEnvFile(dropped).entries.has('MOSAIC_AGENT_COMMAND')).toBe(false);
    expect(dropped).not.toContain(ROSTER_COMMAND_MARKER);

    // A new file for an agent with a roster command gets it appended with the marker.
    const fresh = renderEnvFile(agent({ command: 'run it' }), CTX, null);
    expect(
      d(fresh).endsWith(
        `${ROSTER_COMMAND_MARKER}\nMOSAIC_AGENT_COMMAND="run it"\nMOSAIC_ENV_DIGEST=<digest>\n`,
      ),
    ).toBe(true);

    // An operator-written line (no marker) is never removed.
    const operatorOwned = renderEnvFile(agent(), CTX, `${operatorLine}\n`);
    expect(operatorOwned.startsWith(`${operatorLine}\n`)).toBe(true);
  });

  it('takes MOSAIC_AGENT_RUNTIME_COMMAND from the runtime, defaulting to its name', () => {
    const stub = parseEnvFile(renderEnvFile(agent({ runtime: 'stub' }), CTX, null, RUNTIMES)).entries;
    expect(stub.get('MOSAIC_AGENT_RUNTIME_COMMAND')).toBe('/opt/mosaic/stub-agent.sh');
    const unknown = parseEnvFile(renderEnvFile(agent({ runtime: 'codex' }), CTX, null)).entries;
    expect(unknown.get('MOSAIC_AGENT_RUNTIME_COMMAND')).toBe('codex');
  });

  it('renders the adapter’s exit keys as one line the stop script splits back into keys, empty when none', () => {
    const keysOf = (exitKeys: string[]): string | undefined =>
      parseEnvFile(renderEnvFile(agent(), CTX, null, { pi: { ...runtime('pi'), exitKeys } })).entries.get(
        'MOSAIC_AGENT_EXIT_KEYS',
      );
    expect(keysOf(['/exit', 'Enter'])).toBe('/exit Enter');
    expect(keysOf(['C-d'])).toBe('C-d');
    expect(keysOf(['say bye', 'Enter'])).toBe("'say bye' Enter");
    expect(keysOf([])).toBe('');
    expect(keysOf(["don't"])).toBe("don\\'t");
    expect(() => keysOf(['a\nb'])).toThrow(/agent coder0: .*newline/);
  });

  it('does not let a comment ending in a backslash swallow the appended managed keys', () => {
    const out = renderEnvFile(agent(), CTX, '# path is C:\\\n', RUNTIMES);
    const env = parseEnvFile(out).entries;
    expect(env.get('MOSAIC_AGENT_NAME')).toBe('coder0');
    expect(env.get('MOSAIC_HOME')).toBe('/home/op/.config/mosaic');
    expect(renderEnvFile(agent(), CTX, out, RUNTIMES)).toBe(out);
  });

  it('refuses, naming the file, when an operator line hides the managed keys from systemd', () => {
    const render = (): string => renderEnvFile(agent(), CTX, 'BROKEN="never closed\n', RUNTIMES);
    expect(render).toThrow(UserError);
    expect(render).toThrow('/home/op/.config/mosaic/fleet/agents/coder0.env: cannot merge');
  });
});

describe('quoteEnvValue / parseEnvFile round trip', () => {
  const values = [
    '',
    'plain',
    '/srv/my work/dir',
    ' leading and trailing ',
    'it\'s "quoted"',
    '$HOME and ${HOME} and $$',
    '# not a comment',
    'a;b',
    'back\\slash\\',
    'C:\\new\\table',
    '`date`',
    'tab\there',
    'two\nlines',
    '%i %% 50%',
    'ünïcødé',
    "'single'",
    '=starts=with=equals',
  ];
  it.each(values)('%j reads back exactly', (value) => {
    const text = `V=${quoteEnvValue(value)}\n`;
    expect(parseEnvFile(text).entries.get('V')).toBe(value);
    // And as a managed value inside a merged file.
    const merged = renderEnvFile(agent({ workingDirectory: value }), CTX, 'OTHER=1\n');
    expect(parseEnvFile(merged).entries.get('MOSAIC_AGENT_WORKDIR')).toBe(value);
  });

  it('quotes only what needs it', () => {
    expect(quoteEnvValue('')).toBe('');
    expect(quoteEnvValue('/a/b-c_d.e:f,g@h+i=j%k')).toBe('/a/b-c_d.e:f,g@h+i=j%k');
    expect(quoteEnvValue('a b')).toBe('"a b"');
    expect(quoteEnvValue('$x')).toBe('"\\$x"');
    expect(quoteEnvValue('a"b\\c`d')).toBe('"a\\"b\\\\c\\`d"');
    expect(() => quoteEnvValue('bell\x07')).toThrow(/control characters/);
  });
});

describe('parseEnvFile follows systemd’s EnvironmentFile parser', () => {
  const cases: Array<[string, string, Record<string, string>]> = [
    [
      'whitespace around key and unquoted value is trimmed',
      '  KEY  =   value with  spaces   \n',
      { KEY: 'value with  spaces' },
    ],
    ['single quotes are literal', "K='a \\n $b'\n", { K: 'a \\n $b' }],
    ['double quotes unescape only \\ " ` $', 'K="a\\"b \\$c \\q"\n', { K: 'a"b $c \\q' }],
    ['a backslash outside quotes keeps the next character', 'K=a\\ b\\#c\n', { K: 'a b#c' }],
    ['a backslash-newline joins lines', 'K=one\\\ntwo\nL=3\n', { K: 'onetwo', L: '3' }],
    ['quoted newlines are kept', 'K="one\ntwo"\n', { K: 'one\ntwo' }],
    ['# after a value is part of it', 'K=a # b\n', { K: 'a # b' }],
    ['the last assignment wins', 'K=1\nK=2\n', { K: '2' }],
    ['lines without = and invalid names are ignored', 'junk\n1BAD=x\nBAD-NAME=y\nOK=z\n', { OK: 'z' }],
    ['; and # start comments', '; K=1\n# L=2\nM=3\n', { M: '3' }],
    ['CRLF line ends', 'K=a\r\nL="b"\r\n', { K: 'a', L: 'b' }],
    ['no final newline', 'K="x y"', { K: 'x y' }],
    ['an empty value', 'K=\n', { K: '' }],
    ['a comment ending in a backslash continues (systemd 252)', '# c \\\nK=hidden\nL=1\n', { L: '1' }],
  ];
  it.each(cases)('%s', (_why, text, expected) => {
    const parsed = parseEnvFile(text);
    expect(Object.fromEntries(parsed.entries)).toEqual(expected);
    // Records cover the text exactly, so a merge can keep every byte it does not manage.
    expect(parsed.lines.map((l) => l.raw).join('')).toBe(text);
  });

  it('classifies each record', () => {
    const { lines } = parseEnvFile('# c\n\nK=v\njunk\n');
    expect(lines.map((l) => l.kind)).toEqual(['comment', 'blank', 'entry', 'invalid']);
  });
});

describe('MOSAIC_ENV_DIGEST: what the running agent will see, as one value', () => {
  const digestOf = (text: string) => parseEnvFile(text).entries.get('MOSAIC_ENV_DIGEST');

  it('is the digest of every other entry, and stays put for comments and blank lines', () => {
    const base = renderEnvFile(agent(), CTX, 'API_KEY=one\n', RUNTIMES);
    const entries = parseEnvFile(base).entries;
    expect(digestOf(base)).toBe(envDigest(entries));
    const commented = renderEnvFile(agent(), CTX, '# a note\n\nAPI_KEY=one\n', RUNTIMES);
    expect(digestOf(commented)).toBe(digestOf(base));
  });

  it("changes with a managed value or an operator's own key", () => {
    const base = renderEnvFile(agent(), CTX, 'API_KEY=one\n', RUNTIMES);
    expect(digestOf(renderEnvFile(agent({ modelHint: 'opus' }), CTX, 'API_KEY=one\n', RUNTIMES))).not.toBe(
      digestOf(base),
    );
    expect(digestOf(renderEnvFile(agent(), CTX, 'API_KEY=two\n', RUNTIMES))).not.toBe(digestOf(base));
  });
});
