// Lint rules that keep runbooks correct: no floating promises anywhere, and workflow code that
// cannot reach I/O (Node built-ins and client libraries stay out of workflows/; types may come in).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));
const clientLibraries = [
  'mysql2', 'mysql2/*', 'etcd3', 'cockatiel', '@kubernetes/client-node', '@aws-sdk/*',
  '@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/testing',
  'yaml', 'zod', 'prom-client',
];

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-artifacts/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['*.js', '*.mjs', 'bin/*.js'] }, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [...nodeBuiltins, ...nodeBuiltins.map((m) => `node:${m}`), ...clientLibraries.filter((m) => !m.includes('*'))].map((name) => ({
            name,
            message: 'workflow code must stay deterministic: do I/O in an activity',
            allowTypeImports: true,
          })),
          patterns: [{ group: ['node:*', ...clientLibraries.filter((m) => m.includes('*'))], message: 'workflow code must stay deterministic: do I/O in an activity', allowTypeImports: true }],
        },
      ],
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
);
