// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** A layer's files may not import the folders (or top-level modules) above it (or those `message` names). */
function layer(
  files,
  above,
  topModules,
  message = 'layers point down (docs/architecture.md): no import from above',
) {
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^\\.\\./(${above})/`,
              message,
            },
            {
              regex: `^\\.\\./(${topModules})\\.js$`,
              message,
            },
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', 'framework/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Start-up economy (docs/benchmarks.md): these node modules cost a `fleet` run 13-15 ms each to load, and
    // src/fs-async.ts and src/crypto-lazy.ts give what fleet needs of them without that.
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'node:fs/promises',
              message: 'use src/fs-async.ts (node:fs/promises costs every run ≈ 15 ms to load)',
              allowTypeImports: true,
            },
            {
              name: 'node:crypto',
              message: 'use src/crypto-lazy.ts (node:crypto is loaded at first use)',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  // Layers point down (docs/architecture.md, "Layers"): a module never imports one that sits above it, so the
  // low layers can be read, tested and reused without the reconciler above them.
  layer(
    ['src/base/**/*.ts'],
    'apply|observe|plan|render|manifest|runtimes|engine|commands|dev',
    'cli|options|main',
  ),
  layer(
    ['src/observe/**/*.ts', 'src/manifest/**/*.ts'],
    'apply|render|plan|engine|commands|dev',
    'cli|options|main',
  ),
  layer(['src/apply/**/*.ts'], 'observe|manifest|plan|engine|commands|dev', 'cli|options|main'),
  layer(['src/engine/**/*.ts'], 'commands|dev', 'cli|main'),
  // The git source is a step the engine calls before loading (docs/hosts.md): it loads manifests, never plans.
  layer(['src/source/**/*.ts'], 'engine|commands|dev|plan|apply|register', 'cli|options|main'),
  // The commands are shells over the engine, which alone composes observation, the manifests and the planner.
  layer(
    ['src/commands/**/*.ts'],
    'observe|manifest|plan|dev',
    'cli|main',
    'a command calls the engine (docs/architecture.md): no import from observe/, manifest/ or plan/',
  ),
  {
    // The planner, the renderers, the manifest normalizer, the formats of the base layer and the alerts' judge
    // and episodes are pure: no filesystem, no processes, no clock.
    files: [
      'src/plan/**/*.ts',
      'src/render/**/*.ts',
      'src/manifest/normalize.ts',
      'src/model/**/*.ts',
      'src/base/env-file.ts',
      'src/base/heartbeat.ts',
      'src/base/names.ts',
      'src/base/session-markers.ts',
      'src/base/temp-files.ts',
      'src/alerts/judge.ts',
      'src/alerts/episodes.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(node:)?(fs|fs/promises|child_process|os|net|process)$',
              message: 'pure module: I/O belongs in observe/ or apply/',
            },
            { regex: '^execa$', message: 'pure module: only src/exec.ts spawns' },
            { regex: '/(exec|observe|apply)(/|\\.js$)', message: 'pure module: no effectful imports' },
            { regex: '/base/(safe-path|atomic)\\.js$', message: 'pure module: no effectful imports' },
            { regex: '^\\.\\./(engine|commands|dev)/', message: 'layers point down (docs/architecture.md)' },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'pure module: take "now" from Observed' },
        { object: 'process', property: 'env', message: 'pure module: take the environment as input' },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'pure module' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
