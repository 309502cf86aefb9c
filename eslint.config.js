// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
  {
    // The planner, the renderers and the manifest normalizer are pure: no filesystem, no processes, no clock.
    files: [
      'src/plan/**/*.ts',
      'src/render/**/*.ts',
      'src/manifest/normalize.ts',
      'src/model/**/*.ts',
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
