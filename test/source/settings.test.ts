/**
 * Where a git source is set and what is refused there (src/manifest/semantic-source.ts, src/source/settings.ts):
 * one clear line naming the file and line, or the flag.
 */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/errors.js';
import { checkParsed, loadDesiredFromTexts } from '../../src/manifest/load.js';
import { parseManifestText } from '../../src/manifest/parse.js';
import { sourceFromEnv } from '../../src/source/settings.js';

const ctx = { userHome: '/home/u', mosaicHome: '/home/u/.config/mosaic', hostname: 'h1' };

function problems(files: Record<string, string>): string[] {
  const parsed = Object.entries(files).map(([file, text]) => parseManifestText(file, text));
  return checkParsed(parsed).diagnostics.map(formatDiagnostic);
}

describe('source: in a manifest', () => {
  it('normalizes to the URL, the branch (default main) and the directory', () => {
    const { desired } = loadDesiredFromTexts(
      [
        {
          file: 's.yaml',
          text: 'version: 1\nsource:\n  git: https://git.example/fleet.git\n  path: ./hosts/\n',
        },
      ],
      ctx,
    );
    expect(desired?.source).toEqual({
      url: 'https://git.example/fleet.git',
      ref: 'main',
      path: 'hosts',
      origin: { file: 's.yaml', line: 2, col: 1 },
    });
    expect(desired?.agents).toEqual([]);
  });

  it('refuses an unknown key, naming the file and line', () => {
    expect(problems({ 's.yaml': 'version: 1\nsource:\n  git: file:///r.git\n  branch: main\n' })).toEqual([
      expect.stringMatching(/^s\.yaml:4:\d+: .*branch/),
    ]);
  });

  it('refuses two manifests that both give source:', () => {
    const out = problems({
      'a.yaml': 'version: 1\nsource: {git: file:///r.git}\n',
      'b.yaml': 'version: 1\nsource: {git: file:///s.git}\n',
    });
    expect(out).toEqual([
      expect.stringMatching(/^b\.yaml:2:1: source is also set at a\.yaml:2:1; it applies to the whole fleet/),
    ]);
  });

  it('refuses anything beside the source, in its manifest or in another one', () => {
    expect(
      problems({
        'a.yaml': 'version: 1\nsource: {git: file:///r.git}\nagents: []\n',
        'b.yaml': 'version: 1\nagents:\n  - {name: x, runtime: stub}\n',
      }),
    ).toEqual([
      'a.yaml:3:1: a manifest with source: holds only version: and source:; agents: belongs in the repository',
      expect.stringMatching(
        /^b\.yaml:2:1: the manifests come from the git source set at a\.yaml:2:1: move this file/,
      ),
    ]);
  });

  it('refuses credentials in the URL and refs git would not take', () => {
    expect(
      problems({ 'a.yaml': 'version: 1\nsource: {git: "https://user:pw@git.example/r.git"}\n' }),
    ).toEqual([expect.stringMatching(/^a\.yaml:2:\d+: source\.git holds credentials/)]);
    expect(
      problems({ 'a.yaml': 'version: 1\nsource: {git: "https://token@git.example/r.git"}\n' }),
    ).toHaveLength(1);
    expect(problems({ 'a.yaml': 'version: 1\nsource: {git: "ssh://git@git.example/r.git"}\n' })).toEqual([]);
    expect(problems({ 'a.yaml': 'version: 1\nsource: {git: "git@git.example:r.git", ref: a..b}\n' })).toEqual(
      [expect.stringMatching(/^a\.yaml:2:\d+: source\.ref "a\.\.b" must not contain "\.\."/)],
    );
    expect(problems({ 'a.yaml': 'version: 1\nsource: {git: file:///r.git, path: ../x}\n' })).toHaveLength(1);
    expect(problems({ 'a.yaml': 'version: 1\nsource: {git: --upload-pack=x}\n' })).toHaveLength(1);
  });
});

describe('--source and $MOSAIC_SOURCE', () => {
  it('URL[#BRANCH]', () => {
    expect(sourceFromEnv({})).toBeNull();
    expect(sourceFromEnv({ MOSAIC_SOURCE: 'file:///r.git' })).toMatchObject({
      url: 'file:///r.git',
      ref: 'main',
      path: '',
    });
    expect(sourceFromEnv({ MOSAIC_SOURCE: 'git@h:r.git#prod' })).toMatchObject({
      url: 'git@h:r.git',
      ref: 'prod',
    });
  });

  it('bad input is one line naming the flag', () => {
    expect(() => sourceFromEnv({ MOSAIC_SOURCE: 'https://u:p@h/r.git' })).toThrow(
      /^--source \(\$MOSAIC_SOURCE\): the URL holds credentials/,
    );
    expect(() => sourceFromEnv({ MOSAIC_SOURCE: 'file:///r.git#a..b' })).toThrow(
      /branch "a\.\.b" must not contain/,
    );
    expect(() => sourceFromEnv({ MOSAIC_SOURCE: '-x' })).toThrow(/is not a repository URL/);
  });
});
