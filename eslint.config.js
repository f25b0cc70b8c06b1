// Lint rules, including the architecture: imports point down only. proto and core are
// leaves (core is pure: no Node IO), client sits on them, and coordinator, worker and cli
// never import each other. test/ uses public entry points only.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const deepImports = {
  group: ['@mmgrid/*/src/**', '@mmgrid/*/lib/**', '@mmgrid/*/src', '@mmgrid/*/lib'],
  message: 'Import a package by its name (its public entry point), not its files.',
};

/** Bans imports of the given packages from a part of the tree, naming the rule it breaks. */
function layer(files, banned, why, extraPatterns = []) {
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: banned.map((name) => ({ name, message: why })),
          patterns: [deepImports, ...extraPatterns],
        },
      ],
    },
  };
}

const nodeIo = {
  group: ['node:*', 'fs', 'fs/*', 'net', 'http', 'https', 'child_process', 'os', 'path', 'ioredis', 'bullmq', '@grpc/*'],
  message: '@mmgrid/core is pure: no IO, no Redis, no gRPC. Take what you need through a port interface.',
};

export default tseslint.config(
  { ignores: ['**/lib/**', '**/node_modules/**', 'packages/proto/src/gen/**', 'coverage/**', '.mmgrid/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: true } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      'import-x/no-self-import': 'error',
      'no-restricted-imports': ['error', { patterns: [deepImports] }],
    },
  },
  layer(['packages/proto/src/**'], ['@mmgrid/core', '@mmgrid/client', '@mmgrid/coordinator', '@mmgrid/worker', '@mmgrid/cli'], '@mmgrid/proto is a leaf.'),
  layer(['packages/core/src/**/*.ts'], ['@mmgrid/proto', '@mmgrid/client', '@mmgrid/coordinator', '@mmgrid/worker', '@mmgrid/cli'], '@mmgrid/core is a leaf.', [nodeIo]),
  layer(['packages/client/src/**'], ['@mmgrid/coordinator', '@mmgrid/worker', '@mmgrid/cli'], '@mmgrid/client sits on proto and core only.'),
  layer(['packages/coordinator/src/**'], ['@mmgrid/client', '@mmgrid/worker', '@mmgrid/cli'], 'coordinator, worker and cli never import each other.'),
  layer(['packages/worker/src/**'], ['@mmgrid/coordinator', '@mmgrid/cli'], 'coordinator, worker and cli never import each other.'),
  layer(['packages/cli/src/**'], ['@mmgrid/coordinator', '@mmgrid/worker'], 'coordinator, worker and cli never import each other (the CLI launches their executables).'),
  {
    // Unit tests of pure code may build fixtures with Node; the purity rule is for the package itself.
    files: ['packages/core/src/**/__tests__/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [deepImports] }] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
